"""The ``stan`` method plugin: builds :class:`~chronoclip_stan.model.STANModel` and loads the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from open_clip.model import CLIP

from chronoclip_stan.branch import MAX_FRAMES
from chronoclip_stan.convert import load_official_checkpoint
from chronoclip_stan.model import STANModel
from chronoclip_stan.options import STANOptions
from core.method import Method, VideoModel

__all__ = ["STAN", "STANOptions"]


class STAN(Method):
    """``stan``: CLIP + a K-layer temporal-then-spatial branch over its top K blocks' outputs."""

    name = "stan"
    config_package = "chronoclip_stan.configs"
    options_class = STANOptions

    def _build(self, clip: CLIP, *, num_frames: int, options: STANOptions) -> VideoModel:
        """A new STAN on ``clip``: branch spatial layers copied from its top ``depth`` blocks, temporal
        projections zero, time embedding N(0, 1) (the official initialisation)."""
        if not 1 <= num_frames <= MAX_FRAMES:
            raise ValueError(f"STAN takes 1..{MAX_FRAMES} frames per clip (its time embedding has {MAX_FRAMES} rows); "
                             f"got num_frames={num_frames}")
        return STANModel(clip, options)

    def _load_official(self, path: Path, **options: Any) -> VideoModel:
        """The authors' mmengine checkpoint (``STAN_*`` or legacy ``timesFPN_*`` keys); geometry from shapes.

        ``options`` are :class:`STANOptions`; ``depth`` and ``time_module`` come from the weights. ``tau`` and
        ``text_length`` are not stored in the weights: pass the run's values (MSR-VTT B/16 used tau 0.02, DiDeMo
        tau 0.05 with 77 tokens).
        """
        return load_official_checkpoint(path, self.options(options))
