"""One cache of class-text features for every model, with one invalidation rule.

Evaluation encodes the same class texts for every batch; each model keeps a :class:`TextFeatureCache`
and asks it for the features. The rule, in full:

* **Key**: the tuple of texts, the device and dtype of the parameters the features depend on, the
  ``_version`` counter of each of those parameters (an optimizer step or ``load_state_dict`` bumps it).
  A miss re-encodes and replaces the single entry.
* **No caching with gradients**: when ``torch.is_grad_enabled()`` and any of those parameters requires
  grad, the features are computed every call, in the caller's grad mode, and nothing is kept. A caller
  whose features never carry a gradient (a text side the official code encodes under ``no_grad``) passes
  ``frozen=True``: its features are always cached.
* **Cached values are ordinary tensors**: a cached value is computed under ``torch.no_grad()`` with
  inference mode switched off, so one filled inside ``torch.inference_mode()`` is reused by a later
  ``no_grad`` evaluation or a training forward alike (an inference tensor could not enter autograd).
  The values are the same as the uncached computation's.
* **Cleared on ``train()``**: the cache is an ``nn.Module`` child of its model (no parameters, no
  buffers, no state-dict keys), so ``model.train()``/``model.eval()`` empties it. This covers optimizers
  that rewrite weights through ``.data`` (DeepSpeed's flat buffers) without bumping versions.
* **Eager under ``torch.compile``**: the lookup (and a miss's encoding) runs outside the compiled graph. Traced,
  it would guard on every parameter's version counter and recompile until Dynamo's recompile limit, after
  which the whole caller falls back to eager: ``--compile`` then bought nothing for T2L (measured).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

__all__ = ["TextFeatureCache", "clip_text_parameters"]

T = TypeVar("T")


def clip_text_parameters(clip: nn.Module) -> list[Tensor]:
    """The parameters of an open_clip ``CLIP``'s text side (token and positional embeddings, transformer,
    final LayerNorm, text projection): what plain CLIP text features depend on."""
    params: list[Tensor] = [*clip.token_embedding.parameters(), *clip.transformer.parameters(),
                            *clip.ln_final.parameters()]
    for name in ("positional_embedding", "text_projection"):
        value = getattr(clip, name, None)
        if isinstance(value, Tensor):
            params.append(value)
        elif isinstance(value, nn.Module):
            params.extend(value.parameters())
    return params


def _version(param: Tensor) -> int | None:
    # inference tensors (a model built under inference_mode) have no version counter
    return None if param.is_inference() else param._version


class TextFeatureCache(nn.Module):
    """Single-entry cache of text features (see the module docstring for the rule)."""

    def __init__(self) -> None:
        super().__init__()
        self._entry: tuple[tuple[Any, ...], Any] | None = None

    def clear(self) -> None:
        self._entry = None

    def train(self, mode: bool = True) -> TextFeatureCache:
        self.clear()
        return super().train(mode)

    @torch.compiler.disable
    def get(self, texts: Sequence[str], compute: Callable[[], T], params: Iterable[Tensor], *,
            frozen: bool = False) -> T:
        """``compute()``'s result for ``texts``, reused while the key is unchanged.

        Args:
            texts: the texts ``compute`` encodes (part of the key).
            compute: encodes ``texts``; called with no arguments.
            params: every parameter the features depend on (versions, device and dtype are keyed; their
                ``requires_grad`` decides whether gradients are needed). At least one.
            frozen: the features never carry a gradient (always cached, computed under ``torch.no_grad()``).
        """
        params = list(params)
        if not params:
            raise ValueError("TextFeatureCache.get needs the parameters the text features depend on")
        if not frozen and torch.is_grad_enabled() and any(p.requires_grad for p in params):
            self.clear()
            return compute()
        first = params[0]
        key = (tuple(texts), first.device, first.dtype, tuple(_version(p) for p in params))
        if self._entry is not None and self._entry[0] == key:
            return self._entry[1]
        with torch.inference_mode(False), torch.no_grad():
            value = compute()
        self._entry = (key, value)
        return value
