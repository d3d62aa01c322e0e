"""T2L's losses against hand-computed values, and N ranks against one process."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from chronoclip_t2l.losses import inbatch_kl_loss, inbatch_targets, tfd_loss


def test_targets_share_mass_between_samples_of_one_class():
    target = inbatch_targets(torch.tensor([0, 1, 0]))
    e10 = math.exp(10)
    pair = e10 / (2 * e10 + 1)          # two positives in the row
    single = e10 / (e10 + 2)            # one positive in the row
    expected = torch.tensor([[pair, 1 / (2 * e10 + 1), pair],
                             [1 / (e10 + 2), single, 1 / (e10 + 2)],
                             [pair, 1 / (2 * e10 + 1), pair]])
    torch.testing.assert_close(target, expected)


def test_inbatch_kl_by_hand():
    # Unit vectors with cosines known exactly: v0 = t0 = e0, v1 = e1, t1 = (e0 + e1)/sqrt(2).
    video = torch.tensor([[2.0, 0.0], [0.0, 3.0]])    # norms do not matter
    text = torch.tensor([[5.0, 0.0], [1.0, 1.0]])
    scale = 4.0
    c = 1 / math.sqrt(2)
    logits = [[scale * 1.0, scale * c], [scale * 0.0, scale * c]]
    e10 = math.exp(10)
    q = [[e10 / (e10 + 1), 1 / (e10 + 1)], [1 / (e10 + 1), e10 / (e10 + 1)]]

    def kl(rows):
        total = 0.0
        for i, row in enumerate(rows):
            log_z = math.log(sum(math.exp(s) for s in row))
            total += sum(q[i][j] * (math.log(q[i][j]) - (row[j] - log_z)) for j in range(2))
        return total / len(rows)

    v2t, t2v, got_logits = inbatch_kl_loss(video, text, torch.tensor([3, 7]), scale, gather=False)
    transposed = [[logits[j][i] for j in range(2)] for i in range(2)]
    assert v2t.item() == pytest.approx(kl(logits), rel=1e-6)
    assert t2v.item() == pytest.approx(kl(transposed), rel=1e-6)
    torch.testing.assert_close(got_logits, torch.tensor(logits))


def test_tfd_by_hand():
    # One video, three frames, one channel: [0, 1, 3].
    # central differences with replicated ends: |1-0|/2, |3-0|/2, |3-1|/2 -> mean 1.0
    # unbiased variance of (0, 1, 3): mean 4/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9, / 2 = 7/3
    frames = torch.tensor([[[0.0], [1.0], [3.0]]])
    assert tfd_loss(frames, gather=False).item() == pytest.approx(1 / (1 + 1.0 + 7 / 3), rel=1e-6)
    # Batch means are taken inside C and V, before the reciprocal: a second, constant video halves both.
    two = torch.cat([frames, torch.zeros_like(frames)])
    assert tfd_loss(two, gather=False).item() == pytest.approx(1 / (1 + 0.5 + 7 / 6), rel=1e-6)


def test_tfd_rejects_single_frames():
    with pytest.raises(ValueError, match="at least 2 frames"):
        tfd_loss(torch.zeros(2, 1, 4), gather=False)


# -- 2 ranks vs 1 process -------------------------------------------------------------------------------
LABELS = [0, 1, 0, 2, 1, 1, 3, 0]


def _problem() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    inputs = {"x": torch.randn(8, 6, generator=gen), "y": torch.randn(8, 6, generator=gen),
              "z": torch.randn(8, 3, 6, generator=gen)}
    weights = {k: torch.randn(6, 5, generator=gen) for k in ("wv", "wt", "wf")}
    return inputs, weights


def _loss_and_grads(inputs, weights, labels) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    params = {k: w.clone().requires_grad_(True) for k, w in weights.items()}
    v2t, t2v, _ = inbatch_kl_loss(inputs["x"] @ params["wv"], inputs["y"] @ params["wt"], labels, 3.0)
    loss = (v2t + t2v) / 2 + tfd_loss(inputs["z"] @ params["wf"])
    loss.backward()
    return loss.detach(), {k: p.grad for k, p in params.items()}


def _rank_main(rank: int, world: int, store: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        inputs, weights = _problem()
        rows = slice(rank * 8 // world, (rank + 1) * 8 // world)
        local = {k: v[rows] for k, v in inputs.items()}
        loss, grads = _loss_and_grads(local, weights, torch.tensor(LABELS)[rows])
        for grad in grads.values():        # what DeepSpeed/DDP do with gradients: average over ranks
            dist.all_reduce(grad)
            grad /= world
        torch.save({"loss": loss, "grads": grads}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process_over_the_global_batch(tmp_path):
    inputs, weights = _problem()
    loss, grads = _loss_and_grads(inputs, weights, torch.tensor(LABELS))
    mp.spawn(_rank_main, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        torch.testing.assert_close(got["loss"], loss, atol=1e-6, rtol=1e-6)
        for name, grad in grads.items():
            torch.testing.assert_close(got["grads"][name], grad, atol=1e-6, rtol=1e-5, msg=name)
