"""The ``tcclip`` method plugin: builds TC-CLIP on a CLIP backbone and loads the authors' checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CLIP

from chronoclip_tcclip.convert import convert_state_dict, read_official
from chronoclip_tcclip.ensemble import wise_ft
from chronoclip_tcclip.model import TCCLIPModel
from chronoclip_tcclip.options import CHECKPOINT_CONFIG_KEYS, TCCLIPOptions
from core.clip import clip_from_state_dict, read_clip_state_dict
from core.method import Method
from core.serialization import load_state_dict_strict

__all__ = ["TCCLIP", "TCCLIPOptions"]

logger = logging.getLogger(__name__)

# Frames per clip of the released models, used when a checkpoint's config does not say (not in the weights).
RELEASED_NUM_FRAMES = 16


class TCCLIP(Method):
    """``tcclip``: TC-CLIP (ECCV 2024), Temporal Contextualization + Video-conditional Prompting."""

    name = "tcclip"
    config_package = "chronoclip_tcclip.configs"
    options_class = TCCLIPOptions
    wise_ft = staticmethod(wise_ft)

    def _build(self, clip: CLIP, *, num_frames: int, options: TCCLIPOptions) -> TCCLIPModel:
        """A new TC-CLIP on ``clip`` (spec §4 initialisation); options are the official config keys."""
        return TCCLIPModel(clip, num_frames=num_frames, options=options)

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
                checkpoint's config (which is used when present; else the released models' 16 frames and the
                :class:`TCCLIPOptions` defaults, with 77 tokens). The frame count is not in the weights.
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

        given = {"context_token_k": context_token_k, "seed_token_a": seed_token_a, "tome_r": tome_r, "tome_d": tome_d}
        values: dict[str, Any] = {key: config[key] for key in CHECKPOINT_CONFIG_KEYS if key in config}
        values.update({k: v for k, v in given.items() if v is not None})
        # 30 or 77 tokens give identical features (causal attention, EOT pooling): the default 77 lets
        # LLM-rephrased class names fit whatever the training run used
        if context_length is not None:
            values["context_length"] = context_length
        values["attention"] = attention
        ctx = ours.get("prompt_learner.ctx")
        if ctx is not None:
            values["n_ctx"] = ctx.shape[0]
        values["local_global_bias"] = any(k.startswith("local_global_bias_table.") for k in ours)
        frames = num_frames or config.get("num_frames", RELEASED_NUM_FRAMES)
        model = TCCLIPModel(backbone, num_frames=frames, options=self.options(values))
        n_vp = len({k.split(".")[1] for k in ours if k.startswith("prompt_generation_layer.")})
        if n_vp != len(model.vp_levels):
            raise ValueError(f"{path}: {n_vp} VP blocks in the weights but prompt_generation_layer_level "
                             f"{model.options.prompt_generation_layer_level!r} names {len(model.vp_levels)}")
        load_state_dict_strict(model, ours, f"{path} (TC-CLIP)")
        if wise_ft:
            model = type(self).wise_ft(model, clip_state, wise_ft)
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
