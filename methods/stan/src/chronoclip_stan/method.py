"""The ``stan`` method plugin: builds :class:`~chronoclip_stan.model.STANModel` and loads the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path

from open_clip.model import CLIP

from chronoclip_stan.branch import MAX_FRAMES
from chronoclip_stan.convert import load_official_checkpoint
from chronoclip_stan.model import STANModel
from core.method import Method, VideoModel

__all__ = ["STAN"]


class STAN(Method):
    """``stan``: CLIP + a K-layer temporal-then-spatial branch over its top K blocks' outputs."""

    name = "stan"
    config_package = "chronoclip_stan.configs"

    def _build(self, clip: CLIP, *, num_frames: int, depth: int = 4, time_module: str = "selfattn",
               drop_path_rate: float = 0.1, tau: float = 0.01, text_length: int = 32, task: str = "recognition",
               branch_lr_mult: float = 10.0) -> VideoModel:
        """A new STAN on ``clip``: branch spatial layers copied from its top ``depth`` blocks, temporal
        projections zero, time embedding N(0, 1) (the official initialisation)."""
        if not 1 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"STAN takes 1..{MAX_FRAMES} frames per clip (its time embedding has {MAX_FRAMES} rows); "
                             f"got num_frames={num_frames}")
        return STANModel(clip, depth=depth, time_module=time_module, drop_path_rate=drop_path_rate, tau=tau,
                         text_length=text_length, task=task, branch_lr_mult=branch_lr_mult)

    def _load_official(self, path: Path, *, task: str = "recognition", tau: float = 0.01, text_length: int = 32,
                       drop_path_rate: float = 0.1) -> VideoModel:
        """The authors' mmengine checkpoint (``STAN_*`` or legacy ``timesFPN_*`` keys); geometry from shapes.

        ``tau`` and ``text_length`` are not stored in the weights: pass the run's values (0.01 / 32 for most
        official configs; MSR-VTT B/16 used tau 0.02, DiDeMo tau 0.05 with 77 tokens).
        """
        return load_official_checkpoint(path, task=task, tau=tau, text_length=text_length,
                                        drop_path_rate=drop_path_rate)
