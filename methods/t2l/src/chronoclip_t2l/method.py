"""The ``t2l`` entry point: builds :class:`~chronoclip_t2l.model.T2LModel` and reads the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chronoclip_t2l.convert import load_official_checkpoint
from chronoclip_t2l.model import T2LModel
from chronoclip_t2l.options import T2LOptions
from core.clip import CLIP
from core.method import Method

__all__ = ["T2L", "T2LOptions"]


class T2L(Method):
    """T2L (Temporal Token Learning, TMLR 2025): temporal tokens + adapters on a frozen CLIP.

    ``method_options`` of a recipe are the fields of :class:`~chronoclip_t2l.options.T2LOptions`.
    """

    name = "t2l"
    config_package = "chronoclip_t2l.configs"
    options_class = T2LOptions

    def _build(self, clip: CLIP, *, num_frames: int, options: T2LOptions) -> T2LModel:
        """A new T2L model on ``clip`` (frozen in place); new tokens/adapters initialised as the official code.

        ``num_frames`` is T (8 in every official recipe).
        """
        return T2LModel(clip, num_frames, options)

    def _load_official(self, path: Path, **options: Any) -> T2LModel:
        """An eval-ready model from ``last_model.pt`` / ``model_best_*.pt`` of the official training scripts.

        The file holds the full CLIP, so no OpenAI download is needed; architecture and frame count come
        from the weight shapes (T = ``T_prompt_embeddings.shape[1]``, ``temporal_tokens`` from their presence).
        ``options`` are the other :class:`T2LOptions` (e.g. ``text_mode``).
        """
        return load_official_checkpoint(path, self.options(options))
