"""The ``ila`` method plugin: builds ILA models and converts the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path

from open_clip.model import CLIP

from chronoclip_ila.convert import load_official_checkpoint
from chronoclip_ila.model import ILAModel, ILASSv2Model
from chronoclip_ila.options import VARIANTS, ILAOptions
from core.method import Method, VideoModel

__all__ = ["ILA", "ILAOptions", "VARIANTS"]


class ILA(Method):
    """``--method ila``: Implicit Learnable Alignment (ICCV 2023) on a frozen CLIP ViT.

    ``variant="k400"`` (default) is the official ``master`` model: X-CLIP text head with the video-specific
    prompt generator, logits against the bare class names. ``variant="ssv2"`` is the paper appendix's
    Something-Something-v2 model (dense alignment trunk, no text or prompt branch, linear head over
    ``num_classes``). Options: :class:`~chronoclip_ila.options.ILAOptions`.
    """

    name = "ila"
    config_package = "chronoclip_ila.configs"
    options_class = ILAOptions
    # Trained by `python -m core.train` without --method: on the embedded synthetic data ILA shows the
    # benchmark's point best (highest time-reversal-pair and base accuracy; README "The embedded benchmark").
    default_rank = 0

    def _build(self, clip: CLIP, *, num_frames: int, options: ILAOptions) -> VideoModel:
        """A new ILA model on ``clip`` (OpenAI-layout CLIP ViT, QuickGELU; CLIP frozen, ILA blocks and MIT
        trainable) for ``num_frames`` (8, 16 or 32 in the official recipes)."""
        if options.variant == "ssv2":
            return ILASSv2Model(clip, num_frames, options)
        return ILAModel(clip, num_frames, options)

    def _load_official(self, path: Path) -> VideoModel:
        """Eval-ready model from an official ``ckpt_epoch_*.pth`` / ``best.pth`` (variant and size inferred)."""
        return load_official_checkpoint(path)
