"""The options of ``--method NAME`` (a recipe's ``method_options``): every option and its default, once."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NameOptions"]


@dataclass(frozen=True)
class NameOptions:
    """NAME's options. One comment per field: what it does and the official config key / value."""

    # Initial weight of the temporal residual (the example model's only new parameter is zero-initialised).
    residual_init: float = 0.0
    # lr_scale of the new parameters relative to optim.lr (e.g. an official "10x LR for new modules").
    new_lr_scale: float = 10.0

    def __post_init__(self) -> None:  # range checks; core reports them as method_options errors
        if self.new_lr_scale <= 0:
            raise ValueError(f"new_lr_scale must be positive, got {self.new_lr_scale}")
