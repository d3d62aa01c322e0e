"""Reading the authors' ILA checkpoints (official ``epoch_saving`` format, spec §9).

A checkpoint is a ``torch.save`` dict ``{model, optimizer, lr_scheduler, max_accuracy, epoch, config}`` where
``config`` is a pickled yacs ``CfgNode``. It is read with :func:`core.serialization.safe_load`, which never
executes pickled code and needs neither yacs nor the official code: the ``CfgNode`` comes back as an inert
dict-like placeholder, used here only to cross-check the frame count and input size.

The architecture is read from the weight shapes (widths, patch, grid, layers, frames from
``mit.positional_embedding``; variant from the presence of ``mit.classify_head``). Every key of ``model`` is
mapped (table below) and the model is loaded strictly: a missing, unexpected or mis-shaped key is a
``ValueError`` that lists them.

==========================================================  =========================================
official key                                                ours
==========================================================  =========================================
``visual.transformer.resblocks.{i}.message_*``, ``temporal_*``  ``blocks.{i}.message_*``, ``temporal_*``
``mit.*``, ``prompts_generator.*``, ``prompts_visual_*``      same name
every other key (OpenAI CLIP names: ``visual.*``,             ``clip.`` + key (open_clip's CLIP uses
``transformer.*``, ``token_embedding.*``, ``ln_final.*``,     OpenAI's names)
``positional_embedding``, ``text_projection``, ``logit_scale``)
==========================================================  =========================================

Dropped on purpose (top level of the file, not part of the model): ``optimizer`` (AdamW state),
``lr_scheduler`` (timm scheduler state), ``max_accuracy``, ``epoch``, ``config`` (read for the cross-check only).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CLIP
from torch import Tensor

from chronoclip_ila.options import ILAOptions
from core.clip import infer_clip_config
from core.serialization import load_state_dict_strict, safe_load

__all__ = ["OfficialArchitecture", "from_official_state_dict", "infer_architecture", "load_official_checkpoint",
           "read_official_checkpoint", "to_official_state_dict"]

logger = logging.getLogger(__name__)

_BLOCK_KEY = re.compile(r"^visual\.transformer\.resblocks\.(\d+)\.((?:message_|temporal_).+)$")
_POINT_HEAD_INPUT = "visual.transformer.resblocks.0.message_attn.prediction_block.0.weight"
_OURS_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
_SAME_NAME = ("mit.", "prompts_generator.", "prompts_visual_ln.", "prompts_visual_proj")
_CLIP_KEY = re.compile(r"^(visual\.|transformer\.|token_embedding\.|ln_final\.|positional_embedding$|text_projection$|"
                       r"logit_scale$)")
# Top-level entries of the official file that are not the model (see the module docstring).
DROPPED_TOP_LEVEL = {"optimizer": "AdamW state, not needed for inference",
                     "lr_scheduler": "timm CosineLRScheduler state",
                     "max_accuracy": "best validation accuracy (a float)",
                     "epoch": "last finished epoch",
                     "config": "pickled yacs CfgNode; read only to cross-check frames and input size"}


def _to_ours(key: str) -> str | None:
    match = _BLOCK_KEY.match(key)
    if match:
        return f"blocks.{match[1]}.{match[2]}"
    if key.startswith(_SAME_NAME):
        return key
    if _CLIP_KEY.match(key):
        return "clip." + key
    return None


def _to_official(key: str) -> str:
    match = _OURS_BLOCK_KEY.match(key)
    if match:
        return f"visual.transformer.resblocks.{match[1]}.{match[2]}"
    return key.removeprefix("clip.")


def to_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict -> the official key names (the inverse of the table in the module docstring)."""
    return {_to_official(k): v for k, v in state_dict.items()}


@dataclass(frozen=True)
class OfficialArchitecture:
    """What the weights say about the model."""

    variant: str  # "k400" (text head) or "ssv2" (linear head)
    num_frames: int
    clip_config: dict[str, Any]  # open_clip CLIP config
    mit_layers: int
    prompt_layers: int  # 0 for ssv2
    num_classes: int | None  # ssv2 head size
    alignment_channels: int  # trunk channels (official: 256)


def _count(keys: list[str], prefix: str) -> int:
    return len({k[len(prefix):].split(".")[0] for k in keys if k.startswith(prefix)})


