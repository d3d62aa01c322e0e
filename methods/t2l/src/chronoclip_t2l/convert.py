"""The authors' checkpoint format <-> :class:`~chronoclip_t2l.model.T2LModel` (spec section 9).

The official ``train.py`` saves ``{'epoch', 'model_state_dict', 'optimizer_state_dict'}`` where
``model_state_dict`` is the whole model (OpenAI CLIP keys + T2L keys, no ``module.`` prefix) in mixed
fp16/fp32. Key map (official -> ours; ``{l}`` = block index):

| official key                                              | ours                                  |
|-----------------------------------------------------------|---------------------------------------|
| every OpenAI CLIP key (``visual.conv1.weight``, ...)       | ``clip.<same key>``                   |
| ``visual.transformer.T_prompt_embeddings`` (L, T, D)       | ``temporal_tokens``                   |
| ``visual.temporal_embedding`` (1, T, D)                    | ``temporal_embedding``                |
| ``visual.transformer.resblocks.{l}.Adapter.D_fc{1,2}.*``   | ``visual_adapters.{l}.D_fc{1,2}.*``   |
| ``transformer.resblocks.{l}.Adapter.D_fc{1,2}.*``          | ``text_adapters.{l}.D_fc{1,2}.*``     |

Dropped on purpose (outside ``model_state_dict``):

| entry                   | why                                                                 |
|-------------------------|---------------------------------------------------------------------|
| ``epoch``               | training bookkeeping                                                |
| ``optimizer_state_dict``| AdamW moments of the authors' run; chronoclip's trainer has its own |

Any other key in ``model_state_dict``, or a missing one, is an error that lists them.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from torch import Tensor

from chronoclip_t2l.model import T2LModel
from chronoclip_t2l.options import T2LOptions
from core.clip import CLIP, infer_clip_config
from core.serialization import load_state_dict_strict, safe_load

__all__ = ["from_official_state_dict", "load_official_checkpoint", "read_official_state_dict", "to_official_key",
           "to_official_state_dict"]

# (official regex, our replacement); everything else is an OpenAI CLIP key under ``clip.``.
_T2L_KEYS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^visual\.transformer\.T_prompt_embeddings$"), "temporal_tokens"),
    (re.compile(r"^visual\.temporal_embedding$"), "temporal_embedding"),
    (re.compile(r"^visual\.transformer\.resblocks\.(\d+)\.Adapter\.(D_fc[12]\.(?:weight|bias))$"),
     r"visual_adapters.\1.\2"),
    (re.compile(r"^transformer\.resblocks\.(\d+)\.Adapter\.(D_fc[12]\.(?:weight|bias))$"), r"text_adapters.\1.\2"),
)
_OURS_TO_OFFICIAL: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^temporal_tokens$"), "visual.transformer.T_prompt_embeddings"),
    (re.compile(r"^temporal_embedding$"), "visual.temporal_embedding"),
    (re.compile(r"^visual_adapters\.(\d+)\.(.+)$"), r"visual.transformer.resblocks.\1.Adapter.\2"),
    (re.compile(r"^text_adapters\.(\d+)\.(.+)$"), r"transformer.resblocks.\1.Adapter.\2"),
    (re.compile(r"^clip\.(.+)$"), r"\1"),
)
_CHECKPOINT_KEYS = {"epoch", "model_state_dict", "optimizer_state_dict"}


def _rename(key: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str | None:
    for pattern, replacement in table:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None


def read_official_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The model weights of an official checkpoint file, without executing pickled code.

    Accepts the training format (``model_state_dict`` inside a dict) or a bare state dict; a leading
    ``module.`` is stripped. Tensors keep their stored dtype.
    """
    raw = safe_load(path)
    if isinstance(raw, dict) and "model_state_dict" in raw:
        extra = sorted(set(raw) - _CHECKPOINT_KEYS)
        if extra:
            raise ValueError(f"{path}: unexpected top-level entries {extra}; the official format holds only "
                             f"{sorted(_CHECKPOINT_KEYS)}")
        raw = raw["model_state_dict"]
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{path} holds no state dict (got {type(raw).__name__}); expected the official T2L "
                         f"checkpoint ({{'epoch', 'model_state_dict', 'optimizer_state_dict'}}) or a bare state dict")
    bad = sorted(str(k) for k, v in raw.items() if not (isinstance(k, str) and isinstance(v, Tensor)))
    if bad:
        raise ValueError(f"{path}: state dict entries that are not tensors: {bad[:8]}")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def _architecture(state: dict[str, Tensor]) -> tuple[dict[str, Any], int, bool]:
    """open_clip config, frame count and whether temporal tokens exist, read from the weight shapes."""
    tokens = state.get("visual.transformer.T_prompt_embeddings")
    temporal = state.get("visual.temporal_embedding")
    if temporal is None:
        raise ValueError("not a T2L checkpoint: 'visual.temporal_embedding' is missing")
    clip_state = {k: v for k, v in state.items() if _rename(k, _T2L_KEYS) is None}
    config = infer_clip_config(clip_state)
    frames = temporal.shape[1]
    if tokens is not None:
        layers = config["vision_cfg"]["layers"]
        if tokens.shape[0] != layers:
            raise ValueError(f"T_prompt_embeddings has {tokens.shape[0]} layer(s) but the vision tower has {layers}; "
                             f"only prompt.DEEP: True checkpoints (one token set per layer) are supported")
        if tokens.shape[1] != frames:
            raise ValueError(f"T_prompt_embeddings is for {tokens.shape[1]} frames but temporal_embedding for {frames}")
    return config, frames, tokens is not None


def from_official_state_dict(state: dict[str, Tensor], options: T2LOptions | None = None) -> T2LModel:
    """A :class:`T2LModel` holding the official weights (architecture and T inferred, every key accounted for).

    Args:
        state: official ``model_state_dict`` (any float dtypes; cast to fp32).
        options: model options besides the architecture (``text_mode``, ``train_logits``, ...); their
            ``temporal_tokens`` is replaced by what the weights hold.

    Raises:
        ValueError: keys missing from or unexpected in ``state``, or shapes that do not fit, listed by name.
    """
    config, frames, has_tokens = _architecture(state)
    options = replace(options or T2LOptions(), temporal_tokens=has_tokens)
    model = T2LModel(CLIP(**config), frames, options)
    ours = {_rename(k, _T2L_KEYS) or f"clip.{k}": v for k, v in state.items()}
    load_state_dict_strict(model, ours, f"the T2L checkpoint (architecture inferred from its weights: "
                                        f"{config['vision_cfg']}, T={frames})", display=_official_name)
    return model


def load_official_checkpoint(path: str | os.PathLike, options: T2LOptions | None = None) -> T2LModel:
    """Read an official T2L checkpoint file into an eval-mode :class:`T2LModel` (fp32)."""
    return from_official_state_dict(read_official_state_dict(path), options).eval()


def _official_name(key: str) -> str:
    return _rename(key, _OURS_TO_OFFICIAL) or key


def to_official_key(key: str) -> str:
    """Our parameter name -> the official ``model_state_dict`` key."""
    official = _rename(key, _OURS_TO_OFFICIAL)
    if official is None:
        raise KeyError(f"T2L parameter {key!r} has no official counterpart")
    return official


def to_official_state_dict(model: T2LModel) -> dict[str, Tensor]:
    """The model's weights under the official key names (fp32), loadable by the authors' ``test.py``."""
    return {to_official_key(k): v.detach().clone() for k, v in model.state_dict().items()}
