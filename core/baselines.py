"""The two reference methods every paper compares against, shipped in core.

* ``clip``: frozen CLIP, frame-average video embedding: the zero-shot baseline.
* ``vifi``: ViFi-CLIP (Rasheed et al., CVPR 2023): the same forward, both towers fully fine-tuned with
  cross-entropy over the class texts.

Both use the hand-written prompt ``"a photo of a {name}."`` and ``exp(logit_scale) * cos`` logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from open_clip.model import CLIP
from torch import Tensor

from core.clip import DEFAULT_TEMPLATE, build_clip, class_prompts, clip_from_state_dict, tokenize
from core.clip import layers as L
from core.method import Method, VideoModel
from core.objectives import classification_loss, cosine_logits
from core.serialization import safe_load
from core.text_cache import TextFeatureCache, clip_text_parameters

__all__ = ["FrameAverageCLIP", "FrameAverageOptions", "FrozenCLIP", "ViFiCLIP"]


class FrameAverageCLIP(VideoModel):
    """CLIP on every frame, embeddings averaged over time, cosine logits against prompted class names."""

    def __init__(self, clip: CLIP, num_frames: int | None, *, template: str, trainable: bool) -> None:
        super().__init__(num_frames)
        self.clip = clip
        self.template = template
        self.clip.requires_grad_(trainable)
        self.text_cache = TextFeatureCache()

    def class_texts(self, names: Sequence[str], descriptions: Mapping[str, str] | None = None) -> list[str]:
        return class_prompts(names, self.template)

    def encode_video(self, video: Tensor) -> Tensor:
        return L.encode_frames(self.clip, video).mean(dim=1)

    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """(C, E) text embeddings; cached by :class:`core.text_cache.TextFeatureCache` (not while training them)."""
        def compute() -> Tensor:
            tokens = tokenize(list(texts), self.clip.context_length).to(self.clip.token_embedding.weight.device)
            return L.encode_text(self.clip, tokens)
        return self.text_cache.get(texts, compute, clip_text_parameters(self.clip))

    def classify(self, video: Tensor, class_texts: Sequence[str]) -> Tensor:
        self.check_video(video)
        return cosine_logits(self.encode_video(video), self.encode_texts(class_texts), self.clip.logit_scale.exp())

    def training_forward(self, batch: Mapping[str, Any]) -> dict[str, Tensor]:
        logits = self.classify(batch["video"], batch["class_texts"])
        loss = classification_loss(logits, batch["label"], batch.get("target"))
        return {"loss": loss, "ce": loss.detach(), "logits": logits}

    def no_weight_decay(self) -> set[str]:
        return {"positional_embedding", "class_embedding", "token_embedding", "logit_scale"}


@dataclass(frozen=True)
class FrameAverageOptions:
    """``method_options`` of the ``clip`` and ``vifi`` baselines."""

    template: str = DEFAULT_TEMPLATE  # class prompt, "{}" = the class name (ViFi-CLIP: "a photo of a {}.")


class FrozenCLIP(Method):
    """``clip``: the zero-shot baseline; nothing trains."""

    name = "clip"
    config_package = "core.configs.clip"
    options_class = FrameAverageOptions

    def _build(self, clip: CLIP, *, num_frames: int, options: FrameAverageOptions) -> VideoModel:
        return FrameAverageCLIP(clip, None, template=options.template, trainable=False)

    def _load_official(self, path: Path, **options: Any) -> VideoModel:
        """OpenAI's CLIP file itself is this baseline's "official checkpoint"; ``options`` as :meth:`build`."""
        return FrameAverageCLIP(build_clip(None, pretrained=path), None, template=self.options(options).template,
                                trainable=False)


class ViFiCLIP(Method):
    """``vifi``: full fine-tuning of both towers, frame average (ViFi-CLIP)."""

    name = "vifi"
    config_package = "core.configs.vifi"
    options_class = FrameAverageOptions
    default_rank = 1  # trained without --method when no method package is installed

    def _build(self, clip: CLIP, *, num_frames: int, options: FrameAverageOptions) -> VideoModel:
        return FrameAverageCLIP(clip, None, template=options.template, trainable=True)

    def _load_official(self, path: Path, **options: Any) -> VideoModel:
        """A fine-tuned CLIP state dict (OpenAI layout, optionally under ``model``/``state_dict``, ``module.``)."""
        template = self.options(options).template
        state = safe_load(path)
        for key in ("model", "state_dict"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
        return FrameAverageCLIP(clip_from_state_dict(state), None, template=template, trainable=True)
