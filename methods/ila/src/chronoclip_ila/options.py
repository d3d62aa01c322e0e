"""The options of ``--method ila`` (a recipe's ``method_options``): every option and its default, once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from chronoclip_ila.align import TRUNK_CHANNELS

__all__ = ["ILAOptions", "OFFICIAL_BASE_LR", "OptimConfig", "VARIANTS"]

VARIANTS = ("k400", "ssv2")

# The official TRAIN.LR, against which the official absolute per-module LRs are expressed as lr_scale below.
OFFICIAL_BASE_LR = 8e-6


@dataclass(frozen=True)
class OptimConfig:
    """Per-module ``lr_scale`` (relative to ``optim.lr``) and weight decays of the official ``build_optimizer``.

    The official code hard-codes absolute LRs for two of its three modules; at the official ``optim.lr`` of
    8e-6 these scales give exactly those values. The MIT group uses the recipe's ``optim.weight_decay``.
    """

    # message_fc, message_ln and the whole alignment module (BN affine included): official 5e-4 = 62.5 x 8e-6.
    message_lr_scale: float = 62.5
    # Their weight decay (hard-coded 0.01 in the official code).
    message_weight_decay: float = 0.01
    # temporal_skip_fc, temporal_skip_align_fc: official 10 x TRAIN.LR = 8e-5.
    temporal_lr_scale: float = 10.0
    # Their weight decay (hard-coded 0.001).
    temporal_weight_decay: float = 0.001
    # The MIT (and the SSv2 head): official 4e-4 = 50 x 8e-6.
    mit_lr_scale: float = 50.0


@dataclass(frozen=True)
class ILAOptions:
    """ILA's options (official config keys in the comments)."""

    # "k400": the official master model (X-CLIP text head, video-specific prompts); "ssv2": the paper
    # appendix's Something-Something-v2 model (dense alignment trunk, linear head over num_classes).
    variant: Literal["k400", "ssv2"] = "k400"
    # SSv2 head size (required for ssv2: 174 for Something-Something-v2; must be unset for k400).
    num_classes: int | None = None
    # MODEL.DROP_PATH_RATE, spread linearly over the blocks (0 in every official recipe).
    drop_path_rate: float = 0.0
    # MIT depth (1, as the official xclip.load).
    mit_layers: int = 1
    # Prompt-generator depth (k400 only).
    prompt_layers: int = 2
    # Prompt-generator output scale at init (k400 only).
    prompt_alpha: float = 0.1
    # Per-module LR scales and weight decays (a mapping of OptimConfig fields in a recipe).
    optim: OptimConfig = field(default_factory=OptimConfig)
    # Channels of the alignment conv trunk (official: 256 at every CLIP size; the synthetic CPU recipe uses 64).
    alignment_channels: int = TRUNK_CHANNELS

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown ILA variant {self.variant!r}; use one of {VARIANTS}")
        if self.variant == "ssv2" and self.num_classes is None:
            raise ValueError("the ssv2 variant has a linear head: pass method_options num_classes (174 for SSv2)")
        if self.variant == "k400" and self.num_classes is not None:
            raise ValueError("num_classes is only for variant='ssv2'; the k400 variant classifies against class texts")
