"""The CLIP backbone of a run: which architecture, which weights, and the config saved to rebuild it.

``clip.model`` names an open_clip architecture or a chronoclip preset; ``clip.pretrained`` is a local
weights file, an open_clip pretrained tag of ``clip.model`` (``openai``: resolved by ``core.weights``), ``synthetic`` (pretrain the preset on the synthetic captions, cached) or null (random init).
OpenAI's files always get the architecture read from their weights (QuickGELU included), so
``--model ViT-B-16 --pretrained ViT-B-16.pt`` does the right thing; a named architecture that does not
match the file is an error.
"""

from __future__ import annotations

import logging
from typing import Any

from core.clip import (
    CLIP,
    build_clip,
    infer_clip_config,
    is_openai_state_dict,
    list_presets,
    named_clip_config,
    read_clip_state_dict,
)
from core.config import SYNTHETIC_PRETRAINED, expand_path

__all__ = ["build_backbone"]

logger = logging.getLogger(__name__)


def _geometry(cfg: dict[str, Any]) -> tuple:
    vision = cfg["vision_cfg"]
    return (cfg["embed_dim"], vision["width"], vision["layers"], vision["patch_size"], vision["image_size"],
            cfg["text_cfg"]["width"], cfg["text_cfg"]["layers"])


def build_backbone(model: str | None, pretrained: str | None) -> tuple[CLIP, dict[str, Any]]:
    """The run's CLIP and the open_clip config that rebuilds it (saved in ``model.pt``).

    Raises:
        ValueError: unknown architecture, ``synthetic`` with a non-preset, or a named architecture whose
            geometry differs from the weights file.
        FileNotFoundError: the weights file does not exist.
    """
    if pretrained == SYNTHETIC_PRETRAINED:
        if model not in list_presets():
            raise ValueError(f"clip.pretrained=synthetic pretrains a small preset ({', '.join(list_presets())}), "
                             f"not {model!r}; for a real CLIP pass its weights file")
        from core.training.pretrain import PretrainRecipe, pretrained_clip_path

        path = pretrained_clip_path(PretrainRecipe(preset=model))
        cfg = named_clip_config(model)
        return build_clip(cfg, pretrained=path), cfg
    if pretrained is None:
        if model is None:
            raise ValueError("clip.model is null and no clip.pretrained file to infer the architecture from")
        cfg = named_clip_config(model)
        return build_clip(cfg), cfg
    from core.weights import resolve_clip_weights

    weights = resolve_clip_weights(model, expand_path(pretrained))  # a file, or an open_clip tag (openai)
    path = weights.path
    state = read_clip_state_dict(path)
    if is_openai_state_dict(state) or model is None:
        cfg = infer_clip_config(state)
        if model is not None and _geometry(named_clip_config(model)) != _geometry(cfg):
            raise ValueError(f"--model {model} does not match the weights in {path} (embed/width/layers/patch/size "
                             f"{_geometry(cfg)} vs {_geometry(named_clip_config(model))}); pass the matching "
                             f"architecture or clip.model=null to infer it")
        logger.info("CLIP architecture read from %s (QuickGELU: %s)", path, cfg.get("quick_gelu", False))
    else:
        cfg = named_clip_config(model)
        if weights.quick_gelu:
            cfg["quick_gelu"] = True
    del state
    return build_clip(cfg, pretrained=path), cfg
