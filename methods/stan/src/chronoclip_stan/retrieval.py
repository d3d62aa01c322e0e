"""Video-text retrieval evaluation, as the official ``RetrievalMetric`` computes it.

Text-to-video: each caption ranks every video by cosine similarity; caption i's match is video i.
R@K = percent of captions whose match ranks in the top K; MdR / MnR = median / mean rank (1 = best).
No DSL or QB-Norm re-scoring (none in the official code).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["encode_pairs", "match_ranks", "retrieval_metrics"]


def match_ranks(similarity: Tensor) -> Tensor:
    """1-based rank of the diagonal entry in each row of a (Q, Q) similarity matrix.

    Ties count in the query's favour (rank = 1 + candidates scoring strictly higher), which is the first
    position the official ``np.where(sorted == diag)`` finds.
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be square (queries x matching candidates); got {tuple(similarity.shape)}")
    diag = similarity.diagonal().unsqueeze(1)
    return (similarity > diag).sum(dim=1) + 1


def retrieval_metrics(text: Tensor, video: Tensor, *, direction: str = "t2v") -> dict[str, float]:
    """R@1/5/10 (percent), median and mean rank of paired embeddings.

    Args:
        text: (N, E) caption embeddings, row i describes video i (un-normalised is fine).
        video: (N, E) video embeddings.
        direction: ``t2v`` (captions query videos: the official metric) or ``v2t``.

    Returns:
        ``{"R1", "R5", "R10", "MdR", "MnR"}``.
    """
    if text.shape != video.shape:
        raise ValueError(f"text {tuple(text.shape)} and video {tuple(video.shape)} must be paired row by row")
    sim = F.normalize(text.double(), dim=-1) @ F.normalize(video.double(), dim=-1).t()
    if direction == "v2t":
        sim = sim.t()
    elif direction != "t2v":
        raise ValueError(f"direction {direction!r} is not 't2v' or 'v2t'")
    ranks = match_ranks(sim).double()
    out = {f"R{k}": float((ranks <= k).double().mean() * 100) for k in (1, 5, 10)}
    out["MdR"] = float(ranks.quantile(0.5))  # numpy's median: the mean of the middle two for even N
    out["MnR"] = float(ranks.mean())
    return out


@torch.no_grad()
def encode_pairs(model: Any, batches: Iterable[Mapping[str, Any]]) -> tuple[Tensor, Tensor]:
    """Caption and video embeddings of a paired eval set.

    Args:
        model: a ``STANModel`` (in eval mode).
        batches: dicts with ``video`` (B, T, 3, H, W) and ``captions`` (B strings).

    Returns:
        ``(text, video)``, each (N, E), row-aligned, for :func:`retrieval_metrics`.
    """
    texts: list[Tensor] = []
    videos: list[Tensor] = []
    for batch in batches:
        captions: Sequence[str] = batch["captions"]
        videos.append(model.encode_video(batch["video"]).float().cpu())
        texts.append(model.encode_text(captions).float().cpu())
    return torch.cat(texts), torch.cat(videos)
