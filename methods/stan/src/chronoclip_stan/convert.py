"""The authors' checkpoints -> a chronoclip ``STANModel``.

The official files are mmengine ``Runner.save_checkpoint`` pickles: ``{meta, state_dict, message_hub}``, with
``mmengine`` ``HistoryBuffer`` objects and numpy arrays/scalars in ``message_hub``. They are read with
``core.serialization.safe_load`` (nothing pickled runs, neither mmengine nor numpy is needed) and only
``state_dict`` is used. Its keys are Hugging Face CLIP names under ``backbone.`` (vision + branch) and
``text_backbone.`` (text tower); the 2023 code named the branch ``timesFPN_*`` instead of ``STAN_*``.

Geometry (patch, grid, width, depth, branch depth, temporal module) comes from the weight shapes, never from
a file or config name: the official B/16 config silently builds a B/32 vision trunk.

Keys dropped on purpose:

=====================================================  ===========================================================
official key                                            why
=====================================================  ===========================================================
``backbone.timesFPN_pos_embed.weight``                  2023 code: created, never read by the forward
``backbone.timesFPN_cls_token``                         2023 code: created, never read by the forward
``text_backbone.text_model.embeddings.position_ids``    buffer saved by transformers < 4.31 (``arange(77)``)
=====================================================  ===========================================================
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chronoclip_stan.model import STANModel
from chronoclip_stan.options import STANOptions
from core.clip import clip_from_state_dict
from core.serialization import load_state_dict_strict, safe_load

__all__ = ["DROPPED_KEYS", "OUTSIDE_OFFICIAL_MODEL", "load_official_checkpoint", "official_state_dict", "split_official",
           "to_official_state_dict"]

DROPPED_KEYS = {
    "backbone.timesFPN_pos_embed.weight": "2023 code: created, never read by the forward",
    "backbone.timesFPN_cls_token": "2023 code: created, never read by the forward",
    "text_backbone.text_model.embeddings.position_ids": "buffer saved by transformers < 4.31",
}

# HF CLIP encoder-layer names -> open_clip residual-block names (q/k/v are fused separately).
_BLOCK = {
    "self_attn.out_proj.weight": "attn.out_proj.weight",
    "self_attn.out_proj.bias": "attn.out_proj.bias",
    "layer_norm1.weight": "ln_1.weight",
    "layer_norm1.bias": "ln_1.bias",
    "layer_norm2.weight": "ln_2.weight",
    "layer_norm2.bias": "ln_2.bias",
    "mlp.fc1.weight": "mlp.c_fc.weight",
    "mlp.fc1.bias": "mlp.c_fc.bias",
    "mlp.fc2.weight": "mlp.c_proj.weight",
    "mlp.fc2.bias": "mlp.c_proj.bias",
}
# Single tensors: official -> OpenAI-layout CLIP key (the layout core.clip.clip_from_state_dict reads).
_CLIP_SINGLE = {
    "backbone.class_embedding": "visual.class_embedding",
    "backbone.position_embedding.weight": "visual.positional_embedding",
    "backbone.pre_layrnorm.weight": "visual.ln_pre.weight",
    "backbone.pre_layrnorm.bias": "visual.ln_pre.bias",
    "backbone.post_layernorm.weight": "visual.ln_post.weight",
    "backbone.post_layernorm.bias": "visual.ln_post.bias",
    "text_backbone.text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_backbone.text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_backbone.text_model.final_layer_norm.weight": "ln_final.weight",
    "text_backbone.text_model.final_layer_norm.bias": "ln_final.bias",
}
_TRANSPOSED = {  # nn.Linear (out, in) weights that OpenAI CLIP stores as (in, out) matrices
    "backbone.visual_projection.weight": "visual.proj",
    "text_backbone.text_projection.weight": "text_projection",
}
_ENCODERS = {  # official layer-list prefix -> OpenAI-layout block prefix
    "backbone.layers.": "visual.transformer.resblocks.",
    "text_backbone.text_model.encoder.layers.": "transformer.resblocks.",
}
_BRANCH_PREFIXES = ("STAN_", "timesFPN_")
# Ours, with no place in the official model.
OUTSIDE_OFFICIAL_MODEL = {
    "clip.logit_scale": "the official model has no logit scale (it multiplies by the fixed 1 / tau)",
}


class _Consumer:
    """Hands out official tensors by key and remembers which were taken, so leftovers can be reported."""

    def __init__(self, state: Mapping[str, Tensor]) -> None:
        self.state = state
        self.used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.state

    def take(self, key: str) -> Tensor:
        if key not in self.state:
            raise ValueError(f"the STAN checkpoint lacks {key!r}; expected the authors' mmengine format "
                             f"(keys 'backbone.*' and 'text_backbone.*' as written by CLIPSimilarity_split)")
        self.used.add(key)
        return self.state[key].float()

    def fused_qkv(self, prefix: str) -> tuple[Tensor, Tensor]:
        """(3D, D) weight and (3D,) bias in q, k, v order (the state dict lists k, v, q)."""
        weight = torch.cat([self.take(f"{prefix}self_attn.{n}_proj.weight") for n in "qkv"])
        bias = torch.cat([self.take(f"{prefix}self_attn.{n}_proj.bias") for n in "qkv"])
        return weight, bias

    def block(self, official: str, ours: str, out: dict[str, Tensor]) -> None:
        """One HF encoder layer at ``official`` -> open_clip block tensors at ``ours`` in ``out``."""
        out[f"{ours}attn.in_proj_weight"], out[f"{ours}attn.in_proj_bias"] = self.fused_qkv(official)
        for theirs, mine in _BLOCK.items():
            out[ours + mine] = self.take(official + theirs)


def official_state_dict(checkpoint: Any) -> dict[str, Tensor]:
    """The tensors of an official checkpoint object (mmengine dict with ``state_dict``, or a bare state dict)."""
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError("not a STAN checkpoint: expected a dict with a 'state_dict' entry (mmengine format)")
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}
    if not any(k.startswith("backbone.") for k in state):
        raise ValueError("not a STAN checkpoint: no 'backbone.*' tensors in its state_dict "
                         f"(first keys: {sorted(state)[:5]})")
    return state


def _indices(state: Mapping[str, Tensor], prefix: str) -> list[int]:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return sorted({int(m.group(1)) for k in state if (m := pattern.match(k))})


def split_official(state: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
    """Map official tensors onto an OpenAI-layout CLIP state dict and our branch state dict.

    Returns:
        ``(clip_state, branch_state, arch)``: ``clip_state`` for ``core.clip.clip_from_state_dict``;
        ``branch_state`` keyed as ``STANModel.branch``; ``arch`` = ``{depth, time_module}`` read from the keys.

    Raises:
        ValueError: a missing tensor, or tensors left over that this converter does not know (listed).
    """
    src = _Consumer(state)
    clip: dict[str, Tensor] = {}
    # vision stem: the 2-D patch conv, or the lazily created (1, p, p) Conv3d of patch_3d=True
    if "backbone.patch_embedding.weight" in src or "backbone.patch_embedding_3d.weight" not in src:
        clip["visual.conv1.weight"] = src.take("backbone.patch_embedding.weight")
    else:
        clip["visual.conv1.weight"] = src.take("backbone.patch_embedding_3d.weight").squeeze(2)
    for theirs, mine in _CLIP_SINGLE.items():
        clip[mine] = src.take(theirs)
    for theirs, mine in _TRANSPOSED.items():
        clip[mine] = src.take(theirs).t().contiguous()
    for theirs, mine in _ENCODERS.items():
        indices = _indices(state, theirs)
        if not indices:
            raise ValueError(f"the STAN checkpoint has no {theirs}* tensors; both CLIP towers are needed")
        for i in indices:
            src.block(f"{theirs}{i}.", f"{mine}{i}.", clip)

    prefix = next((p for p in _BRANCH_PREFIXES if any(k.startswith(f"backbone.{p}S_layers.") for k in state)), None)
    if prefix is None:
        raise ValueError("no STAN branch in this checkpoint (no 'backbone.STAN_S_layers.*' or legacy "
                         "'backbone.timesFPN_S_layers.*'); it looks like a plain CLIP, use the 'clip' method")
    base = f"backbone.{prefix}"
    depth = len(_indices(state, f"{base}S_layers."))
    conv = f"{base}T_layers.0.layers.weight" in src
    branch: dict[str, Tensor] = {"time_embed.weight": src.take(f"{base}time_embed.weight")}
    for k in range(depth):
        src.block(f"{base}S_layers.{k}.", f"spatial.{k}.block.", branch)
        t_in, t_out = f"{base}T_layers.{k}.", f"temporal.{k}."
        if conv:
            branch[t_out + "conv.weight"] = src.take(t_in + "layers.weight")
            branch[t_out + "conv.bias"] = src.take(t_in + "layers.bias")
        else:
            branch[t_out + "attn.in_proj_weight"], branch[t_out + "attn.in_proj_bias"] = src.fused_qkv(t_in)
            branch[t_out + "attn.out_proj.weight"] = src.take(t_in + "self_attn.out_proj.weight")
            branch[t_out + "attn.out_proj.bias"] = src.take(t_in + "self_attn.out_proj.bias")
            branch[t_out + "ln.weight"] = src.take(t_in + "layer_norm1.weight")
            branch[t_out + "ln.bias"] = src.take(t_in + "layer_norm1.bias")
        branch[t_out + "temporal_fc.weight"] = src.take(t_in + "temporal_fc.weight")
        branch[t_out + "temporal_fc.bias"] = src.take(t_in + "temporal_fc.bias")

    leftover = sorted(set(state) - src.used - set(DROPPED_KEYS))
    if leftover:
        raise ValueError(f"the STAN checkpoint has {len(leftover)} tensors this converter does not know: "
                         f"{', '.join(leftover[:12])}{' ...' if len(leftover) > 12 else ''}. "
                         f"Is it a Mug-STAN or otherwise modified model? Only STAN (spec stan.md section 7) is supported")
    return clip, branch, {"depth": depth, "time_module": "conv" if conv else "selfattn"}


def load_official_checkpoint(path: str | Path, options: STANOptions | None = None) -> STANModel:
    """Build an eval-ready ``STANModel`` from the authors' checkpoint at ``path``.

    Args:
        path: an official ``.pth`` (mmengine format) or a bare state dict with the same keys.
        options: the run's :class:`~chronoclip_stan.options.STANOptions` (``task``, ``tau``, ``text_length``;
            ``drop_path_rate`` only matters if the model is trained further); ``depth`` and ``time_module``
            are replaced by what the weights hold.
    """
    clip_state, branch_state, arch = split_official(official_state_dict(safe_load(path)))
    options = replace(options or STANOptions(), **arch)
    # The official model has no logit_scale (the scale is 1 / tau); fill the open_clip slot so the strict
    # CLIP load sees a complete state dict. STANModel never reads it.
    clip_state["logit_scale"] = torch.tensor(math.log(1.0 / options.tau))
    clip = clip_from_state_dict(clip_state)
    model = STANModel(clip, options)
    load_state_dict_strict(model.branch, branch_state, f"the STAN branch of {path}",
                           hint="The branch tensors must fit the CLIP read from the same file.")
    return model.eval()


def to_official_state_dict(ours: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A ``STANModel`` state dict -> the authors' ``CLIPSimilarity_split`` state dict (the inverse of
    :func:`split_official`), with the released code's ``STAN_*`` branch names and Hugging Face's separate
    q/k/v projections. ``OUTSIDE_OFFICIAL_MODEL`` keys are left out.

    Raises:
        ValueError: a key with no official counterpart, or a missing one (listed).
    """
    used = set(OUTSIDE_OFFICIAL_MODEL) & set(ours)
    out: dict[str, Tensor] = {}

    def take(key: str) -> Tensor:
        if key not in ours:
            raise ValueError(f"the STAN state dict lacks {key!r}; expected a STANModel's state_dict()")
        used.add(key)
        return ours[key]

    def block(mine: str, theirs: str) -> None:  # one open_clip block -> one HF encoder layer
        for part, chunk in zip("qkv", take(f"{mine}attn.in_proj_weight").chunk(3, dim=0)):
            out[f"{theirs}self_attn.{part}_proj.weight"] = chunk
        for part, chunk in zip("qkv", take(f"{mine}attn.in_proj_bias").chunk(3, dim=0)):
            out[f"{theirs}self_attn.{part}_proj.bias"] = chunk
        for hf_name, our_name in _BLOCK.items():
            out[theirs + hf_name] = take(mine + our_name)

    out["backbone.patch_embedding.weight"] = take("clip.visual.conv1.weight")
    for theirs, mine in _CLIP_SINGLE.items():
        out[theirs] = take(f"clip.{mine}")
    for theirs, mine in _TRANSPOSED.items():
        out[theirs] = take(f"clip.{mine}").t().contiguous()
    for theirs, mine in _ENCODERS.items():
        for i in _indices(ours, f"clip.{mine}"):
            block(f"clip.{mine}{i}.", f"{theirs}{i}.")
    base = f"backbone.{_BRANCH_PREFIXES[0]}"
    out[f"{base}time_embed.weight"] = take("branch.time_embed.weight")
    for k in _indices(ours, "branch.spatial."):
        block(f"branch.spatial.{k}.block.", f"{base}S_layers.{k}.")
    for k in _indices(ours, "branch.temporal."):
        mine, theirs = f"branch.temporal.{k}.", f"{base}T_layers.{k}."
        if f"{mine}conv.weight" in ours:
            out[f"{theirs}layers.weight"] = take(f"{mine}conv.weight")
            out[f"{theirs}layers.bias"] = take(f"{mine}conv.bias")
        else:
            for part, chunk in zip("qkv", take(f"{mine}attn.in_proj_weight").chunk(3, dim=0)):
                out[f"{theirs}self_attn.{part}_proj.weight"] = chunk
            for part, chunk in zip("qkv", take(f"{mine}attn.in_proj_bias").chunk(3, dim=0)):
                out[f"{theirs}self_attn.{part}_proj.bias"] = chunk
            out[f"{theirs}self_attn.out_proj.weight"] = take(f"{mine}attn.out_proj.weight")
            out[f"{theirs}self_attn.out_proj.bias"] = take(f"{mine}attn.out_proj.bias")
            out[f"{theirs}layer_norm1.weight"] = take(f"{mine}ln.weight")
            out[f"{theirs}layer_norm1.bias"] = take(f"{mine}ln.bias")
        out[f"{theirs}temporal_fc.weight"] = take(f"{mine}temporal_fc.weight")
        out[f"{theirs}temporal_fc.bias"] = take(f"{mine}temporal_fc.bias")
    leftover = sorted(set(ours) - used)
    if leftover:
        raise ValueError(f"{len(leftover)} weights have no place in the official STAN model: {leftover[:12]}")
    return out
