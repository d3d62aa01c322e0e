"""Contrastive objectives against hand-computed values, and cross-rank gathering against one process."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from core.objectives import (
    classification_loss,
    cosine_logits,
    gather_with_grad,
    soft_target_cross_entropy,
    symmetric_infonce,
)


def test_cosine_logits_by_hand():
    video = torch.tensor([[3.0, 4.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(cosine_logits(video, text, 10.0), torch.tensor([[6.0, 8.0]]))


def test_cosine_logits_of_bf16_embeddings_are_fp32():
    # Two classes 0.09 apart at a logit of ~30, where bf16's step is 0.125: rounded to bf16 they tie at 29.875.
    a, b = 0.0732421875, 0.10693359375  # exact in bf16
    video = torch.tensor([[1.0, 0.0]], dtype=torch.bfloat16)
    text = torch.tensor([[1.0, a], [1.0, b]], dtype=torch.bfloat16)
    logits = cosine_logits(video, text, torch.tensor(30.0, dtype=torch.bfloat16))
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, cosine_logits(video.float(), text.float(), 30.0), rtol=0, atol=0)
    exact = torch.tensor([30 / math.sqrt(1 + a * a), 30 / math.sqrt(1 + b * b)])  # 29.920, 29.830
    torch.testing.assert_close(logits[0], exact)
    assert exact.bfloat16()[0] == exact.bfloat16()[1]  # the tie an all-bf16 head would make


def test_soft_target_and_label_smoothing_by_hand():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    log_p = [2 - math.log(math.exp(2) + 2), -math.log(math.exp(2) + 2)]
    target = torch.tensor([[0.5, 0.5, 0.0]])
    expected = -(0.5 * log_p[0] + 0.5 * log_p[1])
    assert soft_target_cross_entropy(logits, target).item() == pytest.approx(expected, rel=1e-6)
    # eps = 0.3 over 3 classes: on = 0.8, off = 0.1 each.
    expected_smooth = -(0.8 * log_p[0] + 0.1 * log_p[1] + 0.1 * log_p[1])
    smooth = classification_loss(logits, torch.tensor([0]), label_smoothing=0.3)
    assert smooth.item() == pytest.approx(expected_smooth, rel=1e-6)
    assert classification_loss(logits, torch.tensor([1]), target=target).item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_infonce_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    s = 2.0 * torch.tensor([[1.0, 1 / math.sqrt(2)], [0.0, 1 / math.sqrt(2)]])
    rows = -(torch.log_softmax(s, 1)[0, 0] + torch.log_softmax(s, 1)[1, 1]) / 2
    cols = -(torch.log_softmax(s, 0)[0, 0] + torch.log_softmax(s, 0)[1, 1]) / 2
    assert symmetric_infonce(a, b, 2.0).item() == pytest.approx(((rows + cols) / 2).item(), rel=1e-6)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loss_and_grad(weight: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    w = weight.clone().requires_grad_(True)
    loss = symmetric_infonce(x @ w, y @ w, 5.0)
    loss.backward()
    return loss.item(), w.grad


def _rank_main(rank: int, port: int, weight, x, y, out) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    half = x.shape[0] // 2
    loss, grad = _loss_and_grad(weight, x[rank * half:(rank + 1) * half], y[rank * half:(rank + 1) * half])
    dist.all_reduce(grad)
    out[rank] = (loss, grad / 2)  # gradient averaging, as DeepSpeed/DDP do
    dist.destroy_process_group()


def test_gathered_infonce_on_two_ranks_equals_one_process():
    torch.manual_seed(0)
    weight, x, y = torch.randn(6, 4), torch.randn(8, 6), torch.randn(8, 6)
    loss_1, grad_1 = _loss_and_grad(weight, x, y)
    out = mp.Manager().dict()
    mp.spawn(_rank_main, args=(_free_port(), weight, x, y, out), nprocs=2, join=True)
    for rank in range(2):
        loss_r, grad_r = out[rank]
        assert loss_r == pytest.approx(loss_1, rel=1e-6)
        torch.testing.assert_close(grad_r, grad_1, rtol=1e-5, atol=1e-6)


def test_gather_is_identity_without_process_group():
    x = torch.randn(3, 2)
    assert gather_with_grad(x) is x
