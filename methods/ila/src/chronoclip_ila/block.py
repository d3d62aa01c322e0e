"""The ILA block: two alignment branches added before a frozen CLIP vision block's attention.

Official ``MultiAxisAttentionBlock`` (models/mat.py), per spec §3.2 i::

    m = message_ln(message_fc(x))                      # (B*T, L, d) -> (B, T, L, d)
    aligned, interactive, ... = message_attn(m)
    x = x + DropPath(temporal_skip_align_fc(aligned))  # zero-init Linear(d, d)
    x = x + DropPath(temporal_skip_fc(interactive))    # zero-init Linear(d, d)
    x = x + DropPath(attn(ln_1(x)))                    # the CLIP block, frozen
    x = x + DropPath(mlp(ln_2(x)))

No token is added to the attention (the paper's "mutual information token" is not in the code). The CLIP
block itself stays in the open_clip backbone; this module holds only the new layers and is called with it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import Tensor, nn

from chronoclip_ila.align import TRUNK_CHANNELS, InteractivePointAlignment
from core.clip import layers as L

__all__ = ["BlockOutput", "ILABlock", "alignment_loss", "token_drop_path"]


def alignment_loss(pooled_pre: Tensor, pooled_cur: Tensor) -> Tensor:
    """Mean over the B*P pairs of ``1 - cos(z_pre, z_cur)`` (official ``cos_similarity_loss``).

    The official code L2-normalises both sides and then applies ``nn.CosineEmbeddingLoss`` with target +1;
    this does the same.

    Args:
        pooled_pre, pooled_cur: (B, P, d) sum-pooled masked features of the two frames of each pair.
    """
    a = F.normalize(pooled_pre.flatten(0, 1), dim=-1)
    b = F.normalize(pooled_cur.flatten(0, 1), dim=-1)
    return F.cosine_embedding_loss(a, b, torch.ones(a.shape[0], device=a.device, dtype=a.dtype))


def token_drop_path(x: Tensor, rate: float, training: bool) -> Tensor:
    """The official DropPath as it acts on ILA's sequence-first tensors: drops token positions, not samples.

    The official module draws a mask of shape (L, 1, 1) for an (L, B*T, d) tensor, so one token position is
    dropped for every clip and frame at once. In this batch-first layout that is a (1, L, 1) mask.
    """
    if rate == 0.0 or not training:
        return x
    keep = 1 - rate
    mask = (keep + torch.rand(1, x.shape[1], 1, dtype=x.dtype, device=x.device)).floor_()
    return x / keep * mask


class BlockOutput(NamedTuple):
    tokens: Tensor  # (B*T, L, d) block output
    loss: Tensor  # scalar alignment loss of this block
    points: Tensor  # (B, P, 4) interactive points


class ILABlock(nn.Module):
    """New layers of one ILA block; attribute names as the official ones (``message_*``, ``temporal_*``).

    Args:
        width: vision width ``d``.
        num_frames: ``T``.
        grid: token-grid side.
        variant: alignment trunk, ``"k400"`` or ``"ssv2"``.
        drop_path_rate: this block's DropPath rate (official default 0: identity).
        channels: alignment trunk channels (official: 256).

    Attribute ``fold_linears`` (default True): outside training and without autograd (``no_grad`` /
    ``inference_mode``), ``temporal_skip_fc(message_attn.fc(z))`` on the patch rows runs as one folded Linear
    (see :meth:`InteractivePointAlignment.folded_fc`); training and gradient-enabled calls run the two layers.
    """

    def __init__(self, width: int, num_frames: int, grid: int, variant: str = "k400", drop_path_rate: float = 0.0,
                 channels: int = TRUNK_CHANNELS) -> None:
        super().__init__()
        self.num_frames = num_frames
        self.drop_path_rate = drop_path_rate
        self.fold_linears = True
        self.message_fc = nn.Linear(width, width)
        self.message_ln = nn.LayerNorm(width)
        self.message_attn = InteractivePointAlignment(width, num_frames, grid, variant, channels)
        # zero-initialised: an untrained ILA network is CLIP (+ the MIT head)
        self.temporal_skip_fc = nn.Linear(width, width)
        self.temporal_skip_align_fc = nn.Linear(width, width)
        for layer in (self.temporal_skip_fc, self.temporal_skip_align_fc):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def _drop(self, x: Tensor) -> Tensor:
        return token_drop_path(x, self.drop_path_rate, self.training)

    def forward(self, x: Tensor, clip_block: ResidualAttentionBlock, jitter_delta: float | None = None) -> BlockOutput:
        """Run the block on ``x`` (B*T, L, d), frames clip-major (row ``b*T + t``), with the CLIP ``clip_block``."""
        bt, length, width = x.shape
        m = self.message_ln(self.message_fc(x)).view(bt // self.num_frames, self.num_frames, length, width)
        fold = self.fold_linears and not self.training and not torch.is_grad_enabled()
        out = self.message_attn(m, jitter_delta, self.temporal_skip_fc if fold else None)
        x = x + self._drop(self.temporal_skip_align_fc(out.aligned.flatten(0, 1)))
        interactive = out.interactive.flatten(0, 1)
        x = x + self._drop(interactive if fold else self.temporal_skip_fc(interactive))
        x = x + self._drop(clip_block.ls_1(L.attention(clip_block.attn, clip_block.ln_1(x))))
        x = x + self._drop(clip_block.ls_2(clip_block.mlp(clip_block.ln_2(x))))
        return BlockOutput(x, alignment_loss(out.pooled_pre, out.pooled_cur), out.points)
