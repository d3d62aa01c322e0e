"""Metric functions against hand-computed values and plain oracles written here."""

from __future__ import annotations

import math
import random

import pytest
import torch

from evaluation.metrics import (
    aggregate_views,
    confusion_matrix,
    harmonic_mean,
    mean_class_accuracy,
    mean_std,
    pair_accuracy,
    per_class_accuracy,
    topk_accuracy,
    topk_credit,
)


def oracle_expected_credit(row: list[float], label: int, k: int) -> float:
    """Probability that `label` is in the top k when ties are broken uniformly at random (enumerated)."""
    import itertools

    classes = list(range(len(row)))
    hits = total = 0
    # every ordering consistent with the scores: sort by score, permute within tie groups
    groups: dict[float, list[int]] = {}
    for c in classes:
        groups.setdefault(row[c], []).append(c)
    ordered = sorted(groups, reverse=True)
    for perms in itertools.product(*[list(itertools.permutations(groups[s])) for s in ordered]):
        order = [c for perm in perms for c in perm]
        hits += label in order[:k]
        total += 1
    return hits / total


def test_topk_without_ties_matches_hand_values():
    scores = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    labels = torch.tensor([1, 1, 0, 2])
    # top-1 hits: sample 0 only; top-2 hits: 0 (1st), 1 (2nd), 3 (2nd); sample 2's class 0 is last
    assert topk_accuracy(scores, labels, 1) == pytest.approx(25.0)
    assert topk_accuracy(scores, labels, 2) == pytest.approx(75.0)
    assert topk_accuracy(scores, labels, 3) == pytest.approx(100.0)
    assert topk_accuracy(scores, labels, 10) == pytest.approx(100.0)  # k clamped to C


def test_topk_ties_expected_optimistic_pessimistic():
    # all classes tied: top-1 credit is 1/C in expectation, 1 optimistic, 0 pessimistic
    scores = torch.zeros(2, 4)
    labels = torch.tensor([0, 3])
    assert topk_credit(scores, labels, 1).tolist() == [0.25, 0.25]
    assert topk_credit(scores, labels, 2).tolist() == [0.5, 0.5]
    assert topk_credit(scores, labels, 1, ties="optimistic").tolist() == [1.0, 1.0]
    assert topk_credit(scores, labels, 3, ties="pessimistic").tolist() == [0.0, 0.0]
    assert topk_credit(scores, labels, 4, ties="pessimistic").tolist() == [1.0, 1.0]
    # one class strictly above, the true class tied with one other: top-2 credit = (2 - 1) / 2
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.1]])
    assert topk_credit(scores, torch.tensor([2]), 2).item() == 0.5
    assert topk_credit(scores, torch.tensor([2]), 3).item() == 1.0


def test_topk_expected_credit_matches_enumeration_oracle():
    rng = random.Random(0)
    for _ in range(40):
        c = rng.randint(2, 5)
        row = [float(rng.randint(0, 2)) for _ in range(c)]  # few distinct values: many ties
        label = rng.randrange(c)
        for k in range(1, c + 1):
            got = topk_credit(torch.tensor([row]), torch.tensor([label]), k).item()
            assert got == pytest.approx(oracle_expected_credit(row, label, k)), (row, label, k)


def test_topk_rejects_bad_input():
    with pytest.raises(ValueError, match="labels must lie in"):
        topk_accuracy(torch.zeros(1, 3), torch.tensor([3]))
    with pytest.raises(ValueError, match="k must be"):
        topk_accuracy(torch.zeros(1, 3), torch.tensor([0]), 0)
    assert math.isnan(topk_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long)))


def test_harmonic_mean_hand_values():
    assert harmonic_mean(80.0, 60.0) == pytest.approx(2 * 80 * 60 / 140)  # 68.571...
    assert harmonic_mean(73.1, 60.6) == pytest.approx(66.26, abs=0.01)  # T2L Table 2, K-400 row (66.3)
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(50.0, 0.0) == 0.0
    assert math.isnan(harmonic_mean(math.nan, 10.0))


def test_mean_std_population_and_sample():
    mean, std = mean_std([51.0, 52.0, 54.0])
    assert mean == pytest.approx(52.333333333)
    assert std == pytest.approx(math.sqrt(((51 - 52.3333333) ** 2 + (52 - 52.3333333) ** 2 + (54 - 52.3333333) ** 2) / 3))
    _, sample_std = mean_std([51.0, 52.0, 54.0], ddof=1)
    assert sample_std == pytest.approx(1.527525, abs=1e-6)
    assert mean_std([7.0]) == (7.0, 0.0)
    with pytest.raises(ValueError):
        mean_std([])


def test_view_aggregation_against_hand_softmax():
    logits = torch.tensor([[[0.0, math.log(3.0)], [math.log(3.0), 0.0], [0.0, 0.0]]])  # 1 video, 3 views, 2 classes
    # per-view softmax: [.25, .75], [.75, .25], [.5, .5]
    assert aggregate_views(logits, "softmax_sum")[0].tolist() == pytest.approx([1.5, 1.5])
    assert aggregate_views(logits, "softmax_mean")[0].tolist() == pytest.approx([0.5, 0.5])
    assert aggregate_views(logits, "logit_mean")[0].tolist() == pytest.approx([math.log(3) / 3, math.log(3) / 3])
    # softmax-sum and logit-mean can disagree: a confident minority view vs many mild ones
    logits = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [0.0, 1.0]]])  # softmax sums 1.4905 vs 1.5095
    assert aggregate_views(logits, "logit_mean")[0].argmax() == 0
    assert aggregate_views(logits, "softmax_sum")[0].argmax() == 1
    with pytest.raises(ValueError, match="unknown view aggregation"):
        aggregate_views(logits, "max")


def test_confusion_and_per_class_accuracy():
    labels = torch.tensor([0, 0, 1, 1, 1, 2])
    preds = torch.tensor([0, 1, 1, 1, 0, 0])
    matrix = confusion_matrix(preds, labels, 4)
    assert matrix.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    per = per_class_accuracy(preds, labels, 4)
    assert per[:3].tolist() == pytest.approx([50.0, 200 / 3, 0.0])
    assert math.isnan(per[3])  # no sample of class 3
    assert mean_class_accuracy(preds, labels, 4) == pytest.approx((50 + 200 / 3 + 0) / 3)


def test_pair_accuracy_hand_values():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    labels = torch.tensor([0, 1, 1, 2])
    # class 2 has no partner and is ignored; 0 beats 1 (hit), 1 loses to 0 (miss), tie (half)
    assert pair_accuracy(scores, labels, [(0, 1)]) == pytest.approx(50.0)
    assert math.isnan(pair_accuracy(scores, labels, []))
