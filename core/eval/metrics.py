"""Evaluation metrics as small pure functions over score matrices: the one definition of every number.

Everything takes plain tensors (or sequences of floats) and returns plain numbers or tensors, so each
function can be checked against a hand computation. Every accuracy is in percent, as the papers print
them: the trainer's validation, ``summary.json``, every protocol, ``compare`` and ``core.predict`` use
these functions.

The tie rule (one for every metric): a tie is a fair coin, counted at its expected value. With float
logits from a real model exact ties practically never occur, and then top-k equals ``torch.topk``'s as
the authors' code computes it. An untrained or degenerate model can score several classes identically
(all-zero logits score every class the same); ``argmax`` would break such a tie by class index and report
an accuracy that depends on the label order. :func:`topk_credit` gives the expected credit under a
uniformly random tie-break (``ties="expected"``, the default everywhere; the optimistic and pessimistic
bounds are there for analysis), and :func:`pair_accuracy` credits a tie between a class and its
time-reversed partner with 0.5.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "AGGREGATIONS",
    "aggregate_views",
    "confusion_matrix",
    "harmonic_mean",
    "mean_class_accuracy",
    "mean_std",
    "pair_accuracy",
    "per_class_accuracy",
    "topk_accuracy",
    "topk_credit",
]

TieMode = Literal["expected", "optimistic", "pessimistic"]

#: How each method's official evaluation combines the scores of several views of one video.
AGGREGATIONS = {
    "softmax_sum": "softmax over classes per view, summed over views (ViFi-CLIP, TC-CLIP, ILA/X-CLIP)",
    "softmax_mean": "softmax over classes per view, averaged over views (STAN 2023 code, T2L)",
    "logit_mean": "raw logits averaged over views",
}


def topk_credit(scores: Tensor, labels: Tensor, k: int = 1, *, ties: TieMode = "expected") -> Tensor:
    """Per-sample top-k credit in [0, 1].

    Args:
        scores: (N, C) class scores (logits or probabilities; only their order matters).
        labels: (N,) true class ids in ``[0, C)``.
        k: how many top classes count as a hit (clamped to C).
        ties: ``expected``: the true class ties with ``t`` other classes at its score and ``g`` classes
            score strictly higher; a random order of the ``t + 1`` tied classes puts it in the top k with
            probability ``clamp((k - g) / (t + 1), 0, 1)``. ``optimistic``: 1 if ``g < k``.
            ``pessimistic``: 1 if ``g + t < k``.

    Returns:
        (N,) float64 credits.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, C); got shape {tuple(scores.shape)}")
    if labels.shape != scores.shape[:1]:
        raise ValueError(f"labels must be (N,) = ({scores.shape[0]},); got {tuple(labels.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    num_classes = scores.shape[1]
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got range [{int(labels.min())}, {int(labels.max())}]")
    k = min(k, num_classes)
    scores = scores.double()
    true = scores.gather(1, labels.long().view(-1, 1))
    greater = (scores > true).sum(dim=1).double()
    tied_others = (scores == true).sum(dim=1).double() - 1
    if ties == "optimistic":
        return (greater < k).double()
    if ties == "pessimistic":
        return (greater + tied_others < k).double()
    if ties == "expected":
        return ((k - greater) / (tied_others + 1)).clamp(0.0, 1.0)
    raise ValueError(f"ties must be 'expected', 'optimistic' or 'pessimistic'; got {ties!r}")


def topk_accuracy(scores: Tensor, labels: Tensor, k: int = 1, *, ties: TieMode = "expected") -> float:
    """Top-k accuracy in percent (mean of :func:`topk_credit`); ``nan`` for zero samples."""
    if scores.shape[0] == 0:
        return math.nan
    return float(topk_credit(scores, labels, k, ties=ties).mean()) * 100.0


def harmonic_mean(base: float, novel: float) -> float:
    """``2·b·n / (b + n)`` (0 when both are 0): the base-to-novel HM of ViFi-CLIP, TC-CLIP and T2L."""
    if math.isnan(base) or math.isnan(novel):
        return math.nan
    if base < 0 or novel < 0:
        raise ValueError(f"accuracies must be non-negative; got base={base}, novel={novel}")
    total = base + novel
    return 0.0 if total == 0 else 2.0 * base * novel / total


def mean_std(values: Sequence[float], *, ddof: int = 0) -> tuple[float, float]:
    """Mean and standard deviation over splits or seeds.

    ``ddof=0`` (population std, ``numpy.std``'s default) is what the papers' "mean ± std over 3 splits"
    is computed with in the ViFi-CLIP/TC-CLIP code; pass ``ddof=1`` for the sample std.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std needs at least one value")
    if len(values) <= ddof:
        raise ValueError(f"std with ddof={ddof} needs more than {ddof} values; got {len(values)}")
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - ddof)
    return mean, math.sqrt(var)


def aggregate_views(logits: Tensor, mode: str = "softmax_sum") -> Tensor:
    """Combine the class scores of several views of each video.

    Args:
        logits: (N, V, C) logits of V views (temporal clips × spatial crops) per video.
        mode: one of :data:`AGGREGATIONS`.

    Returns:
        (N, C) video scores: summed or averaged probabilities, or averaged logits. Top-k is the same
        for ``softmax_sum`` and ``softmax_mean``; only the printed scores differ.
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must be (N, V, C); got shape {tuple(logits.shape)}")
    logits = logits.float()
    if mode == "softmax_sum":
        return logits.softmax(dim=-1).sum(dim=1)
    if mode == "softmax_mean":
        return logits.softmax(dim=-1).mean(dim=1)
    if mode == "logit_mean":
        return logits.mean(dim=1)
    raise ValueError(f"unknown view aggregation {mode!r}; choose one of {sorted(AGGREGATIONS)}")


def confusion_matrix(predictions: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(C, C) int64 counts; row = true class, column = predicted class."""
    if predictions.shape != labels.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} and labels {tuple(labels.shape)} differ in shape")
    index = labels.long() * num_classes + predictions.long()
    return torch.bincount(index, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(scores: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """(C,) float64 top-1 accuracy per true class in percent; ``nan`` for classes with no sample.

    ``scores`` (N, C) are credited with the tie rule of :func:`topk_credit`; (N,) predicted class ids are
    also accepted (each counts as one prediction, as in :func:`confusion_matrix`).
    """
    if scores.ndim == 2:
        credit = topk_credit(scores, labels, 1)
    else:
        if scores.shape != labels.shape:
            raise ValueError(f"predictions {tuple(scores.shape)} and labels {tuple(labels.shape)} differ in shape")
        credit = (scores.long() == labels.long()).double()
    support = torch.bincount(labels.long(), minlength=num_classes).double()
    correct = torch.bincount(labels.long(), weights=credit, minlength=num_classes).double()
    out = torch.full((num_classes,), math.nan, dtype=torch.float64)
    present = support > 0
    out[present] = correct[present] / support[present] * 100.0
    return out


def mean_class_accuracy(scores: Tensor, labels: Tensor, num_classes: int) -> float:
    """Mean over the classes present of the per-class accuracy (percent; same inputs as :func:`per_class_accuracy`)."""
    per_class = per_class_accuracy(scores, labels, num_classes)
    present = per_class[~per_class.isnan()]
    return float(present.mean()) if present.numel() else math.nan


def pair_accuracy(scores: Tensor, labels: Tensor, pairs: Sequence[tuple[int, int]]) -> float:
    """Time-reversal pair accuracy in percent: how often the true class outscores its reversed partner.

    For each video whose class ``a`` has a partner ``b`` (``(a, b)`` or ``(b, a)`` in ``pairs``), credit 1 when
    ``scores[a] > scores[b]``, 0.5 on a tie, 0 otherwise; chance is 50 %. A model that averages frame
    features scores a clip and its time reversal alike, so it sits at chance; ``nan`` without such videos.
    """
    partner: dict[int, int] = {}
    for a, b in pairs:
        partner[int(a)] = int(b)
        partner[int(b)] = int(a)
    credits = []
    for row, label in zip(scores.double(), labels.tolist()):
        other = partner.get(int(label))
        if other is None:
            continue
        mine, theirs = float(row[label]), float(row[other])
        credits.append(1.0 if mine > theirs else 0.5 if mine == theirs else 0.0)
    return sum(credits) / len(credits) * 100.0 if credits else math.nan
