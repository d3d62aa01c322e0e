"""Rank bookkeeping shared by the trainer, the data pipeline and the losses.

World information comes from the launcher's environment (``deepspeed``, ``torchrun`` and plain
``python`` all set or imply RANK / WORLD_SIZE / LOCAL_RANK) or from an initialised process group.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["WorldInfo", "gather_with_grad", "is_main_process", "world_info"]


@dataclass(frozen=True)
class WorldInfo:
    rank: int
    world_size: int
    local_rank: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_info() -> WorldInfo:
    """This process's rank, the world size and the local rank."""
    if dist.is_available() and dist.is_initialized():
        return WorldInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return WorldInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                     int(os.environ.get("LOCAL_RANK", 0)))


def is_main_process() -> bool:
    return world_info().is_main


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # noqa: D102
        ctx.rank, ctx.batch = dist.get_rank(), x.shape[0]
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:  # noqa: D102
        # Every rank computed the same loss from the same gathered tensor; sum their gradients so that,
        # after the optimizer's gradient averaging over ranks, each parameter sees exactly the
        # single-process gradient of that loss.
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.batch:(ctx.rank + 1) * ctx.batch]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (same shape on every rank) over ranks along dim 0, keeping the gradient.

    A loss computed identically on every rank from gathered embeddings, with gradients then averaged
    across ranks (DeepSpeed, DDP), equals the single-process loss and gradient over the global batch.
    Identity when not distributed.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)
