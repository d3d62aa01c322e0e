"""The STAN side branch: K temporal-then-spatial layers beside CLIP's top K blocks.

Liu et al., *Revisiting Temporal Modeling for CLIP-based Image-to-Video Knowledge Transferring*, CVPR 2023;
official code ``farewellthree/STAN`` (``mmaction/models/backbones/clip_stan_hf.py``). The math follows the
authors' code where it differs from the paper (chronoclip spec ``stan.md`` sections 4 and 8):

* the branch carries one video [CLS] and every patch of every frame, laid out patch-major, time-minor:
  ``u[:, 1 + l*T + t]`` is patch ``l`` of frame ``t``;
* each layer runs a cross-frame module first (attention among the T tokens of one patch position, or the
  2023 code's 3x3x3 convolution), then an intra-frame module (a full CLIP block per frame, the video [CLS]
  copied into every frame and its attention outputs averaged back);
* CLIP levels are summed in raw (no projection), the first layer adds CLIP's own positional table and a
  64-row time embedding, and the first video [CLS] is half CLIP's raw class token.

Parameter names map 1:1 onto the official ones (see ``convert.py``): ``spatial.k`` = ``STAN_S_layers.k``,
``temporal.k`` = ``STAN_T_layers.k``, ``time_embed`` = ``STAN_time_embed``.
"""

from __future__ import annotations

import copy
import math

import torch
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import Tensor, nn

from core.clip import layers as L

__all__ = ["MAX_FRAMES", "STANBranch", "SpatialLayer", "TemporalAttention", "TemporalConv", "drop_path"]

