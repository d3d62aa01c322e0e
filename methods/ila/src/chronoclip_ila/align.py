"""The implicit learnable alignment of adjacent frames (the ILA module of every block).

For each pair of adjacent frames (t, t+1) a conv trunk reads the two projected token maps side by side,
a point head predicts one "interactive point" per frame, and a separable trapezoid mask centred on each
point weights that frame's tokens. Shapes follow the spec (``shared/methods/ila.md`` §3.2): ``B`` clips,
``T`` frames, ``P = T - 1`` pairs, an ``H x W`` token grid (``N = H*W``), width ``d``.

Module and parameter names match the official ``models/align.py`` (``interactive_block``,
``prediction_block`` with the same Sequential indices, ``conv``, ``fc``) so checkpoints map 1:1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "JITTER_DIRECTIONS",
    "POINT_SCALE",
    "AlignmentOutput",
    "BatchNorm2d",
    "InteractivePointAlignment",
    "alignment_masks",
    "merge_pairs",
    "trapezoid",
]

# Mask profile of the official code: plateau 1 for |u| <= 0.25, then slope -1.5 down to 0 at |u| = 0.9167.
PLATEAU = 0.25
SLOPE = 1.5
# Points are 0.75 * tanh(.): strictly inside (-0.75, 0.75) of the [-1, 1] grid.
POINT_SCALE = 0.75
# Training jitter: the 9 offsets (x, y) of the official `disturbance_offset`, in its order, times delta.
JITTER_DIRECTIONS = ((0, 0), (0, 1), (1, 0), (0, -1), (-1, 0), (1, 1), (-1, -1), (1, -1), (-1, 1))
# Channels of the trunk output in the official code (hard-coded there, whatever the CLIP width); the first half
# feeds the "pre" frame, the second the "cur" frame. The point head's hidden width is half of it.
TRUNK_CHANNELS = 256


def trapezoid(u: Tensor) -> Tensor:
    """Per-axis mask weight ``f(u)``: 1 for ``|u| <= 0.25``, else ``max(0, 1 - 1.5 (|u| - 0.25))``."""
    ramp = torch.clamp(1 - (u.abs() - PLATEAU) * SLOPE, min=0.0)
    return torch.where(u.abs() <= PLATEAU, torch.ones_like(u), ramp)


def alignment_masks(points: Tensor, grid: int, jitter_delta: float | None = None) -> Tensor:
    """Separable trapezoid masks centred on ``points``.

    Args:
        points: (..., 2) as ``(x, y)``: x the column (width) and y the row (height) coordinate, in the
            normalised frame where -1 and +1 are the centres of the first and last token.
        grid: side ``H = W`` of the token grid.
        jitter_delta: ``None`` for one mask per point (eval); a float for the training rule: the masks of the
            9 points ``p + delta * o`` (``o`` in :data:`JITTER_DIRECTIONS`) averaged (masks, not points).

    Returns:
        (..., H, W) masks, ``M[h, w] = f(c_h - y) * f(c_w - x)`` with ``c_i = 2 i / (H - 1) - 1``; not normalised.
    """
    # float32 arange / (H-1) * 2 - 1, exactly as the official code computes the grid
    coords = torch.arange(grid, device=points.device, dtype=points.dtype) / (grid - 1) * 2 - 1
    if jitter_delta is not None:
        offsets = torch.tensor(JITTER_DIRECTIONS, device=points.device, dtype=points.dtype) * jitter_delta
        points = points.unsqueeze(-2) + offsets  # (..., 9, 2)
    weight_x = trapezoid(coords - points[..., 0:1])  # (..., W)
    weight_y = trapezoid(coords - points[..., 1:2])  # (..., H)
    masks = weight_y.unsqueeze(-1) * weight_x.unsqueeze(-2)
    return masks.mean(dim=-3) if jitter_delta is not None else masks


def merge_pairs(first: Tensor, second: Tensor) -> Tensor:
    """Per-frame values from per-pair values of frame t (``first``) and frame t+1 (``second``).

    Args:
        first: (B, P, ...) the value each pair j gives its first frame j.
        second: (B, P, ...) the value each pair j gives its second frame j+1.

    Returns:
        (B, P+1, ...): frame 0 from pair 0, frame P from pair P-1, and the middle frames the average of
        the two pairs that contain them (the official first/middle/last rule).
    """
    middle = (first[:, 1:] + second[:, :-1]) / 2
    return torch.cat([first[:, :1], middle, second[:, -1:]], dim=1)


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that also runs when its parameters are half precision and its statistics fp32.

    DeepSpeed's bf16/fp16 training casts a model's parameters but keeps its buffers (0.19), which leaves the
    running statistics in fp32 under bf16 weights: a combination the batch-norm kernels reject. Then the
    affine parameters enter the kernel in the statistics' dtype (fp32), so the normalisation and the
    running-statistics update are computed in fp32 on the half-precision input, as under the official
    code's autocast; the output keeps the input's dtype. Same parameters and state-dict keys as
    ``nn.BatchNorm2d``; when all dtypes agree it is ``nn.BatchNorm2d`` exactly.
    """

    def forward(self, x: Tensor) -> Tensor:
        stats = self.running_mean
        if self.weight is None or stats is None or self.weight.dtype == stats.dtype:
            return super().forward(x)
        self._check_input_dim(x)
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative moving average
                momentum = 1.0 / float(self.num_batches_tracked)
        return F.batch_norm(x, stats, self.running_var, self.weight.to(stats.dtype), self.bias.to(stats.dtype),
                            self.training, momentum, self.eps)


