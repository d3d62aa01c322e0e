"""Seed-token summarisation: ToMe-style bipartite soft matching, as TC-CLIP's code runs it (spec §2.2).

Every step is batched over videos (no Python loop over videos or frames); the only loop is over the
merge rounds, whose count depends on shapes alone. The order of operations mirrors the official code
(``x / x.norm()`` for the cosine, ``argsort`` of the best-match scores, scatter-add of size-weighted
tokens then division by the summed sizes) because the discrete choices are sensitive to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MergePlan", "layer_merge_counts", "match", "merge_schedule", "merge_sum", "summarize_seeds"]


def layer_merge_counts(num_layers: int, r: int, inflection: float = 0.0) -> list[int]:
    """Per-block merge count ``r`` (ToMe's ``parse_r`` with an ``(r, inflection)`` pair).

    TC-CLIP's ``tome_d = 0`` gives the same ``r`` for every block; -1/+1 decrease/increase it with depth.
    """
    if num_layers == 1:
        return [int(r)]
    low = int(r * (1.0 - inflection))
    high = 2 * r - low
    step = (high - low) / (num_layers - 1)
    return [int(low + step * i) for i in range(num_layers)]


def merge_schedule(start: int, final: int, r: int) -> list[int]:
    """Tokens removed per round to go from ``start`` seeds to ``final`` context tokens.

    First ``(start - final) // r`` rounds of ``min(r, cnt // 2)`` each, then rounds of
    ``min(cnt - final, cnt // 2)`` while more than ``final`` remain (928 -> 96 with r = 100: 8 x 100, 32).
    Nothing is merged when ``start <= final``.
    """
    if r <= 0:
        raise ValueError(f"tome_r must be a positive merge count per round; got {r}")
    cnt, rounds = start, []
    # int() truncates toward zero like the official int((start - final) / r): no rounds when start < final
    for _ in range(int((start - final) / r)):
        rounds.append(min(r, cnt // 2))
        cnt -= rounds[-1]
    while cnt > final and cnt // 2 > 0:
        rounds.append(min(cnt - final, cnt // 2))
        cnt -= rounds[-1]
    return rounds


@dataclass(frozen=True)
class MergePlan:
    """One bipartite round: which even-position tokens stay (in score order) and which merge where.

    All index tensors are (B, n, 1): ``unmerged`` and ``src`` index the even set A, ``dst`` the odd set B.
    """

    unmerged: Tensor
    src: Tensor
    dst: Tensor


@torch.no_grad()
def match(x: Tensor, r: int) -> MergePlan | None:
    """Pair every token of A = rows 0, 2, 4, ... with its most similar token of B = rows 1, 3, 5, ...

    Args:
        x: (B, S, D) tokens; the similarity is the cosine of the tokens themselves.
        r: how many A tokens to merge away (capped at ``S // 2``).

    Returns:
        The plan, or None when nothing is merged. Kept A tokens stay in descending best-score order.
    """
    r = min(r, x.shape[1] // 2)
    if r <= 0:
        return None
    metric = x / x.norm(dim=-1, keepdim=True)
    a, b = metric[:, ::2], metric[:, 1::2]
    scores = a @ b.transpose(-1, -2)
    node_max, node_idx = scores.max(dim=-1)
    edge_idx = node_max.argsort(dim=-1, descending=True)[..., None]
    src = edge_idx[:, :r]
    return MergePlan(unmerged=edge_idx[:, r:], src=src, dst=node_idx[..., None].gather(dim=-2, index=src))


def merge_sum(plan: MergePlan, x: Tensor) -> Tensor:
    """Apply a plan by summation: (B, S, C) -> (B, S - r, C) ordered [kept A (score order) ; all of B]."""
    src_set, dst_set = x[:, ::2], x[:, 1::2]
    n, t1, c = src_set.shape
    r = plan.src.shape[1]
    kept = src_set.gather(dim=-2, index=plan.unmerged.expand(n, t1 - r, c))
    moved = src_set.gather(dim=-2, index=plan.src.expand(n, r, c))
    dst_set = dst_set.scatter_reduce(-2, plan.dst.expand(n, r, c), moved, reduce="sum")
    return torch.cat([kept, dst_set], dim=1)


def summarize_seeds(
    seeds: Tensor, num_context: int, r: int, *, return_source: bool = False
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Pool ``S`` seed tokens per video into ``min(S, K)`` context tokens by repeated bipartite merging.

    Args:
        seeds: (B, S, D) seed tokens.
        num_context: K, the number of context tokens to keep.
        r: tokens merged per round (``tome_r``).
        return_source: also track which seeds each context token averages (for tests and inspection).

    Returns:
        context (B, K, D) = size-weighted means, sizes (B, K, 1) = member counts, and the source
        assignment (B, K, S) of 0/1 when ``return_source`` (else None).
    """
    x = seeds
    size = torch.ones_like(seeds[..., :1])
    source = None
    if return_source:
        source = torch.eye(seeds.shape[1], dtype=seeds.dtype, device=seeds.device).expand(seeds.shape[0], -1, -1)
    for count in merge_schedule(seeds.shape[1], num_context, r):
        plan = match(x, count)
        if plan is None:
            continue
        x = merge_sum(plan, x * size)
        size = merge_sum(plan, size)
        x = x / size
        if source is not None:
            source = merge_sum(plan, source)
    return x, size, source
