"""The options of ``--method t2l`` (a recipe's ``method_options``): every option and its default, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TEXT_MODES", "T2LOptions"]

TEXT_MODES = ("descriptions", "templates")


@dataclass(frozen=True)
class T2LOptions:
    """T2L's options; the official config key of each is named in its comment."""

    # Learnable temporal tokens, one set per vision layer (prompt.use; False only in the HMDB few-shot config).
    temporal_tokens: bool = True
    # network.drop_out: per-layer rates linspace(0, rate, L_vision) for drop-path and attention dropout,
    # text layer l reusing the vision rate of index l (0.1 in most configs).
    drop_path_rate: float = 0.0
    # prompt.DROPOUT: element-wise dropout on the temporal tokens in training.
    token_dropout: float = 0.1
    # Weight of the TFD loss (use_motion_loss: 1, or 0 to disable it).
    tfd_weight: float = 1.0
    # Class text: "descriptions" (use_llm: True) or "templates" (16 ActionCLIP templates, probability-averaged
    # at eval; one random template per sample in training).
    text_mode: Literal["descriptions", "templates"] = "descriptions"
    # Also return (B, C) training logits over all class texts from training_forward (no gradient; accuracy only).
    train_logits: bool = True
    # Learning-rate multiplier of the temporal tokens (optimiser only; 1 = the official single lr). The tokens are
    # T2L's only source of frame order and start about ten times smaller than the frame means they are added to.
    token_lr_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.text_mode not in TEXT_MODES:
            raise ValueError(f"text_mode {self.text_mode!r} is not one of {TEXT_MODES}")
        if not 0.0 <= self.token_dropout < 1.0 or not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"token_dropout and drop_path_rate are probabilities in [0, 1); got "
                             f"{self.token_dropout} and {self.drop_path_rate}")
