"""Building open_clip CLIP models by name and loading CLIP weights from local files or by open_clip tag.

Weights come from files the user has: OpenAI's released checkpoints (TorchScript archives such as
``ViT-B-16.pt``, or their plain state dicts) and open_clip checkpoints (``.pt``/``.bin``/``.safetensors``),
or from an open_clip pretrained tag (``openai``) resolved by ``core.weights`` through the Hugging Face hub
cache (downloaded only where the network allows; never with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import copy
import json
import logging
import os
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.model import CLIP

from core.serialization import load_state_dict_strict

logger = logging.getLogger(__name__)

__all__ = [
    "CLIP",
    "build_clip",
    "clip_from_state_dict",
    "infer_clip_config",
    "list_presets",
    "named_clip_config",
    "read_clip_state_dict",
]

# Keys OpenAI's checkpoints carry besides the weights (open_clip's loader deletes them too).
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


def list_presets() -> list[str]:
    """Names of chronoclip's small CPU presets (``tiny``, ``test``)."""
    folder = resources.files("core.clip") / "model_configs"
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def named_clip_config(name: str) -> dict[str, Any]:
    """open_clip model config (a fresh copy) of a chronoclip preset (``tiny``, ``test``) or an open_clip
    architecture name (``ViT-B-16``, ``ViT-B-16-quickgelu``, ...)."""
    if name in list_presets():
        text = (resources.files("core.clip") / "model_configs" / f"{name}.json").read_text()
        return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ValueError(
            f"unknown CLIP architecture {name!r} (clip.model / --model); use a chronoclip preset ({', '.join(list_presets())}) or an "
            f"open_clip name such as ViT-B-16, ViT-B-16-quickgelu, ViT-L-14 (open_clip.list_models() lists all)")
    return copy.deepcopy(cfg)


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("constants.pkl") or "/code/" in name for name in archive.namelist())


def read_clip_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read CLIP weights from a local file, never executing pickled code.

    Accepts OpenAI's TorchScript archives (``ViT-B-16.pt``; ``torch.load`` refuses those since torch 2.6,
    so they go through ``torch.jit.load``, which runs TorchScript, not Python pickles), OpenAI's plain state
    dicts and open_clip checkpoints (a state dict, or a dict holding one under ``state_dict``; a
    ``module.`` prefix is stripped). OpenAI's metadata keys are kept so the caller can tell the origin.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CLIP weights {str(path)!r} not found. Pass the local file of OpenAI's release (e.g. ViT-B-16.pt), an "
            f"open_clip checkpoint, or an open_clip pretrained tag with the architecture (build_clip('ViT-B-16', "
            f"pretrained='openai')).")
    if _is_torchscript(path):
        state = torch.jit.load(str(path), map_location="cpu").state_dict()
    elif path.suffix == ".safetensors":  # open_clip's hub files (open_clip_model.safetensors)
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        from core.serialization import load_weights

        state = load_weights(path)  # torch.load(weights_only=True); a pickled payload is refused by name
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"{str(path)!r} does not hold a CLIP state dict (got {type(state).__name__})")
    return {k.removeprefix("module."): v for k, v in state.items()}


def is_openai_state_dict(state_dict: dict[str, Any]) -> bool:
    """OpenAI's files carry ``input_resolution``/``context_length``/``vocab_size`` beside the weights."""
    return all(key in state_dict for key in _OPENAI_EXTRA_KEYS)


