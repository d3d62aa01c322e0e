"""Seed merging (spec §2.2): round schedule, one hand-computed round, and the invariants of the context tokens."""

from __future__ import annotations

import pytest
import torch
from chronoclip_tcclip.merge import layer_merge_counts, match, merge_schedule, merge_sum, summarize_seeds


@pytest.mark.parametrize(("start", "final", "r", "rounds"), [
    (928, 96, 100, [100] * 8 + [32]),            # ViT-B/16, 16 frames: the released models
    (464, 96, 100, [100] * 3 + [68]),             # 8 frames
    (464, 16, 100, [100, 100, 100, 82, 41, 20, 5]),   # the cnt // 2 cap binds from the 4th round
    (232, 96, 100, [100, 36]),
    (32, 96, 100, []),                           # fewer seeds than K: every seed is a context token
    (96, 96, 100, []),
])
def test_merge_schedule(start, final, r, rounds):
    assert merge_schedule(start, final, r) == rounds
    assert start - sum(rounds) == min(start, final)


def test_layer_merge_counts_follow_tome_parse_r():
    assert layer_merge_counts(12, 100, 0.0) == [100] * 12
    assert layer_merge_counts(3, 100, -1.0) == [200, 100, 0]   # "decreasing schedule"
    assert layer_merge_counts(1, 7) == [7]


def test_one_round_by_hand():
    # A = rows 0, 2 = (1, 0), (0, 1); B = rows 1, 3 = (1, .1), (.5, 1).
    # Best matches: a0 -> b0 (cos .995), a1 -> b1 (cos .894); with r = 1 only a0 merges, into b0.
    x = torch.tensor([[[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.5, 1.0]]], dtype=torch.float64)
    size = torch.ones(1, 4, 1, dtype=torch.float64)
    plan = match(x, 1)
    merged = merge_sum(plan, x * size) / merge_sum(plan, size)
    expected = torch.tensor([[[0.0, 1.0], [1.0, 0.05], [0.5, 1.0]]], dtype=torch.float64)   # [kept A ; B]
    torch.testing.assert_close(merged, expected, rtol=0, atol=1e-15)
    assert merge_sum(plan, size).flatten().tolist() == [1.0, 2.0, 1.0]


def test_kept_tokens_stay_in_descending_score_order():
    # three A tokens whose best scores are .2 < .9 < .6 (rows 0, 2, 4); merging one keeps (a2, a0) in that order
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    a = torch.stack([torch.tensor([0.2, -0.98]), torch.tensor([0.9, 0.436]), torch.tensor([0.6, -0.8])])
    x = torch.stack([a[0], b[0], a[1], b[1], a[2], b[2]]).unsqueeze(0).double()
    plan = match(x, 1)
    assert plan.src.flatten().tolist() == [1]
    assert plan.unmerged.flatten().tolist() == [2, 0]


def test_context_tokens_are_means_of_a_partition_of_the_seeds():
    torch.manual_seed(0)
    seeds = torch.randn(3, 232, 16, dtype=torch.float64)
    context, sizes, source = summarize_seeds(seeds, 96, 100, return_source=True)
    assert context.shape == (3, 96, 16)
    # every seed belongs to exactly one context token; sizes count the members
    torch.testing.assert_close(source.sum(dim=1), torch.ones(3, 232, dtype=torch.float64))
    torch.testing.assert_close(source.sum(dim=2, keepdim=True), sizes)
    assert sizes.min() >= 1 and sizes.sum(dim=1).flatten().tolist() == [232.0] * 3
    # size-weighted merging = plain mean of the member seeds
    torch.testing.assert_close(context, source @ seeds / sizes, rtol=0, atol=1e-12)


def test_batched_merging_equals_one_video_at_a_time():
    torch.manual_seed(1)
    seeds = torch.randn(4, 120, 8, dtype=torch.float64)
    batched, sizes, _ = summarize_seeds(seeds, 20, 30)
    for b in range(4):
        alone, alone_sizes, _ = summarize_seeds(seeds[b:b + 1], 20, 30)
        torch.testing.assert_close(batched[b:b + 1], alone, rtol=0, atol=0)
        torch.testing.assert_close(sizes[b:b + 1], alone_sizes, rtol=0, atol=0)


def test_gradients_flow_through_the_merge_into_every_seed():
    seeds = torch.randn(2, 40, 8, dtype=torch.float64, requires_grad=True)
    context, _, _ = summarize_seeds(seeds, 10, 100)
    context.sum().backward()
    # d(sum of means)/d(seed) = 1 / size of its token: non-zero for every seed
    assert (seeds.grad.abs().sum(dim=-1) > 0).all()
