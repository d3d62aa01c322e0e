"""Learning-rate schedule: linear warm-up then cosine decay, evaluated per optimizer step.

The reference recipes differ in one detail this module makes explicit (``cosine_from``):

* ``"start"`` (timm ``CosineLRScheduler`` with ``warmup_prefix=False``: TC-CLIP, ViFi-CLIP, ILA): the
  cosine is evaluated at the absolute step ``t`` over the whole run, so the LR drops at the end of warm-up
  (zero-shot TC-CLIP: 8e-6 -> 4.04e-6) and then decays to the floor;
* ``"warmup_end"`` (T2L, STAN): the cosine restarts from the peak at the end of warm-up.

Warm-up is linear from ``warmup_start_factor x`` each group's LR (timm: 0; mmengine ``LinearLR``: e.g. 0.05).
The floor ``min_lr`` is absolute and shared by every group, as timm's ``lr_min`` (methods whose groups run at
10x still decay to the same floor).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["WarmupCosine"]


@dataclass(frozen=True)
class WarmupCosine:
    """Per-step LR of every parameter group.

    Attributes:
        total_steps: optimizer steps of the whole run (epochs x steps per epoch).
        warmup_steps: optimizer steps of linear warm-up.
        min_lr: absolute floor of the cosine (all groups).
        warmup_start_factor: LR at step 0 as a fraction of the group's LR.
        cosine_from: ``"start"`` or ``"warmup_end"`` (module docstring).
    """

    total_steps: int
    warmup_steps: int
    min_lr: float = 0.0
    warmup_start_factor: float = 0.0
    cosine_from: str = "start"

    def __post_init__(self) -> None:
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if not 0 <= self.warmup_steps <= self.total_steps:
            raise ValueError(f"warmup_steps must be in [0, total_steps={self.total_steps}], got {self.warmup_steps}")
        if self.cosine_from not in ("start", "warmup_end"):
            raise ValueError(f"cosine_from must be 'start' or 'warmup_end', got {self.cosine_from!r}")

    def lr(self, base_lr: float, step: int) -> float:
        """LR of a group whose peak is ``base_lr`` at optimizer step ``step`` (0-based)."""
        if step < self.warmup_steps:
            start = self.warmup_start_factor
            return base_lr * (start + (1.0 - start) * step / self.warmup_steps)
        if self.cosine_from == "start":
            t, span = step, self.total_steps
        else:
            t, span = step - self.warmup_steps, self.total_steps - self.warmup_steps
        if span <= 0 or t >= span:
            return self.min_lr
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (1.0 + math.cos(math.pi * t / span))

    def lrs(self, base_lrs: Sequence[float], step: int) -> list[float]:
        """LR of every group at ``step``."""
        return [self.lr(base, step) for base in base_lrs]