#: Rows of the time embedding (``nn.Embedding(64, D)`` in the official code): the most frames a clip may have.
MAX_FRAMES = 64


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth over dim 0 (mmcv's ``DropPath``): zero whole rows with probability ``p``, rescale the rest."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = (keep + torch.rand((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device)).floor()
    return x.div(keep) * mask


def _linear_default_init(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's ``nn.Linear`` initialisation (Kaiming-uniform a=sqrt(5), bias U(+-1/sqrt(fan_in)))."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(weight.shape[1])
        nn.init.uniform_(bias, -bound, bound)


class TemporalAttention(nn.Module):
    """Cross-frame module ``STAN_T_layers.k`` (selfattn): pre-LN attention among the T tokens of each patch.

    ``patches + temporal_fc(DropPath(MHA(LN(patches))))`` with ``temporal_fc`` zero-initialised, so a fresh
    module is the identity. No MLP; the video [CLS] passes through untouched.
    """

    def __init__(self, width: int, heads: int, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.temporal_fc = nn.Linear(width, width)
        self.drop_path_rate = drop_path_rate
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # The official q/k/v/out projections are four plain nn.Linear (HF CLIPAttention built outside
        # CLIPModel.post_init), so they keep PyTorch's Linear init, not nn.MultiheadAttention's xavier.
        self.ln.reset_parameters()
        for w, b in zip(self.attn.in_proj_weight.data.chunk(3), self.attn.in_proj_bias.data.chunk(3)):
            _linear_default_init(w, b)
        _linear_default_init(self.attn.out_proj.weight.data, self.attn.out_proj.bias.data)
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def forward(self, u: Tensor, frames: int) -> Tensor:
        """``u`` (B, 1 + N*T, D) in the branch layout -> same shape."""
        b, length, width = u.shape
        patches = u[:, 1:].reshape(-1, frames, width)                    # (B*N, T, D): one patch position per row
        a = L.attention(self.attn, self.ln(patches))
        patches = patches + self.temporal_fc(drop_path(a, self.drop_path_rate, self.training))
        return torch.cat([u[:, :1], patches.reshape(b, length - 1, width)], dim=1)


class TemporalConv(nn.Module):
    """Cross-frame module of the conv variant (2023 code ``CLIPLayer_ConvTime``, mode ``origin``).

    One full ``Conv3d(D, D, 3, padding=1)`` over (T, grid, grid), then DropPath and the zero-initialised
    ``temporal_fc``, added to the patches. The paper's Eq. 9 bottleneck (1x1x1 down to D/8, GELU) is not
    what the code trained; see the package README.
    """

    def __init__(self, width: int, grid: int, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.grid = grid
        self.conv = nn.Conv3d(width, width, 3, 1, 1)
        self.temporal_fc = nn.Linear(width, width)
        self.drop_path_rate = drop_path_rate
        nn.init.zeros_(self.temporal_fc.weight)
        nn.init.zeros_(self.temporal_fc.bias)

    def forward(self, u: Tensor, frames: int) -> Tensor:
        """``u`` (B, 1 + N*T, D) in the branch layout -> same shape."""
        b, length, width = u.shape
        n = (length - 1) // frames
        patches = u[:, 1:]
        x = patches.reshape(b, n, frames, width).permute(0, 3, 2, 1)      # (B, D, T, N)
        x = self.conv(x.reshape(b, width, frames, self.grid, n // self.grid))
        x = x.flatten(3).permute(0, 3, 2, 1).reshape(b, length - 1, width)  # back to (l, t) order
        patches = patches + self.temporal_fc(drop_path(x, self.drop_path_rate, self.training))
        return torch.cat([u[:, :1], patches], dim=1)


class SpatialLayer(nn.Module):
    """Intra-frame module ``STAN_S_layers.k``: a CLIP block run per frame on the branch tokens.

    The single video [CLS] is copied into each frame for attention; the frames' [CLS] attention outputs are
    averaged back onto it. The MLP then runs over the whole (1 + N*T) sequence. DropPath on attention only.
    """

    def __init__(self, block: ResidualAttentionBlock, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.block = block
        self.drop_path_rate = drop_path_rate

    def forward(self, u: Tensor, frames: int) -> Tensor:
        """``u`` (B, 1 + N*T, D) in the branch layout -> same shape."""
        b, length, width = u.shape
        n = (length - 1) // frames
        block = self.block
        cls = u[:, :1].unsqueeze(1).expand(b, frames, 1, width).reshape(b * frames, 1, width)
        per_frame = u[:, 1:].reshape(b, n, frames, width).transpose(1, 2).reshape(b * frames, n, width)
        a = L.attention(block.attn, block.ln_1(torch.cat([cls, per_frame], dim=1)))
        a = drop_path(block.ls_1(a), self.drop_path_rate, self.training)  # rows are frames: drops per frame
        a_cls = a[:, :1].reshape(b, frames, 1, width).mean(dim=1)
        a_patches = a[:, 1:].reshape(b, frames, n, width).transpose(1, 2).reshape(b, n * frames, width)
        u = u + torch.cat([a_cls, a_patches], dim=1)
        return u + block.ls_2(block.mlp(block.ln_2(u)))


class STANBranch(nn.Module):
    """The K-layer branch; layer ``k`` reads the output of CLIP block ``Lc - K + k``.

    Args:
        visual: the CLIP vision tower the branch sits beside (its top K blocks are copied into the spatial
            layers; its class and positional embeddings are read, not copied, at every forward).
        depth: K, the number of branch layers (4 in the paper on K400, 6 on SSv2).
        time_module: ``"selfattn"`` (the released code) or ``"conv"`` (the 2023 code's Conv3d variant).
        drop_path_rate: the last layer's DropPath rate; layer k gets ``linspace(0, rate, K)[k]``.
    """

    def __init__(self, visual: VisionTransformer, depth: int = 4, time_module: str = "selfattn",
                 drop_path_rate: float = 0.1) -> None:
        super().__init__()
        blocks = visual.transformer.resblocks
        if not 1 <= depth <= len(blocks):
            raise ValueError(f"STAN depth {depth} must be between 1 and the CLIP depth {len(blocks)}")
        if time_module not in ("selfattn", "conv"):
            raise ValueError(f"time_module {time_module!r} is not one of 'selfattn', 'conv'")
        width = visual.class_embedding.shape[0]
        heads = blocks[0].attn.num_heads
        grid = round((visual.positional_embedding.shape[0] - 1) ** 0.5)
        rates = torch.linspace(0, drop_path_rate, depth).tolist() if depth > 1 else [0.0]
        self.depth = depth
        self.time_module = time_module
        self.first_block = len(blocks) - depth
        self.spatial = nn.ModuleList(
            SpatialLayer(copy.deepcopy(blocks[self.first_block + k]), rates[k]) for k in range(depth))
        if time_module == "selfattn":
            self.temporal = nn.ModuleList(TemporalAttention(width, heads, rates[k]) for k in range(depth))
        else:
            self.temporal = nn.ModuleList(TemporalConv(width, grid, rates[k]) for k in range(depth))
        self.time_embed = nn.Embedding(MAX_FRAMES, width)  # N(0, 1) init, as nn.Embedding (official)

    def branch_input(self, visual: VisionTransformer, h: Tensor, u: Tensor | None, k: int, frames: int) -> Tensor:
        """What branch layer ``k`` consumes, from CLIP block output ``h`` (B*T, 1+N, D) and the previous ``u``."""
        bt, tokens, width = h.shape
        h = h.view(bt // frames, frames, tokens, width)
        frame_cls = h[:, :, 0].mean(dim=1, keepdim=True)                                # (B, 1, D)
        patches = h[:, :, 1:].transpose(1, 2)                                           # (B, N, T, D)
        if k > 0:
            return u + torch.cat([frame_cls, patches.flatten(1, 2)], dim=1)
        pos = visual.positional_embedding.to(h.dtype)
        patches = patches + pos[1:, None] + self.time_embed.weight[:frames].to(h.dtype)
        cls = (frame_cls + (visual.class_embedding.to(h.dtype) + pos[0])) / 2
        return torch.cat([cls, patches.flatten(1, 2)], dim=1)

    def layer(self, k: int, u: Tensor, frames: int) -> Tensor:
        """Branch layer ``k``: cross-frame module, then intra-frame module."""
        return self.spatial[k](self.temporal[k](u, frames), frames)