class _DepthSeparableConv(nn.Module):
    """Depthwise 3x3 (+BN+ReLU) then pointwise 1x1 (+BN+ReLU); official ``Depth_Separable_Convolution``."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels),
            BatchNorm2d(in_channels),
            nn.ReLU(),
        )
        self.pointwise_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1),
            BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class _PooledToPairSequence(nn.Module):
    """(B*P, C, 1, 1) -> (B, C, P): the official ``SqueezeAndRerange`` (pairs become the Conv1d length axis)."""

    def __init__(self, num_pairs: int) -> None:
        super().__init__()
        self.num_pairs = num_pairs

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return x.view(-1, self.num_pairs, x.shape[1]).transpose(1, 2)


def interactive_trunk(width: int, variant: str, channels: int = TRUNK_CHANNELS) -> nn.Sequential:
    """Conv trunk on a frame pair (2d channels) -> ``channels`` (official: 256).

    ``"k400"``: depthwise-separable conv, then a dense 3x3 conv (keys ``0.depthwise_conv``, ``0.pointwise_conv``,
    ``1``, ``2``). ``"ssv2"`` (paper appendix, SSV2 branch): two dense 3x3 convs (keys ``0, 1, 3, 4``).
    """
    if variant == "k400":
        return nn.Sequential(
            _DepthSeparableConv(2 * width, channels),
            nn.Conv2d(channels, channels, 3, padding=1),
            BatchNorm2d(channels),
            nn.ReLU(),
        )
    if variant == "ssv2":
        return nn.Sequential(
            nn.Conv2d(2 * width, channels, 3, padding=1),
            BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            BatchNorm2d(channels),
            nn.ReLU(),
        )
    raise ValueError(f"unknown ILA variant {variant!r}; use 'k400' (text head) or 'ssv2' (linear head)")


def point_head(num_pairs: int, channels: int = TRUNK_CHANNELS) -> nn.Sequential:
    """Trunk features (B*P, C, H, W) -> points (B, 4, P) in (-1, 1) (before the 0.75 scale); official C = 256.

    MaxPool floors (14 -> 7 -> 3, 7 -> 3 -> 1), as in the official code; the grid must be at least 4.
    Both Conv1d have ``groups=2``: the pre-frame point (outputs 0, 1) reads pooled channels 0-63 only and
    the cur-frame point (outputs 2, 3) channels 64-127 (for C = 256; hidden widths are C/2 and C/4).
    Indices 0, 1, 4, 5, 10, 12 hold the parameters, as in the official ``prediction_block``.
    """
    hidden = channels // 2
    head = nn.Sequential(
        nn.Conv2d(channels, hidden, 3, padding=1),
        BatchNorm2d(hidden),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.Conv2d(hidden, hidden, 3, padding=1),
        BatchNorm2d(hidden),
        nn.MaxPool2d(2),
        nn.ReLU(),
        nn.AdaptiveMaxPool2d(1),
        _PooledToPairSequence(num_pairs),
        nn.Conv1d(hidden, hidden // 2, 1, groups=2),
        nn.ReLU(),
        nn.Conv1d(hidden // 2, 4, 1, groups=2),
        nn.Tanh(),
    )
    # zero last layer: every point starts at the frame centre (0, 0)
    nn.init.zeros_(head[12].weight)
    nn.init.zeros_(head[12].bias)
    return head


class AlignmentOutput(NamedTuple):
    """What :class:`InteractivePointAlignment` returns for one block."""

    aligned: Tensor  # (B, T, L, d) masked tokens per frame, CLS row = projected CLS (unmasked)
    interactive: Tensor  # (B, T, L, d) trunk features back on the tokens, CLS row = projected CLS (with
    #                      ``skip_fc`` given: that Linear already applied, folded into ``fc`` on the patch rows)
    pooled_pre: Tensor  # (B, P, d) sum over H*W of the masked first frame of each pair (loss only)
    pooled_cur: Tensor  # (B, P, d) sum over H*W of the masked second frame of each pair (loss only)
    points: Tensor  # (B, P, 4) (x_pre, y_pre, x_cur, y_cur) in (-0.75, 0.75)


class InteractivePointAlignment(nn.Module):
    """The official ``ILA`` module (``message_attn`` of each block): points, masks, and the conv branch.

    Args:
        width: token width ``d``.
        num_frames: ``T`` (the point head's Conv1d runs over the ``T - 1`` pairs of a clip).
        grid: token-grid side ``H = W`` (>= 4).
        variant: ``"k400"`` or ``"ssv2"`` trunk (see :func:`interactive_trunk`).
        channels: trunk channels ``C`` (official: 256; a multiple of 8). ``C/2`` of them feed the temporal conv.
    """

    def __init__(self, width: int, num_frames: int, grid: int, variant: str = "k400",
                 channels: int = TRUNK_CHANNELS) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"ILA aligns adjacent frames and needs at least 2 frames per clip, got {num_frames}")
        if grid < 4:
            raise ValueError(f"ILA's point head max-pools twice and needs a token grid of at least 4x4, got {grid}x{grid}")
        if channels < 8 or channels % 8:
            raise ValueError(f"alignment channels must be a positive multiple of 8 (official: 256), got {channels}")
        self.width, self.num_frames, self.grid, self.channels = width, num_frames, grid, channels
        self.interactive_block = interactive_trunk(width, variant, channels)
        self.fc = nn.Linear(channels // 2, width)
        # temporal conv over the merged per-frame maps, zero padding in time
        self.conv = nn.Conv3d(channels // 2, channels // 2, kernel_size=(3, 1, 1), padding=(1, 0, 0))
        self.prediction_block = point_head(num_frames - 1, channels)

    def forward(self, m: Tensor, jitter_delta: float | None = None, skip_fc: nn.Linear | None = None
                ) -> AlignmentOutput:
        """Align every adjacent frame pair of ``m``.

        Args:
            m: (B, T, L, d) projected tokens ``message_ln(message_fc(x))``, CLS first.
            jitter_delta: ``None`` (eval: one mask per point) or the training jitter (9 averaged masks).
            skip_fc: the block's ``temporal_skip_fc``, to apply it here: on the patch rows
                ``skip_fc(fc(z))`` is two Linears with nothing between, computed as one folded Linear
                (:meth:`folded_fc`). The CLS row gets ``skip_fc`` alone. The parameters are unchanged.
        """
        b, t, _, d = m.shape
        h = w = self.grid
        cls, tokens = m[:, :, :1], m[:, :, 1:]  # (B, T, 1, d), (B, T, N, d)
        # the trunk sees each frame as a (d, H, W) map: token n sits at row n // W, column n % W
        maps = tokens.transpose(2, 3).reshape(b, t, d, h, w)
        pairs = torch.cat([maps[:, :-1], maps[:, 1:]], dim=2).flatten(0, 1)  # (B*P, 2d, H, W), pair b*P + j
        # channels-last: oneDNN's convolutions run it several times faster on CPU (the depthwise 3x3 ~8x)
        features = self.interactive_block(pairs.contiguous(memory_format=torch.channels_last))  # (B*P, C, H, W)
        points = self.prediction_block(features).transpose(1, 2) * POINT_SCALE  # (B, P, 4)
        interactive = self._interactive_tokens(features, cls, skip_fc)

        # masks flattened row-major like the tokens, so they weight the tokens in place: (B, P, N, 1)
        masks_pre = alignment_masks(points[..., :2], h, jitter_delta).flatten(-2).unsqueeze(-1)
        masks_cur = alignment_masks(points[..., 2:], h, jitter_delta).flatten(-2).unsqueeze(-1)
        aligned_pre, aligned_cur = masks_pre * tokens[:, :-1], masks_cur * tokens[:, 1:]  # (B, P, N, d)
        # the CLS row of both frames of a pair is their own projected CLS, so merging leaves it unchanged
        aligned = torch.cat([cls, merge_pairs(aligned_pre, aligned_cur)], dim=2)
        return AlignmentOutput(aligned, interactive, aligned_pre.sum(2), aligned_cur.sum(2), points)

    @torch.compiler.disable  # a cache lookup: traced, Dynamo guards on its version-counter key and recompiles
    def folded_fc(self, skip_fc: nn.Linear) -> tuple[Tensor, Tensor]:
        """``skip_fc ∘ fc`` as one Linear (C/2 -> d): weight ``W_skip @ W_fc``, bias ``W_skip @ b_fc + b_skip``.

        Cached until any of the four tensors changes (version counter, device, dtype): an optimiser step or a
        ``load_state_dict`` refolds; casting the model refolds.
        """
        tensors = (self.fc.weight, self.fc.bias, skip_fc.weight, skip_fc.bias)
        key = tuple((id(p), p._version, p.device, p.dtype) for p in tensors)
        cached = getattr(self, "_folded", None)
        if cached is None or cached[0] != key:
            with torch.no_grad(), torch.inference_mode(False):
                weight = skip_fc.weight @ self.fc.weight
                bias = skip_fc.weight @ self.fc.bias + skip_fc.bias
            self._folded = (key, (weight, bias))
        return self._folded[1]

    def _interactive_tokens(self, features: Tensor, cls: Tensor, skip_fc: nn.Linear | None = None) -> Tensor:
        """(B*P, C, H, W) trunk features -> (B, T, L, d): merge pairs per frame, temporal conv, fc, CLS row."""
        b, t = cls.shape[:2]
        half = self.channels // 2
        per_pair = features.flatten(2).transpose(1, 2).reshape(b, t - 1, -1, self.channels)  # (B, P, N, C)
        merged = merge_pairs(per_pair[..., :half], per_pair[..., half:])  # (B, T, N, C/2)
        # the Conv3d (3, 1, 1) with zero padding in time, as three matmuls over time-shifted frames (CPU conv3d
        # is slow; the parameters stay those of `conv`, so checkpoints map 1:1)
        padded = F.pad(merged, (0, 0, 0, 0, 1, 1))
        weight = self.conv.weight.flatten(2)  # (out, in, 3)
        out = self.conv.bias + sum(padded[:, k:k + t] @ weight[:, :, k].t() for k in range(3))
        if skip_fc is None:
            return torch.cat([cls, self.fc(out)], dim=2)
        return torch.cat([skip_fc(cls), F.linear(out, *self.folded_fc(skip_fc))], dim=2)
