"""WiSE-FT weight-space ensembling as TC-CLIP's evaluation applies it (spec §7, Appendix E of the paper).

Every parameter of the fine-tuned model except those whose name contains ``local_global_bias``,
``prompt_learner`` or ``prompt_generation`` becomes ``(1 - alpha) · θ_CLIP + alpha · θ_finetuned``, computed
in fp32; ``alpha`` weights the FINE-TUNED side (0.7 in the paper's "WE" rows and the README numbers).
``logit_scale`` is interpolated too; buffers are untouched. The repository's TRAIN_EVAL.md says
``wise_ft=1.0`` gives vanilla CLIP: by the code it gives the fine-tuned model.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Mapping

import torch
from torch import Tensor

from chronoclip_tcclip.model import TCCLIPModel
from core.clip import read_clip_state_dict

__all__ = ["WISE_FT_EXCLUDED", "wise_ft"]

# Name substrings that keep the fine-tuned value (the official keywords_to_exclude).
WISE_FT_EXCLUDED = ("local_global_bias", "prompt_learner", "prompt_generation")

# CLIP tensors the official builder rounds to fp16 before loading (convert_weights: conv/linear/attention
# weights and biases, proj, text_projection); θ_CLIP is those values "as loaded". No-op for OpenAI's fp16 files.
_FP16_AS_LOADED = re.compile(
    r".*(conv1\.weight|\.attn\.in_proj_(weight|bias)|\.attn\.out_proj\.(weight|bias)|\.mlp\.c_(fc|proj)\.(weight|bias))"
    r"|visual\.proj|text_projection")


def _zeroshot_value(state: Mapping[str, Tensor], key: str) -> Tensor:
    if key not in state:
        raise ValueError(f"the zero-shot CLIP state has no {key!r}; pass the OpenAI CLIP weights the model was "
                         f"fine-tuned from (e.g. ViT-B-16.pt)")
    value = state[key]
    if _FP16_AS_LOADED.fullmatch(key):
        value = value.half()
    return value.float()


def wise_ft(
    finetuned_model: TCCLIPModel,
    zeroshot_clip_state: Mapping[str, Tensor] | str | os.PathLike,
    alpha: float,
) -> TCCLIPModel:
    """A weight-space ensemble of a fine-tuned TC-CLIP and the CLIP it started from.

    Args:
        finetuned_model: the fine-tuned model (e.g. from ``core.load_official("tcclip", ...)``); not modified.
        zeroshot_clip_state: OpenAI-layout CLIP state dict (``core.clip.read_clip_state_dict``) or its file.
        alpha: weight of the fine-tuned model, in [0, 1] (official ``wise_ft``; 0.7 in the paper).

    Returns:
        A new model (a deep copy) with the fused weights, in the input model's dtype and device.
    """
    if not isinstance(finetuned_model, TCCLIPModel):
        raise TypeError(f"wise_ft expects a TC-CLIP model; got {type(finetuned_model).__name__}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha weights the fine-tuned model and must lie in [0, 1]; got {alpha}")
    state = zeroshot_clip_state
    if isinstance(state, (str, os.PathLike)):
        state = read_clip_state_dict(state)
    fused = copy.deepcopy(finetuned_model)
    with torch.no_grad():
        for name, param in fused.named_parameters():
            # the token table is not part of the official model (never trained, never fused)
            if any(k in name for k in WISE_FT_EXCLUDED) or name == "clip.token_embedding.weight":
                continue
            zeroshot = _zeroshot_value(state, name.removeprefix("clip."))
            if zeroshot.shape != param.shape:
                raise ValueError(f"{name}: zero-shot CLIP has shape {tuple(zeroshot.shape)}, the model "
                                 f"{tuple(param.shape)}; pass the CLIP the model was fine-tuned from")
            mixed = (1 - alpha) * zeroshot.to(param.device) + alpha * param.float()
            param.copy_(mixed.to(param.dtype))
    return fused
