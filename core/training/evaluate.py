"""Validation inside a training run: top-1 over an evaluation split, every sample counted once.

Each rank runs its share of the split locally (ranks may hold different numbers of batches, so no
collective runs per batch), then the per-sample scores are gathered once and de-duplicated by sample
key. Multi-view clips (B, V, T, 3, S, S) are scored by the mean of their views' softmax probabilities
(= TC-CLIP's softmax sum for the argmax).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

from core.method import VideoModel

__all__ = ["Predictions", "gather_predictions", "pair_accuracy", "predict", "top1"]


@dataclass
class Predictions:
    """Scores (N, C) (class probabilities averaged over views), labels (N,) and sample keys of a split."""

    scores: torch.Tensor
    labels: torch.Tensor
    keys: list[str]


@torch.no_grad()
def predict(model: VideoModel, loader, class_texts: Sequence[str], *, device: torch.device | str,
            dtype: torch.dtype = torch.float32, progress=None) -> Predictions:
    """This rank's predictions over ``loader`` (batches of ``video`` (B[, V], T, 3, S, S), ``label``, ``key``)."""
    was_training = model.training
    model.eval()
    scores, labels, keys = [], [], []
    try:
        for batch in loader:
            video = batch["video"].to(device=device, dtype=dtype, non_blocking=True)
            views = 1
            if video.ndim == 6:
                views = video.shape[1]
                video = video.flatten(0, 1)
            logits = model.classify(video, class_texts).float()
            probs = logits.softmax(-1).view(-1, views, logits.shape[-1]).mean(1)
            scores.append(probs.cpu())
            labels.append(batch["label"].cpu())
            keys.extend(batch["key"])
            if progress is not None:
                progress.update(1)
    finally:
        model.train(was_training)
    num_classes = len(class_texts)
    return Predictions(torch.cat(scores) if scores else torch.zeros(0, num_classes),
                       torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long), keys)


def gather_predictions(local: Predictions) -> Predictions | None:
    """All ranks' predictions on rank 0 (None elsewhere), one row per sample key."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        parts = [local]
    else:
        gathered: list[Predictions | None] = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
        dist.gather_object(local, gathered, dst=0)
        if dist.get_rank() != 0:
            return None
        parts = [p for p in gathered if p is not None]
    seen: dict[str, int] = {}
    rows, labels, keys = [], [], []
    for part in parts:
        for i, key in enumerate(part.keys):
            if key in seen:
                continue
            seen[key] = len(keys)
            rows.append(part.scores[i])
            labels.append(part.labels[i])
            keys.append(key)
    num_classes = parts[0].scores.shape[-1] if parts else 0
    return Predictions(torch.stack(rows) if rows else torch.zeros(0, num_classes),
                       torch.stack(labels) if labels else torch.zeros(0, dtype=torch.long), keys)


def top1(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows whose highest score is the label (first index wins ties); NaN for no rows."""
    if labels.numel() == 0:
        return float("nan")
    return float((scores.argmax(-1) == labels).float().mean())


def pair_accuracy(scores: torch.Tensor, labels: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> float:
    """Top-1 restricted to each clip's time-reversal pair: does the clip score its own class above its
    reversal partner? Chance 0.5; a model blind to frame order scores about 0.5. NaN without paired clips."""
    partner = {}
    for a, b in pairs:
        partner[a], partner[b] = b, a
    hits, count = 0, 0
    for row, label in zip(scores, labels.tolist()):
        if label in partner:
            hits += int(row[label] > row[partner[label]])
            count += 1
    return hits / count if count else float("nan")