def infer_clip_config(state_dict: dict[str, torch.Tensor]) -> dict[str, Any]:
    """open_clip model config of an OpenAI-layout CLIP ViT state dict, read from the weight shapes.

    Head counts are width // 64 in both towers, as in every OpenAI CLIP.
    """
    if "visual.conv1.weight" not in state_dict:
        raise ValueError("not a CLIP ViT state dict: 'visual.conv1.weight' is missing (ResNet CLIPs are not supported)")
    width, _, patch, _ = state_dict["visual.conv1.weight"].shape
    grid = round((state_dict["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    vision_layers = len({k.split(".")[3] for k in state_dict if k.startswith("visual.transformer.resblocks.")})
    text_width = state_dict["ln_final.weight"].shape[0]
    text_layers = len({k.split(".")[2] for k in state_dict if k.startswith("transformer.resblocks.")})
    return {
        "embed_dim": int(state_dict["text_projection"].shape[1]),
        "quick_gelu": True,
        "vision_cfg": {"image_size": int(patch * grid), "patch_size": int(patch), "width": int(width),
                       "layers": vision_layers, "head_width": 64},
        "text_cfg": {"context_length": int(state_dict["positional_embedding"].shape[0]),
                     "vocab_size": int(state_dict["token_embedding.weight"].shape[0]),
                     "width": int(text_width), "heads": int(text_width // 64), "layers": text_layers},
    }


def _load_strict(model: CLIP, state_dict: dict[str, torch.Tensor], source: str) -> None:
    weights = {k: v for k, v in state_dict.items() if k not in _OPENAI_EXTRA_KEYS}
    load_state_dict_strict(model, weights, f"CLIP weights from {source}",
                           hint="Pick the architecture that matches the file (or pass name=None to infer it from "
                                "the weights).")


def clip_from_state_dict(state_dict: dict[str, torch.Tensor]) -> CLIP:
    """A CLIP ViT built from an OpenAI-layout state dict: architecture inferred, QuickGELU, strict load."""
    model = CLIP(**infer_clip_config(state_dict))
    _load_strict(model, state_dict, "the given state dict")
    return model


def build_clip(
    name: str | dict[str, Any] | None = "tiny",
    pretrained: str | os.PathLike | None = None,
    **overrides: Any,
) -> CLIP:
    """Build an open_clip ``CLIP`` ViT, optionally with weights from a local file.

    Args:
        name: a chronoclip preset (``tiny``, ``test``), an open_clip architecture (``ViT-B-16``,
            ``ViT-B-16-quickgelu``, ``ViT-L-14``, ...), a full model-config dict, or ``None`` to infer the
            architecture from ``pretrained``.
        pretrained: local weights file (OpenAI TorchScript or state dict, or an open_clip checkpoint), or an
            open_clip pretrained tag of ``name`` (``openai``, ``laion2b_s34b_b88k``, ...) resolved through open_clip's
            registry and the Hugging Face hub cache (``core.weights.resolve_clip_weights``; offline with
            ``HF_HUB_OFFLINE=1``).
        **overrides: config entries to change, e.g. ``quick_gelu=True`` or
            ``vision_cfg={"layers": 6}`` (nested dicts are merged).

    Returns:
        A float32 ``open_clip.model.CLIP``.

    Raises:
        ValueError: unknown architecture, weights that do not fit it, or OpenAI weights paired with a
            plain-GELU config (open_clip would silently build the wrong model).
    """
    if pretrained is not None:
        from core.weights import resolve_clip_weights

        resolved = resolve_clip_weights(name if isinstance(name, str) else None, pretrained)
        pretrained = resolved.path
        if resolved.quick_gelu:  # open_clip's pretrained config says so (OpenAI's tags)
            overrides.setdefault("quick_gelu", True)
    state = read_clip_state_dict(pretrained) if pretrained is not None else None
    if name is None:
        if state is None:
            raise ValueError("build_clip(name=None) infers the architecture from weights: pass pretrained=<file>")
        cfg = infer_clip_config(state)
    else:
        cfg = dict(name) if isinstance(name, dict) else named_clip_config(name)
    cfg = _merge(cfg, overrides)
    if state is not None and is_openai_state_dict(state) and not cfg.get("quick_gelu", False):
        raise ValueError(
            f"{pretrained} holds OpenAI CLIP weights, which were trained with QuickGELU, but the architecture "
            f"{name!r} uses plain GELU. Use the '-quickgelu' architecture (e.g. 'ViT-B-16-quickgelu'), pass "
            f"quick_gelu=True, or name=None to infer it from the weights.")
    unknown = set(cfg) - {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu", "init_logit_scale", "init_logit_bias",
                          "cast_dtype", "output_dict"}
    if unknown:
        raise ValueError(f"CLIP config keys {sorted(unknown)} are not supported by chronoclip's CLIP ViT builder")
    model = CLIP(**cfg)
    if state is not None:
        _load_strict(model, state, str(pretrained))
        logger.info("loaded CLIP weights from %s", pretrained)
    return model
