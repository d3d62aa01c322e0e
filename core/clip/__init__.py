"""The CLIP backbone: open_clip ViTs by name, local weight files, and the pieces methods reuse."""

from core.clip.model import (
    CLIP,
    build_clip,
    clip_from_state_dict,
    infer_clip_config,
    is_openai_state_dict,
    list_presets,
    named_clip_config,
    read_clip_state_dict,
)
from core.clip.text import DEFAULT_TEMPLATE, class_prompts, tokenize, trim_padding

# Normalisation statistics on the 0..1 scale.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = [
    "CLIP",
    "CLIP_MEAN",
    "CLIP_STD",
    "DEFAULT_TEMPLATE",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_clip",
    "class_prompts",
    "clip_from_state_dict",
    "infer_clip_config",
    "named_clip_config",
    "is_openai_state_dict",
    "list_presets",
    "read_clip_state_dict",
    "tokenize",
    "trim_padding",
]
