"""The ``t2l`` entry point: builds :class:`~chronoclip_t2l.model.T2LModel` and reads the authors' checkpoints."""

from __future__ import annotations

from pathlib import Path

from chronoclip_t2l.convert import load_official_checkpoint
from chronoclip_t2l.model import T2LModel
from core.clip import CLIP
from core.method import Method

__all__ = ["T2L"]


class T2L(Method):
    """T2L (Temporal Token Learning, TMLR 2025): temporal tokens + adapters on a frozen CLIP.

    ``method_options`` of a recipe are the keyword arguments of :meth:`_build`.
    """

    name = "t2l"
    config_package = "chronoclip_t2l.configs"

    def _build(
        self,
        clip: CLIP,
        *,
        num_frames: int,
        temporal_tokens: bool = True,
        drop_path_rate: float = 0.0,
        token_dropout: float = 0.1,
        tfd_weight: float = 1.0,
        text_mode: str = "descriptions",
        train_logits: bool = True,
        token_lr_scale: float = 1.0,
    ) -> T2LModel:
        """A new T2L model on ``clip`` (frozen in place); new tokens/adapters initialised as the official code.

        Args:
            clip: the CLIP backbone (OpenAI weights for the official recipes).
            num_frames: frames per clip T (8 in every official recipe).
            temporal_tokens: ``prompt.use`` (False only in the HMDB few-shot config).
            drop_path_rate: ``network.drop_out`` (0.1 in most configs).
            token_dropout: ``prompt.DROPOUT`` (0.1).
            tfd_weight: TFD loss weight (``use_motion_loss``: 1, or 0 to disable).
            text_mode: ``descriptions`` (``use_llm: True``) or ``templates``.
            train_logits: return (B, C) training logits for accuracy logging.
            token_lr_scale: learning-rate multiplier of the temporal tokens (1 = official).
        """
        return T2LModel(clip, num_frames, temporal_tokens=temporal_tokens, drop_path_rate=drop_path_rate,
                        token_dropout=token_dropout, tfd_weight=tfd_weight, text_mode=text_mode,
                        train_logits=train_logits, token_lr_scale=token_lr_scale)

    def _load_official(self, path: Path, *, text_mode: str = "descriptions") -> T2LModel:
        """An eval-ready model from ``last_model.pt`` / ``model_best_*.pt`` of the official training scripts.

        The file holds the full CLIP, so no OpenAI download is needed; architecture and frame count come
        from the weight shapes (T = ``T_prompt_embeddings.shape[1]``).
        """
        return load_official_checkpoint(path, text_mode=text_mode)
