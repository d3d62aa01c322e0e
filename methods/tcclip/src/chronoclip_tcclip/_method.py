"""The ``tcclip`` method plugin: builds TC-CLIP on a CLIP backbone and loads the authors' checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CLIP

from chronoclip_tcclip._convert import convert_state_dict, read_official
from chronoclip_tcclip._model import TCCLIPModel
from chronoclip_tcclip._wise_ft import wise_ft as _wise_ft
from core.clip import clip_from_state_dict, read_clip_state_dict
from core.method import Method

__all__ = ["TCCLIP"]

logger = logging.getLogger(__name__)

# Architecture options read from the checkpoint's config when the caller does not give them
# (official config key -> fallback when the config is absent: the released models' values).
_FROM_CONFIG: dict[str, Any] = {
    "num_frames": 16,
    "context_token_k": 96,
    "seed_token_a": 0.3,
    "tome_r": 100,
    "tome_d": 0.0,
    "ctx_init": "a photo of a",
    "prompt_generation_layer_level": None,
    "im_stop_grad": True,
}


class TCCLIP(Method):
    """``tcclip``: TC-CLIP (ECCV 2024), Temporal Contextualization + Video-conditional Prompting."""

    name = "tcclip"
    config_package = "chronoclip_tcclip.configs"

    def _build(
        self,
        clip: CLIP,
        *,
        num_frames: int,
        context_token_k: int = 96,
        seed_token_a: float = 0.3,
        tome_r: int = 100,
        tome_d: float = 0.0,
        n_ctx: int = 4,
        ctx_init: str = "a photo of a",
        prompt_generation_layer_level: int | str | Sequence[int] | None = None,
        prompt_generation_layer_init: str = "clip",
        local_global_bias: bool = True,
        im_stop_grad: bool = True,
        context_length: int = 77,
        lr_10x: bool = True,
        attention: str = "official",
    ) -> TCCLIPModel:
        """A new TC-CLIP on ``clip`` (spec §4 initialisation); options are the official config keys, plus
        ``attention`` (``official`` | ``sdpa``: how the TC attention is computed, README "Attention modes")."""
        return TCCLIPModel(
            clip, num_frames=num_frames, context_token_k=context_token_k, seed_token_a=seed_token_a, tome_r=tome_r,
            tome_d=tome_d, n_ctx=n_ctx, ctx_init=ctx_init, prompt_generation_layer_level=prompt_generation_layer_level,
            prompt_generation_layer_init=prompt_generation_layer_init, local_global_bias=local_global_bias,
            im_stop_grad=im_stop_grad, context_length=context_length, lr_10x=lr_10x, attention=attention)

    def _load_official(
        self,
        path: Path,
        *,
        clip: str | Path | None = None,
        num_frames: int | None = None,
        context_token_k: int | None = None,
        seed_token_a: float | None = None,
        tome_r: int | None = None,
        tome_d: float | None = None,
        context_length: int | None = None,
        wise_ft: float = 0.0,
        attention: str = "official",
    ) -> TCCLIPModel:
        """An eval-ready TC-CLIP from a naver-ai/tc-clip checkpoint.

        Args:
            path: the released ``.pth`` (``{"model": ..., "config": DictConfig, ...}`` or a bare state dict).
            clip: OpenAI CLIP weights of the same architecture (e.g. ``ViT-B-16.pt``): the token embedding
                table is not in TC-CLIP's files, and WiSE-FT needs the zero-shot weights.
            num_frames, context_token_k, seed_token_a, tome_r, tome_d, context_length: override the values in the
                checkpoint's config (which is used when present; else the released models' 16 frames, K = 96,
                0.3, r = 100, d = 0, 77 tokens). The frame count is not in the weights.
            wise_ft: WiSE-FT weight of the fine-tuned model (0 = off, the official convention; the paper uses 0.7).
            attention: ``official`` (default, exact order) or ``sdpa`` (fused output, CLS-row softmax for seeds).
        """
        if clip is None:
            raise ValueError("TC-CLIP checkpoints lack the token embedding table: pass clip=<OpenAI CLIP weights of "
                             "the same architecture>, e.g. core.load_official('tcclip', path, clip='ViT-B-16.pt')")
        official, config = read_official(path)
        _check_config(config, path)
        ours, _ = convert_state_dict(official)
        clip_state = read_clip_state_dict(clip)
        if "token_embedding.weight" not in clip_state:
            raise ValueError(f"{clip} has no token_embedding.weight; pass OpenAI's CLIP weights (e.g. ViT-B-16.pt)")
        ours["clip.token_embedding.weight"] = clip_state["token_embedding.weight"]
        backbone = _backbone(ours, path, clip)

        given = {"num_frames": num_frames, "context_token_k": context_token_k, "seed_token_a": seed_token_a,
                 "tome_r": tome_r, "tome_d": tome_d}
        options = {key: config.get(key, default) for key, default in _FROM_CONFIG.items()}
        options.update({k: v for k, v in given.items() if v is not None})
        # 30 or 77 tokens give identical features (causal attention, EOT pooling): default to 77 so that
        # LLM-rephrased class names fit whatever the training run used
        options["context_length"] = context_length or 77
        options["attention"] = attention
        ctx = ours.get("prompt_learner.ctx")
        n_vp = len({k.split(".")[1] for k in ours if k.startswith("prompt_generation_layer.")})
        model = TCCLIPModel(
            backbone, n_ctx=ctx.shape[0] if ctx is not None else 4,
            local_global_bias=any(k.startswith("local_global_bias_table.") for k in ours), **options)
        if n_vp != len(model.vp_levels):
            raise ValueError(f"{path}: {n_vp} VP blocks in the weights but prompt_generation_layer_level "
                             f"{options['prompt_generation_layer_level']!r} names {len(model.vp_levels)}")
        _load_strict(model, ours, path)
        if wise_ft:
            model = _wise_ft(model, clip_state, wise_ft)
        return model


def _check_config(config: dict[str, Any], path: Path) -> None:
    trainer = config.get("trainer_name", "TCCLIP")
    if trainer != "TCCLIP":
        raise ValueError(f"{path} was trained with trainer {trainer!r}, not TCCLIP; this loader reads TC-CLIP "
                         f"checkpoints only")
    pos = config.get("positional_embedding_type", "space")
    if pos != "space":
        raise ValueError(f"{path} uses positional_embedding_type={pos!r}; only 'space' (every released model) is "
                         f"supported")


def _backbone(ours: dict[str, torch.Tensor], path: Path, clip: str | Path) -> CLIP:
    """The open_clip CLIP holding the checkpoint's backbone weights (architecture read from their shapes)."""
    state = {k.removeprefix("clip."): v for k, v in ours.items() if k.startswith("clip.")}
    text_width = state["ln_final.weight"].shape[0] if "ln_final.weight" in state else None
    if text_width != state["token_embedding.weight"].shape[1]:
        raise ValueError(f"the token table of {clip} has width {state['token_embedding.weight'].shape[1]} but "
                         f"{path} has text width {text_width}; pass the OpenAI CLIP of the same architecture")
    if state.get("visual.positional_embedding") is not None and state["visual.positional_embedding"].ndim != 2:
        raise ValueError(f"{path} has a joint spatio-temporal positional table; only 'space' is supported")
    try:
        return clip_from_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{path}: the backbone weights do not form a CLIP ViT: {err}") from err


def _load_strict(model: TCCLIPModel, ours: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(ours))
    unexpected = sorted(set(ours) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(ours) if expected[k].shape != ours[k].shape)
    if missing or unexpected or mismatched:
        lines = [f"{path} does not match the TC-CLIP it describes:"]
        if missing:
            lines.append(f"  missing: {missing[:20]}")
        if unexpected:
            lines.append(f"  unexpected: {unexpected[:20]}")
        lines += [f"  shape of {k}: file {tuple(ours[k].shape)} vs model {tuple(expected[k].shape)}"
                  for k in mismatched[:20]]
        raise ValueError("\n".join(lines))
    model.load_state_dict({k: v.float() for k, v in ours.items()}, strict=True)
