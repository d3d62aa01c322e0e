"""Weight-space ensembling (WiSE-FT, Wortsman et al. 2022) of a fine-tuned model with zero-shot CLIP.

``θ = (1 − α)·θ_CLIP + α·θ_finetuned``, α weighting the FINE-TUNED model (TC-CLIP's zero-shot protocol
uses α = 0.7). A method that defines its own fusion is used as is: TC-CLIP's ``chronoclip_tcclip.wise_ft``
excludes its prompt/VP/bias parameters, interpolates ``logit_scale`` and rounds θ_CLIP as its code
loads it. A method's fusion is found as a ``wise_ft`` attribute of its ``core.Method`` plugin, or of the
top-level package that defines the plugin, with the signature
``wise_ft(finetuned_model, zeroshot_clip_state, alpha) -> model``.

The generic fallback fuses exactly the CLIP backbone's parameters (those of the ``open_clip`` CLIP
module inside the model) with the same tensors of the zero-shot CLIP file; every parameter a method
adds keeps its fine-tuned value, and buffers are untouched. Fusion runs in fp32.
"""

from __future__ import annotations

import copy
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

import core
from core.clip import read_clip_state_dict
from core.method import VideoModel
from evaluation.sources import find_clip

__all__ = ["find_method_wise_ft", "generic_wise_ft", "wise_ft"]

WiseFT = Callable[[VideoModel, Any, float], VideoModel]

# Keys OpenAI's files carry beside the weights.
_METADATA = ("input_resolution", "context_length", "vocab_size")


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"WiSE-FT alpha weights the fine-tuned model and must lie in [0, 1]; got {alpha} "
                         f"(0 = zero-shot CLIP, 1 = the fine-tuned model, TC-CLIP uses 0.7)")


def generic_wise_ft(finetuned_model: VideoModel, zeroshot_clip_state: Mapping[str, Tensor] | str | os.PathLike,
                    alpha: float) -> VideoModel:
    """Fuse the CLIP backbone inside ``finetuned_model`` with the zero-shot CLIP weights.

    Args:
        finetuned_model: a model holding an ``open_clip`` ``CLIP`` module; not modified.
        zeroshot_clip_state: CLIP state dict (OpenAI or open_clip layout) or a file
            (``core.clip.read_clip_state_dict``).
        alpha: weight of the fine-tuned model in [0, 1].

    Returns:
        A deep copy with ``(1 − α)·θ_CLIP + α·θ_ft`` on every CLIP parameter, in the model's dtype.

    Raises:
        ValueError: no CLIP module inside the model, or weights of another architecture.
    """
    _check_alpha(alpha)
    state = read_clip_state_dict(zeroshot_clip_state) if isinstance(zeroshot_clip_state, (str, os.PathLike)) \
        else dict(zeroshot_clip_state)
    state = {k: v for k, v in state.items() if k not in _METADATA}
    fused = copy.deepcopy(finetuned_model)
    clip = find_clip(fused)
    if clip is None:
        raise ValueError(f"{type(finetuned_model).__name__} holds no open_clip CLIP module and its method defines no "
                         f"wise_ft of its own, so WiSE-FT cannot tell which weights came from CLIP")
    params = dict(clip.named_parameters())
    missing = sorted(set(params) - set(state))
    mismatched = sorted(k for k in set(params) & set(state) if tuple(state[k].shape) != tuple(params[k].shape))
    if missing or mismatched:
        detail = (f"missing {missing[:6]}" if missing else "") + \
                 (f" shape mismatch {mismatched[:6]}" if mismatched else "")
        raise ValueError(f"the zero-shot CLIP weights do not fit the model's CLIP ({detail.strip()}); pass the CLIP "
                         f"file the model was fine-tuned from")
    with torch.no_grad():
        for name, param in params.items():
            zeroshot = state[name].to(device=param.device, dtype=torch.float32)
            param.copy_(((1 - alpha) * zeroshot + alpha * param.float()).to(param.dtype))
    return fused


def find_method_wise_ft(method: str) -> WiseFT | None:
    """The method's own ``wise_ft`` (plugin attribute, then its top-level package), or ``None``."""
    plugin = core.load_method(method)
    own = getattr(plugin, "wise_ft", None)
    if callable(own):
        return own
    package = type(plugin).__module__.split(".")[0]
    if package == "core":  # the clip/vifi baselines use the generic fusion
        return None
    own = getattr(importlib.import_module(package), "wise_ft", None)
    return own if callable(own) else None


def wise_ft(model: VideoModel, method: str, zeroshot_clip: Mapping[str, Tensor] | str | os.PathLike,
            alpha: float) -> tuple[VideoModel, str]:
    """Fuse ``model`` with zero-shot CLIP, preferring the method's own fusion.

    Returns:
        ``(fused_model, how)``: ``how`` names the fusion used, for the report.
    """
    _check_alpha(alpha)
    own = find_method_wise_ft(method)
    if own is not None:
        state = read_clip_state_dict(zeroshot_clip) if isinstance(zeroshot_clip, (str, os.PathLike)) else zeroshot_clip
        return own(model, state, alpha).eval(), f"{method}'s own wise_ft (alpha={alpha})"
    return generic_wise_ft(model, zeroshot_clip, alpha).eval(), f"generic CLIP-weight fusion (alpha={alpha})"
