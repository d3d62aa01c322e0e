"""The NAME model. The example below is a working placeholder (frozen CLIP, frame average, a zero-initialised
linear residual on the video embedding): replace it with the method, keeping the ``core.VideoModel`` surface."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from open_clip.model import CLIP
from torch import Tensor, nn

from chronoclip_NAME.options import NameOptions
from core.clip import layers as L
from core.clip import tokenize
from core.method import VideoModel
from core.objectives import classification_loss, cosine_logits

__all__ = ["NameModel"]


class NameModel(VideoModel):
    """Args:
        clip: the open_clip CLIP backbone (frozen here).
        num_frames: frames per clip (None if any count works).
        options: the method options.
    """

    def __init__(self, clip: CLIP, num_frames: int | None, options: NameOptions) -> None:
        super().__init__(num_frames)
        self.options = options
        self.clip = clip.requires_grad_(False)
        dim = clip.text_projection.shape[1]
        self.residual = nn.Linear(dim, dim)
        nn.init.constant_(self.residual.weight, options.residual_init)
        nn.init.zeros_(self.residual.bias)

    def encode_video(self, video: Tensor) -> Tensor:
        self.check_video(video)
        frames = L.encode_frames(self.clip, video).mean(dim=1)
        return frames + self.residual(frames)

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        tokens = tokenize(list(class_texts), self.clip.context_length).to(self.clip.token_embedding.weight.device)
        with torch.no_grad():
            text = L.encode_text(self.clip, tokens)
        return cosine_logits(self.encode_video(video), text, self.clip.logit_scale.exp())

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        logits = self.classify(batch["video"], batch["class_texts"])
        loss = classification_loss(logits, batch["label"], batch.get("target"))
        return {"loss": loss, "ce": loss.detach(), "logits": logits}

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The official optimizer's groups, each with ``lr_scale`` relative to ``optim.lr``."""
        return [{"name": "new", "params": [p for p in self.residual.parameters() if p.requires_grad],
                 "lr_scale": self.options.new_lr_scale, "weight_decay": weight_decay}]
