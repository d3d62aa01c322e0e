"""Reading the authors' TC-CLIP checkpoints (spec §8) without executing pickled code.

A released file is ``torch.save({"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config"})``
with the DDP ``module.`` prefix on every weight and the whole hydra config as an OmegaConf ``DictConfig``.
:func:`core.serialization.safe_load` turns the ``DictConfig`` into inert placeholders; :func:`config_to_dict`
reads the values back out of them, so omegaconf is never imported. The token embedding table is not
in the file (it is outside the official model) and comes from OpenAI's CLIP weights.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from core.serialization import Opaque, safe_load

__all__ = ["DROPPED_KEYS", "OUTSIDE_OFFICIAL_MODEL", "config_to_dict", "convert_state_dict", "read_official",
           "to_official_state_dict"]

logger = logging.getLogger(__name__)

# Official key (after the ``module.`` prefix) -> ours. Patterns are matched in full; ``{}`` groups carry over.
_RENAMES: list[tuple[str, str]] = [
    (r"logit_scale", "clip.logit_scale"),
    (r"prompt_learner\.ctx", "prompt_learner.ctx"),
    (r"image_encoder\.(class_embedding|positional_embedding|proj|conv1\.weight|ln_(?:pre|post)\.(?:weight|bias))",
     r"clip.visual.\1"),
    (r"image_encoder\.transformer\.resblocks\.(\d+)\.attn\.local_global_bias_table", r"local_global_bias_table.\1"),
    # packed attention (files trained with use_custom_attention: false) maps 1:1
    (r"image_encoder\.transformer\.resblocks\.(\d+)\.(attn\.in_proj_(?:weight|bias)|attn\.out_proj\.(?:weight|bias)"
     r"|ln_[12]\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))", r"clip.visual.transformer.resblocks.\1.\2"),
    (r"text_encoder\.(positional_embedding|text_projection|ln_final\.(?:weight|bias))", r"clip.\1"),
    (r"text_encoder\.transformer\.resblocks\.(\d+)\.(attn\.in_proj_(?:weight|bias)|attn\.out_proj\.(?:weight|bias)"
     r"|ln_[12]\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))", r"clip.transformer.resblocks.\1.\2"),
    (r"text_encoder\.prompt_generation_layer\.(\d+)\.(attn\.in_proj_(?:weight|bias)|attn\.out_proj\.(?:weight|bias)"
     r"|ln_1(?:_kv)?\.(?:weight|bias)|ln_2\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))",
     r"prompt_generation_layer.\1.\2"),
]
# The official q/k/v Linears of the vision blocks (use_custom_attention: true): re-packed in q, k, v order
# into open_clip's ``attn.in_proj_{weight,bias}``.
_SPLIT_QKV = re.compile(r"image_encoder\.transformer\.resblocks\.(\d+)\.attn\.([qkv])_proj\.(weight|bias)")

# Dropped on purpose, with the reason (the official loader deletes the same keys).
DROPPED_KEYS: dict[str, str] = {
    "prompt_learner.token_prefix": "SOT embedding per *training* class; rebuilt for the class list at hand",
    "prompt_learner.token_suffix": "class-name/EOT embeddings of the *training* classes; rebuilt per class list",
    "prompt_learner.complete_text_embeddings": "ViFi-CLIP's fixed prompt embeddings (same repo); rebuilt",
}

# Ours -> official (the inverse of ``_RENAMES``); the packed vision q/k/v are split by ``_PACKED_QKV``.
_BLOCK_TENSORS = r"(attn\.out_proj\.(?:weight|bias)|ln_[12]\.(?:weight|bias)|mlp\.c_(?:fc|proj)\.(?:weight|bias))"
_TO_OFFICIAL: list[tuple[str, str]] = [
    (r"clip\.logit_scale", "logit_scale"),
    (r"prompt_learner\.ctx", "prompt_learner.ctx"),
    (r"clip\.visual\.(class_embedding|positional_embedding|proj|conv1\.weight|ln_(?:pre|post)\.(?:weight|bias))",
     r"image_encoder.\1"),
    (r"local_global_bias_table\.(\d+)", r"image_encoder.transformer.resblocks.\1.attn.local_global_bias_table"),
    (r"clip\.visual\.transformer\.resblocks\.(\d+)\." + _BLOCK_TENSORS, r"image_encoder.transformer.resblocks.\1.\2"),
    (r"clip\.(positional_embedding|text_projection|ln_final\.(?:weight|bias))", r"text_encoder.\1"),
    (r"clip\.transformer\.resblocks\.(\d+)\.(attn\.in_proj_(?:weight|bias)|" + _BLOCK_TENSORS[1:],
     r"text_encoder.transformer.resblocks.\1.\2"),
    (r"prompt_generation_layer\.(\d+)\.(attn\.in_proj_(?:weight|bias)|ln_1_kv\.(?:weight|bias)|" + _BLOCK_TENSORS[1:],
     r"text_encoder.prompt_generation_layer.\1.\2"),
]
_PACKED_QKV = re.compile(r"clip\.visual\.transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)")
# Ours, with no place in the official TCCLIP module (the official code builds it around them).
OUTSIDE_OFFICIAL_MODEL: dict[str, str] = {
    "clip.token_embedding.weight": "OpenAI CLIP's token table: the official prompt learner embeds the class prompts "
                                   "with it at construction (token_prefix/token_suffix) and does not keep it",
}


def config_to_dict(node: Any) -> Any:
    """Plain Python values of a pickled OmegaConf node read by ``safe_load`` (placeholders, not omegaconf).

    ``DictConfig``/``ListConfig`` keep their children under ``_content``; value nodes keep ``_val``.
    Interpolations (``${...}``) stay as their strings. Anything else is returned as it is.
    """
    if isinstance(node, Opaque):
        state = node.state if isinstance(node.state, dict) else {}
        if "_content" in state:
            return config_to_dict(state["_content"])
        if "_val" in state:
            return config_to_dict(state["_val"])
        return dict(node) if len(node) else None
    if isinstance(node, dict):
        return {k: config_to_dict(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [config_to_dict(v) for v in node]
    return node


def read_official(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Weights (``module.`` stripped) and config of an official checkpoint (full dict or bare state dict)."""
    path = Path(path)
    raw = safe_load(path)
    if not isinstance(raw, dict):
        raise ValueError(f"{str(path)!r} holds a {type(raw).__name__}, not a TC-CLIP checkpoint dict")
    weights = raw.get("model", raw) if isinstance(raw.get("model"), dict) else raw
    config = config_to_dict(raw.get("config")) if "model" in raw else None
    state = {k.removeprefix("module."): v for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise ValueError(f"{str(path)!r} contains no tensors; expected the authors' TC-CLIP checkpoint "
                         f"(a dict with 'model' holding the weights)")
    return state, config if isinstance(config, dict) else {}


def convert_state_dict(official: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Official TC-CLIP weights -> this package's names (``clip.*``, ``prompt_learner.ctx``, ...).

    Returns:
        The converted weights and the official keys dropped on purpose (see ``DROPPED_KEYS``).

    Raises:
        ValueError: listing every key that is neither mapped nor dropped, or an incomplete q/k/v triple.
    """
    ours: dict[str, Tensor] = {}
    dropped, unknown = [], []
    qkv: dict[tuple[int, str], dict[str, Tensor]] = {}
    for key, value in official.items():
        if key in DROPPED_KEYS:
            dropped.append(key)
            continue
        split = _SPLIT_QKV.fullmatch(key)
        if split:
            qkv.setdefault((int(split.group(1)), split.group(3)), {})[split.group(2)] = value
            continue
        for pattern, target in _RENAMES:
            match = re.fullmatch(pattern, key)
            if match:
                ours[match.expand(target)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} checkpoint keys are not part of TC-CLIP as this package knows it: "
                         f"{sorted(unknown)[:20]}. Is this a TC-CLIP checkpoint of naver-ai/tc-clip?")
    for (block, kind), parts in sorted(qkv.items()):
        if set(parts) != {"q", "k", "v"}:
            raise ValueError(f"vision block {block} has only {sorted(parts)}_proj.{kind}; q, k and v are all needed")
        ours[f"clip.visual.transformer.resblocks.{block}.attn.in_proj_{kind}"] = torch.cat(
            [parts["q"], parts["k"], parts["v"]], dim=0)
    if dropped:
        logger.info("dropped on purpose: %s", ", ".join(dropped))
    return ours, dropped


def to_official_state_dict(ours: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """This package's weights -> the official TC-CLIP module's names (the inverse of :func:`convert_state_dict`).

    The vision q/k/v come out as the separate ``q_proj``/``k_proj``/``v_proj`` Linears of the official layout
    (``use_custom_attention: true``, as the released models were trained). ``OUTSIDE_OFFICIAL_MODEL`` keys are
    left out; ``token_prefix``/``token_suffix`` are not produced (the official model builds them for its class
    list, and its loader deletes them from checkpoints).

    Raises:
        ValueError: listing every key that has no official counterpart.
    """
    official: dict[str, Tensor] = {}
    unknown = []
    for key, value in ours.items():
        if key in OUTSIDE_OFFICIAL_MODEL:
            continue
        packed = _PACKED_QKV.fullmatch(key)
        if packed:
            block, kind = packed.groups()
            for part, chunk in zip("qkv", value.chunk(3, dim=0)):
                official[f"image_encoder.transformer.resblocks.{block}.attn.{part}_proj.{kind}"] = chunk
            continue
        for pattern, target in _TO_OFFICIAL:
            match = re.fullmatch(pattern, key)
            if match:
                official[match.expand(target)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise ValueError(f"{len(unknown)} weights have no place in the official TC-CLIP model: {sorted(unknown)[:20]}")
    return official
