"""T2L's small layers: the bottleneck adapter and per-sample stochastic depth."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Adapter", "drop_path"]


class Adapter(nn.Module):
    """Bottleneck MLP with its own residual: ``x + D_fc2(GELU(D_fc1(x)))``.

    The official ``clip/model.py`` ``Adapter``: width ``D -> D/4 -> D``, exact (erf) GELU, no LayerNorm,
    no scale. ``D_fc2`` starts at zero, so a new adapter is the identity. Attribute names are the
    official ones so checkpoint keys map 1:1.

    Args:
        width: D, the residual-stream width.
        ratio: hidden width as a fraction of D (0.25 in every official configuration).
    """

    def __init__(self, width: int, ratio: float = 0.25) -> None:
        super().__init__()
        hidden = int(width * ratio)
        self.D_fc1 = nn.Linear(width, hidden)
        self.D_fc2 = nn.Linear(hidden, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch default init for ``D_fc1``; zeros for ``D_fc2`` (identity at the start of training)."""
        self.D_fc1.reset_parameters()
        nn.init.zeros_(self.D_fc2.weight)
        nn.init.zeros_(self.D_fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(..., D) -> (..., D)."""
        return x + self.D_fc2(F.gelu(self.D_fc1(x)))


def drop_path(x: Tensor, rate: float, training: bool, samples: int) -> Tensor:
    """Stochastic depth with one keep/drop draw per sample (video), shared by all its frames and tokens.

    The official ``drop_path`` draws its mask along dim 0 of a sequence-first (L, N, D) tensor, i.e. it drops
    token positions across the whole batch; this is the per-sample rule the technique defines (README:
    deviations). Evaluation is unaffected either way.

    Args:
        x: a residual branch whose dim 0 is ``samples * k`` rows, sample-major (video b owns rows
            ``b*k .. b*k+k-1``), e.g. (B*T, L, D) or (B, T, D).
        rate: drop probability.
        training: identity when False.
        samples: number of samples B in dim 0.

    Returns:
        ``x`` with whole samples zeroed with probability ``rate``, survivors scaled by ``1 / (1 - rate)``.
    """
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = torch.empty(samples, device=x.device, dtype=x.dtype).bernoulli_(keep) / keep
    per_row = mask.repeat_interleave(x.shape[0] // samples)
    return x * per_row.view((-1,) + (1,) * (x.ndim - 1))
