"""The options of ``--method stan`` (a recipe's ``method_options``): every option and its default, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TASKS", "STANOptions"]

#: ``recognition``: class names, frozen cached text, cross-entropy. ``retrieval``: captions, trained text
#: tower, symmetric InfoNCE (the official ``NormSoftmaxLoss``).
TASKS = ("recognition", "retrieval")


@dataclass(frozen=True)
class STANOptions:
    """STAN's options (official mmengine config values in the comments)."""

    # Branch layers K over the top K CLIP blocks (4; 6 for the paper's SSv2 runs). Read from the weights
    # when loading the authors' checkpoints.
    depth: int = 4
    # Cross-frame module: "selfattn" (released code) or "conv" (the 2023 code's Conv3d variant).
    time_module: Literal["selfattn", "conv"] = "selfattn"
    # DropPath of the last branch layer (rates linspace(0, rate, K)); only matters in training.
    drop_path_rate: float = 0.1
    # Temperature: logits are cos / tau (0.01 -> x100; 0.02 in the MSR-VTT B/16 config, 0.05 on DiDeMo).
    # Not stored in the weights: pass the run's value when loading the authors' checkpoints.
    tau: float = 0.01
    # Text token columns kept after tokenising to 77 (32; 77 on DiDeMo).
    text_length: int = 32
    # "recognition" or "retrieval": decides whether the text tower trains, and the loss.
    task: Literal["recognition", "retrieval"] = "recognition"
    # lr_scale of every branch tensor relative to optim.lr (official custom_keys={'STAN': lr_mult=10}).
    branch_lr_mult: float = 10.0

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task {self.task!r} is not one of {TASKS}")
        if self.tau <= 0:
            raise ValueError(f"tau must be positive (logits are cos / tau); got {self.tau}")
        if self.depth < 1:
            raise ValueError(f"depth must be >= 1, got {self.depth}")
