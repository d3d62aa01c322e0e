"""Finished runs of ``core.train``: the consolidated model file and how to load it without DeepSpeed.

``<run>/model.pt`` is a plain ``torch.save`` dict (readable with ``torch.load(weights_only=True)``):

========================  ============================================================================
key                       value
========================  ============================================================================
``format``, ``version``   ``"chronoclip-run-model"``, 1
``method``                method name (``core.load_method`` finds the plugin)
``clip_config``           open_clip model config of the backbone (architecture only, no weights)
``num_frames``            frames per clip the model was built for (stored here only: the copy of the
                          run config under ``config`` has no ``data.num_frames``; read it with
                          :func:`core.eval.settings.resolve_num_frames` through a loaded run)
``method_options``        keyword arguments of ``Method.build``
``class_names``           training class list (labels index it)
``descriptions``          class name -> description, or None
``state_dict``            fp32 weights of the whole ``VideoModel`` (trained and frozen tensors, buffers)
``step``, ``config``      optimizer steps done; the resolved run config
========================  ============================================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from core.method import VideoModel

__all__ = ["MODEL_FILE", "MODEL_FORMAT", "clip_weights_file", "is_run_model", "load_run_model", "model_file_payload"]

MODEL_FILE = "model.pt"
MODEL_FORMAT = "chronoclip-run-model"
MODEL_VERSION = 1


def model_file_payload(*, method: str, clip_config: Mapping[str, Any], num_frames: int,
                       method_options: Mapping[str, Any], class_names: list[str],
                       descriptions: Mapping[str, str] | None, state_dict: Mapping[str, torch.Tensor], step: int,
                       config: Mapping[str, Any]) -> dict[str, Any]:
    """The dict written to ``model.pt`` (see the module docstring)."""
    config = {key: dict(value) if isinstance(value, Mapping) else value for key, value in config.items()}
    if isinstance(config.get("data"), dict):
        config["data"].pop("num_frames", None)  # stored once, as the top-level num_frames
    return {"format": MODEL_FORMAT, "version": MODEL_VERSION, "method": method, "clip_config": dict(clip_config),
            "num_frames": int(num_frames), "method_options": dict(method_options), "class_names": list(class_names),
            "descriptions": dict(descriptions) if descriptions is not None else None,
            "state_dict": {k: v.detach().to("cpu", torch.float32) if v.is_floating_point() else v.detach().cpu()
                           for k, v in state_dict.items()},
            "step": int(step), "config": config}


def is_run_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run directory with a ``model.pt`` or such a file (not an authors' checkpoint)."""
    path = Path(path)
    if path.is_dir():
        return (path / MODEL_FILE).is_file()
    return path.name == MODEL_FILE and (path.parent / "config.yaml").is_file()


def clip_weights_file(clip_model: str | None, clip_pretrained: str | None) -> str | None:
    """The CLIP weights file a run's backbone started from (``clip.model`` / ``clip.pretrained``), e.g. for
    WiSE-FT; ``None`` when it started from random weights. ``clip.pretrained=synthetic`` names the cached
    preset pretrained on the synthetic captions (built on first use)."""
    if clip_pretrained is None:
        return None
    from core.config import SYNTHETIC_PRETRAINED

    if clip_pretrained == SYNTHETIC_PRETRAINED:
        from core.training.pretrain import PretrainRecipe, pretrained_clip_path

        return str(pretrained_clip_path(PretrainRecipe(preset=clip_model or "tiny")))
    from core.weights import looks_like_path, resolve_clip_weights

    if not looks_like_path(clip_pretrained):  # an open_clip tag such as "openai"
        return str(resolve_clip_weights(clip_model, clip_pretrained).path)
    return str(clip_pretrained)


def _model_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        hint = (" (the run has not finished: resume it with python -m core.train --resume "
                f"{path.parent})" if (path.parent / "config.yaml").is_file() else "")
        raise FileNotFoundError(f"no chronoclip model file at {str(path)!r}{hint}")
    return path


def load_run_model(path: str | os.PathLike, *, map_location: str | torch.device = "cpu",
                   ) -> tuple[VideoModel, dict[str, Any]]:
    """A finished run's model, in eval mode, and its metadata, without DeepSpeed.

    Args:
        path: a run directory or its ``model.pt``.
        map_location: device of the loaded tensors.

    Returns:
        ``(model, info)``: ``info`` holds ``method``, ``class_names``, ``descriptions``, ``num_frames``,
        ``method_options``, ``clip_config``, ``step`` and the run ``config``.

    Raises:
        FileNotFoundError: no model file there.
        ValueError: not a chronoclip model file, or its weights do not fit the method it names.
    """
    from core.clip import build_clip
    from core.method import load_method
    from core.serialization import load_weights

    file = _model_file(path)
    payload = load_weights(file, map_location=map_location)  # weights only; a pickled payload is refused
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{file} is not a chronoclip run model (format {MODEL_FORMAT!r}); for the authors' "
                         f"checkpoints use core.load_official(method, path)")
    if payload["version"] > MODEL_VERSION:
        raise ValueError(f"{file} has model-file version {payload['version']}; this chronoclip reads up to "
                         f"{MODEL_VERSION}: upgrade chronoclip")
    clip = build_clip(dict(payload["clip_config"]))
    model = load_method(payload["method"]).build(clip, num_frames=payload["num_frames"],
                                                 **payload["method_options"])
    result = model.load_state_dict(payload["state_dict"], strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{file} does not fit method {payload['method']!r} as installed: missing "
                         f"{result.missing_keys[:8]}, unexpected {result.unexpected_keys[:8]} (was it trained with "
                         f"another version of the method package?)")
    model.to(map_location).eval()
    info = {k: v for k, v in payload.items() if k not in ("state_dict", "format", "version")}
    return model, info
