"""The ``ila`` method plugin: builds ILA models and converts the authors' checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from open_clip.model import CLIP

from chronoclip_ila.convert import load_official_checkpoint
from chronoclip_ila.model import ILAModel, ILASSv2Model
from core.method import Method, VideoModel

__all__ = ["ILA"]

VARIANTS = ("k400", "ssv2")


class ILA(Method):
    """``--method ila``: Implicit Learnable Alignment (ICCV 2023) on a frozen CLIP ViT.

    ``variant="k400"`` (default) is the official ``master`` model: X-CLIP text head with the video-specific
    prompt generator, logits against the bare class names. ``variant="ssv2"`` is the paper appendix's
    Something-Something-v2 model (dense alignment trunk, no text or prompt branch, linear head over
    ``num_classes``).
    """

    name = "ila"
    config_package = "chronoclip_ila.configs"

    def _build(self, clip: CLIP, *, num_frames: int, variant: str = "k400", num_classes: int | None = None,
               drop_path_rate: float = 0.0, mit_layers: int = 1, prompt_layers: int = 2, prompt_alpha: float = 0.1,
               optim: Mapping[str, float] | None = None, alignment_channels: int = 256) -> VideoModel:
        """A new ILA model on ``clip`` (CLIP frozen, ILA blocks and MIT trainable).

        Args:
            clip: OpenAI-layout CLIP ViT (QuickGELU), pretrained or the tiny preset.
            num_frames: frames per clip ``T`` (8, 16 or 32 in the official recipes).
            variant: ``"k400"`` or ``"ssv2"``.
            num_classes: SSv2 head size (required for ``ssv2``; 174 for Something-Something-v2).
            drop_path_rate: official ``MODEL.DROP_PATH_RATE`` (0 in every official recipe).
            mit_layers: MIT depth (1, as the official ``xclip.load``).
            prompt_layers, prompt_alpha: prompt generator depth and initial scale (K400 only; 2 and 0.1).
            optim: per-group LR/decay overrides, see :class:`chronoclip_ila.model.OptimConfig`.
            alignment_channels: channels of the alignment conv trunk (official: 256 at every CLIP size; the
                synthetic CPU recipe uses 64).
        """
        if variant not in VARIANTS:
            raise ValueError(f"unknown ILA variant {variant!r}; use one of {VARIANTS}")
        if variant == "ssv2":
            if num_classes is None:
                raise ValueError("the ssv2 variant has a linear head: pass method_options num_classes (174 for SSv2)")
            return ILASSv2Model(clip, num_frames, num_classes=num_classes, drop_path_rate=drop_path_rate,
                                mit_layers=mit_layers, optim=optim, alignment_channels=alignment_channels)
        if num_classes is not None:
            raise ValueError("num_classes is only for variant='ssv2'; the k400 variant classifies against class texts")
        return ILAModel(clip, num_frames, drop_path_rate=drop_path_rate, mit_layers=mit_layers,
                        prompt_layers=prompt_layers, prompt_alpha=prompt_alpha, optim=optim,
                        alignment_channels=alignment_channels)

    def _load_official(self, path: Path) -> VideoModel:
        """Eval-ready model from an official ``ckpt_epoch_*.pth`` / ``best.pth`` (variant and size inferred)."""
        return load_official_checkpoint(path)
