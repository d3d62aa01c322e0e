"""TC-CLIP's vision side: Temporal Contextualization on the CLIP ViT blocks (spec §2).

All frames of a video travel as one sequence (B, T·N, D). Every block is a TC block: attention stays
per frame, but each frame's keys/values are extended with the K context tokens the previous block
made; the block then makes its own K context tokens from the top seed patches of every frame (pooled
by bipartite merging) and passes them through its own FFN. The CLIP block weights are used as they
are (the packed ``in_proj`` is sliced into q, k, v).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import Tensor

from chronoclip_tcclip.merge import summarize_seeds
from core.clip import layers as L

__all__ = ["ATTENTION_MODES", "TCSettings", "VisionOutput", "tc_block", "tc_vision_forward"]

#: ``official``: the authors' order (scaled q @ k, + bias, softmax, @ v) with the full (B·T, H, N, N+K)
#: probabilities materialised; the default, bit-for-bit the float64 golden path. ``sdpa``: the output from
#: ``scaled_dot_product_attention`` (fused, no probability tensor) and only the CLS row's softmax computed
#: explicitly, in the official order, for seed selection.
ATTENTION_MODES = ("official", "sdpa")


@dataclass(frozen=True)
class TCSettings:
    """Shape-level constants of the TC blocks (the official code hard-codes them for ViT-B/16)."""

    num_frames: int          # T
    num_patches: int         # P = grid² (196 at 224 px / patch 16)
    num_seeds: int           # n_s = int(P · seed_token_a) = 58
    num_context: int         # K = context_token_k = 96
    merge_r: tuple[int, ...]  # tome_r per block (constant 100)
    attention: str = "official"  # one of ATTENTION_MODES

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_MODES:
            raise ValueError(f"attention {self.attention!r} is not one of {ATTENTION_MODES}")


@dataclass
class VisionOutput:
    """``frames`` (B, T, E): projected CLS of the last block; ``context`` {block index: (B, K, E)} after
    ``ln_post`` and ``proj``; ``sizes`` {block index: (B, K, 1)} seeds per context token."""

    frames: Tensor
    context: dict[int, Tensor]
    sizes: dict[int, Tensor]


def _tc_attention(
    block: ResidualAttentionBlock, u_loc: Tensor, u_ctx: Tensor | None, bias: Tensor | None, num_frames: int,
    mode: str = "official",
) -> tuple[Tensor, Tensor]:
    """Per-frame attention whose keys/values are the frame's own tokens followed by the context tokens.

    Args:
        block: the CLIP block (its ``attn`` weights).
        u_loc: (B, T·N, D) ``ln_1`` of the frame tokens.
        u_ctx: (B, K, D) ``ln_1`` of the incoming context tokens, or None (block 0).
        bias: (H, 1, 2) local/context logit bias, or None.
        num_frames: T.
        mode: ``official`` or ``sdpa`` (see :data:`ATTENTION_MODES`).

    Returns:
        out (B, T·N, D) after ``out_proj``; probs (B·T, H, N, N+K) post-softmax attention (``official``) or
        only its CLS row (B·T, H, 1, N+K) (``sdpa``): seed selection reads nothing else.
    """
    attn = block.attn
    b, tn, d = u_loc.shape
    t, heads = num_frames, attn.num_heads
    n = tn // t
    u_all = u_loc if u_ctx is None else torch.cat([u_loc, u_ctx], dim=1)
    q, k, v = L.in_projections(attn, u_loc, u_all)
    q = q.reshape(b * t, n, d)
    k_loc, v_loc = k[:, :tn].reshape(b * t, n, d), v[:, :tn].reshape(b * t, n, d)
    if u_ctx is not None:
        # every frame of a video sees the same context tokens, appended after its own N keys
        num_ctx = u_ctx.shape[1]
        k_ctx = k[:, tn:].unsqueeze(1).expand(b, t, num_ctx, d).reshape(b * t, num_ctx, d)
        v_ctx = v[:, tn:].unsqueeze(1).expand(b, t, num_ctx, d).reshape(b * t, num_ctx, d)
        k_loc, v_loc = torch.cat([k_loc, k_ctx], dim=1), torch.cat([v_loc, v_ctx], dim=1)
    q, k, v = L.split_heads(q, heads), L.split_heads(k_loc, heads), L.split_heads(v_loc, heads)
    scale = (d // heads) ** -0.5
    mask = None
    if bias is not None:
        num_keys = k.shape[-2]
        mask = torch.cat([bias[:, :, 0:1].expand(heads, 1, n), bias[:, :, 1:2].expand(heads, 1, num_keys - n)],
                         dim=-1).unsqueeze(0).to(q.dtype)                        # (1, H, 1, N+K)
    if mode == "sdpa":
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        # the CLS row alone, in the official order, for the seed scores
        logits = (q[:, :, :1] * scale) @ k.transpose(-2, -1)
        probs = (logits if mask is None else logits + mask).softmax(dim=-1)
        return attn.out_proj(L.merge_heads(out).reshape(b, tn, d)), probs
    # scale q before the product, softmax over all N+K keys: the official order (fp32 parity, spec §11)
    logits = (q * scale) @ k.transpose(-2, -1)
    if mask is not None:
        logits = logits + mask
    probs = logits.softmax(dim=-1)
    out = L.merge_heads(probs @ v).reshape(b, tn, d)
    return attn.out_proj(out), probs


def _seed_index(probs: Tensor, settings: TCSettings) -> Tensor:
    """Top-n_s patches per frame by the CLS row's post-softmax attention, averaged over heads.

    Args:
        probs: (B·T, H, N, N+K), or (B·T, H, 1, N+K) (the CLS row only).

    Returns:
        (B, T, n_s) patch indices in descending score order.
    """
    t, p = settings.num_frames, settings.num_patches
    cls_row = probs[:, :, 0, 1:1 + p]
    cls_row = cls_row.reshape(-1, t, cls_row.shape[1], p).mean(dim=2)
    return cls_row.topk(settings.num_seeds, dim=2, largest=True, sorted=True).indices


def _gather_seeds(x_loc: Tensor, index: Tensor, settings: TCSettings) -> Tensor:
    """(B, T·N, D) tokens, (B, T, n_s) patch indices -> (B, T·n_s, D), frame 0's seeds first."""
    b, _, d = x_loc.shape
    t, p = settings.num_frames, settings.num_patches
    patches = x_loc.reshape(b, t, p + 1, d)[:, :, 1:].reshape(b, t * p, d)
    flat = (index + torch.arange(t, device=index.device).view(1, t, 1) * p).reshape(b, -1)
    return patches.gather(dim=1, index=flat.unsqueeze(-1).expand(-1, -1, d))