def _vision_only_clip_config(state: Mapping[str, Tensor]) -> dict[str, Any]:
    width, _, patch, _ = state["visual.conv1.weight"].shape
    grid = round((state["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    layers = _count(list(state), "visual.transformer.resblocks.")
    return {
        "embed_dim": int(state["visual.proj"].shape[1]),
        "quick_gelu": True,
        "vision_cfg": {"image_size": int(patch * grid), "patch_size": int(patch), "width": int(width),
                       "layers": layers, "head_width": 64},
        # placeholder text tower, dropped by ILASSv2Model (the SSv2 branch has none)
        "text_cfg": {"context_length": 77, "vocab_size": 1, "width": 64, "heads": 1, "layers": 1},
    }


def infer_architecture(state: Mapping[str, Tensor]) -> OfficialArchitecture:
    """Architecture of an official ILA ``model`` state dict, from its key names and shapes."""
    keys = list(state)
    if any(key not in state for key in ("mit.positional_embedding", "visual.conv1.weight", _POINT_HEAD_INPUT)):
        raise ValueError(f"not an ILA checkpoint: 'mit.positional_embedding', 'visual.conv1.weight' or "
                         f"'{_POINT_HEAD_INPUT}' is missing. "
                         "Pass the ckpt_epoch_*.pth / best.pth file written by the official ILA code")
    num_frames = int(state["mit.positional_embedding"].shape[1])
    ssv2 = "mit.classify_head.2.weight" in state
    dense_trunk = "visual.transformer.resblocks.0.message_attn.interactive_block.0.weight" in state
    if ssv2 != dense_trunk:
        raise ValueError(
            "inconsistent ILA checkpoint: " + ("a linear head (mit.classify_head) with the K400 depthwise trunk"
                                               if ssv2 else "the SSv2 dense trunk without a linear head") +
            "; the official branches pair the K400 trunk with the text head and the SSv2 trunk with the linear head")
    clip_state = {k: v for k, v in state.items() if _CLIP_KEY.match(k) and not _BLOCK_KEY.match(k)}
    if ssv2:
        clip_config = _vision_only_clip_config(clip_state)
        num_classes = int(state["mit.classify_head.2.weight"].shape[0])
    else:
        clip_config = infer_clip_config(clip_state)
        num_classes = None
    return OfficialArchitecture(
        variant="ssv2" if ssv2 else "k400", num_frames=num_frames, clip_config=clip_config,
        mit_layers=_count(keys, "mit.resblocks."), prompt_layers=_count(keys, "prompts_generator.decoder."),
        num_classes=num_classes, alignment_channels=int(state[_POINT_HEAD_INPUT].shape[1]))


def read_official_checkpoint(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The ``model`` state dict and the other top-level entries of an official checkpoint, read safely.

    Also accepts a bare state dict (a file holding only ``model``'s content). A ``module.`` prefix is stripped.
    """
    loaded = safe_load(path)
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        state, extra = loaded["model"], {k: v for k, v in loaded.items() if k != "model"}
    elif isinstance(loaded, Mapping) and loaded and all(isinstance(v, Tensor) for v in loaded.values()):
        state, extra = loaded, {}
    else:
        found = sorted(loaded) if isinstance(loaded, Mapping) else type(loaded).__name__
        raise ValueError(f"{str(path)!r} is not an ILA checkpoint: expected a dict with a 'model' state dict, found "
                         f"{found}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return state, extra


def _cross_check_config(config: Any, arch: OfficialArchitecture, path: Path) -> None:
    """Warn when the pickled yacs config disagrees with the weights (the weights win)."""
    data = config.get("DATA") if isinstance(config, Mapping) else None
    if not isinstance(data, Mapping):
        return
    size = arch.clip_config["vision_cfg"]["image_size"]
    for field, expected in (("NUM_FRAMES", arch.num_frames), ("INPUT_SIZE", size)):
        if field in data and data[field] != expected:
            logger.warning("%s: config DATA.%s = %s but the weights say %s; using the weights", path, field,
                           data[field], expected)


def from_official_state_dict(state: Mapping[str, Tensor], arch: OfficialArchitecture | None = None) -> torch.nn.Module:
    """An eval-mode ILA model with the official ``state`` loaded strictly."""
    from chronoclip_ila.model import ILAModel, ILASSv2Model

    arch = arch or infer_architecture(state)
    unmapped = sorted(k for k in state if _to_ours(k) is None)
    if unmapped:
        raise ValueError(f"unexpected keys in the ILA checkpoint ({len(unmapped)}): {unmapped[:12]}; they match no "
                         f"official ILA module (see chronoclip_ila.convert)")
    clip = CLIP(**arch.clip_config)
    options = ILAOptions(variant=arch.variant, num_classes=arch.num_classes, mit_layers=arch.mit_layers,
                         alignment_channels=arch.alignment_channels,
                         **({"prompt_layers": arch.prompt_layers} if arch.variant == "k400" else {}))
    model = (ILASSv2Model if arch.variant == "ssv2" else ILAModel)(clip, arch.num_frames, options)
    ours = {_to_ours(k): v for k, v in state.items()}
    load_state_dict_strict(model, ours, f"ILA checkpoint ({arch.variant}, {arch.num_frames} frames)",
                           display=_to_official)
    return model.eval()


def load_official_checkpoint(path: str | Path) -> torch.nn.Module:
    """Eval-ready ILA model (K400 or SSv2 variant, inferred) from an official checkpoint file."""
    path = Path(path)
    state, extra = read_official_checkpoint(path)
    arch = infer_architecture(state)
    _cross_check_config(extra.get("config"), arch, path)
    logger.info("ILA checkpoint %s: %s variant, %d frames, %d px, %d vision layers", path, arch.variant,
                arch.num_frames, arch.clip_config["vision_cfg"]["image_size"], arch.clip_config["vision_cfg"]["layers"])
    return from_official_state_dict(state, arch)