def tc_block(
    block: ResidualAttentionBlock,
    x_loc: Tensor,
    x_ctx: Tensor | None,
    bias: Tensor | None,
    settings: TCSettings,
    merge_r: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """One TC block (spec §2.1).

    Args:
        block: the CLIP vision block.
        x_loc: (B, T·N, D) frame tokens, frame-major (frame t at rows t·N ... t·N+N-1, CLS first).
        x_ctx: (B, K, D) context tokens of the previous block (keys/values only), or None for block 0.
        bias: (H, 1, 2) local-global bias table, or None.
        settings: shape constants.
        merge_r: tokens merged per round in this block.

    Returns:
        x_loc (B, T·N, D), the new context tokens (B, K, D) and their seed counts (B, K, 1).
    """
    tn = x_loc.shape[1]
    u = block.ln_1(x_loc if x_ctx is None else torch.cat([x_loc, x_ctx], dim=1))
    out, probs = _tc_attention(block, u[:, :tn], None if x_ctx is None else u[:, tn:], bias, settings.num_frames,
                               settings.attention)
    # residual on the frame rows only: the incoming context tokens are not carried forward
    x_loc = x_loc + block.ls_1(out)
    seeds = _gather_seeds(x_loc, _seed_index(probs, settings), settings)
    context, sizes, _ = summarize_seeds(seeds, settings.num_context, merge_r)
    y = torch.cat([x_loc, context], dim=1)
    y = y + block.ls_2(block.mlp(block.ln_2(y)))
    return y[:, :tn], y[:, tn:], sizes


def tc_vision_forward(
    visual: VisionTransformer,
    bias_tables: dict[int, Tensor],
    video: Tensor,
    settings: TCSettings,
    context_layers: tuple[int, ...],
) -> VisionOutput:
    """The TC vision tower.

    Args:
        visual: the CLIP vision tower (weights used as they are).
        bias_tables: block index -> (H, 1, 2) table (blocks without one get no bias).
        video: (B, T, 3, H, W) normalised.
        settings: shape constants.
        context_layers: 0-based blocks whose context tokens are returned (the VP inputs).

    Returns:
        Projected frame CLS tokens of the last block and the requested blocks' projected context tokens.
    """
    b, t = video.shape[:2]
    x = L.embed_patches(visual, video.flatten(0, 1))
    x = visual.ln_pre(x.reshape(b, t * x.shape[1], x.shape[2]))
    ctx, context, sizes = None, {}, {}
    for i, block in enumerate(visual.transformer.resblocks):
        x, ctx, size = tc_block(block, x, ctx, bias_tables.get(i), settings, settings.merge_r[i])
        if i in context_layers:
            context[i], sizes[i] = ctx, size
    cls = x.reshape(b, t, -1, x.shape[-1])[:, :, 0]
    # ln_post and proj also apply to the context tokens that feed VP (spec §12, paper vs code)
    frames = L.vision_head(visual, cls)
    context = {i: L.vision_head(visual, c) for i, c in context.items()}
    return VisionOutput(frames=frames, context=context, sizes=sizes)
