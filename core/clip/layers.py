"""The pieces of an open_clip CLIP that method packages reuse with the pretrained weights.

Methods do not monkey-patch open_clip: they call these functions on the backbone's own modules
(``visual.conv1``, ``class_embedding``, ``positional_embedding``, ``ln_pre``, the residual blocks'
``ln_1``/``attn``/``ln_2``/``mlp``, ``ln_post``, ``proj``; the text tower's ``token_embedding``,
``positional_embedding``, blocks, ``ln_final``, ``text_projection``) and insert their own steps between.
Everything is batch-first: tokens are (N, L, D). Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` with the weights of the block's
``nn.MultiheadAttention`` (:func:`sdpa`; in bf16 on CPU the explicit ``softmax(q kᵀ) v`` instead).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from open_clip.transformer import ResidualAttentionBlock, VisionTransformer
from torch import Tensor, nn

__all__ = [
    "attention",
    "block_forward",
    "embed_patches",
    "encode_frames",
    "encode_text",
    "encode_text_embeddings",
    "in_projections",
    "merge_heads",
    "sdpa",
    "split_heads",
    "token_embeddings",
    "vision_head",
]


def in_projections(attn: nn.MultiheadAttention, x: Tensor, kv: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Query, key and value projections of ``attn`` (packed ``in_proj`` sliced in q, k, v order).

    Args:
        attn: a batch-first ``nn.MultiheadAttention``.
        x: query input (N, Lq, D).
        kv: key/value input (N, Lk, Dk); ``x`` when omitted.

    Returns:
        q (N, Lq, D), k (N, Lk, D), v (N, Lk, D); for self-attention with a packed ``in_proj`` these are views
        of one (N, L, 3D) product.
    """
    if (kv is None or kv is x) and attn._qkv_same_embed_dim:
        # self-attention with the packed layout: one (D -> 3D) GEMM instead of three (same weights, same order)
        q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        return q, k, v
    kv = x if kv is None else kv
    bias = attn.in_proj_bias
    bq, bk, bv = bias.chunk(3) if bias is not None else (None, None, None)
    if attn._qkv_same_embed_dim:
        wq, wk, wv = attn.in_proj_weight.chunk(3)
    else:
        wq, wk, wv = attn.q_proj_weight, attn.k_proj_weight, attn.v_proj_weight
    return F.linear(x, wq, bq), F.linear(kv, wk, bk), F.linear(kv, wv, bv)


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(N, L, D) -> (N, H, L, D/H)."""
    n, length, width = x.shape
    return x.view(n, length, num_heads, width // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(N, H, L, Dh) -> (N, L, H*Dh)."""
    n, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(n, length, heads * head_dim)


def attention(
    attn: nn.MultiheadAttention,
    x: Tensor,
    kv: Tensor | None = None,
    *,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
) -> Tensor:
    """Multi-head attention with the weights of ``attn``, computed by scaled_dot_product_attention.

    Args:
        attn: the block's ``nn.MultiheadAttention`` (its weights are used; its forward is not).
        x: queries (N, Lq, D).
        kv: keys/values input (N, Lk, Dk); defaults to ``x`` (self-attention).
        attn_mask: additive float mask or boolean keep-mask broadcastable to (N, H, Lq, Lk).
        dropout_p: attention-probability dropout (apply only in training).

    Returns:
        (N, Lq, D), after ``out_proj``.
    """
    q, k, v = in_projections(attn, x, kv)
    heads = attn.num_heads
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        attn_mask = attn_mask.to(q.dtype)
    out = sdpa(split_heads(q, heads), split_heads(k, heads), split_heads(v, heads), attn_mask=attn_mask,
               dropout_p=dropout_p)
    return attn.out_proj(merge_heads(out))


def sdpa(q: Tensor, k: Tensor, v: Tensor, *, attn_mask: Tensor | None = None, dropout_p: float = 0.0) -> Tensor:
    """``scaled_dot_product_attention(q, k, v)`` on (N, H, L, Dh) heads, fastest form per device and dtype.

    In bf16 on CPU (without dropout) this is the explicit ``softmax((q · scale) kᵀ + mask) v`` with bf16
    matmuls: PyTorch's fused CPU kernel runs bf16 at about fp32 speed (~60 GFLOP/s per core here), the two
    batched matmuls at ~135 (measured at ViT-B/16 shapes, benchmarks/forward.py). The explicit form rounds the
    logits to bf16 (rms error ~0.003 against float64 on unit-scale inputs, ~0.0016 for the fused kernel),
    which the bf16/fp32 top-1 agreement test covers. Every other case calls the fused kernel.
    """
    if q.dtype != torch.bfloat16 or q.device.type != "cpu" or dropout_p > 0.0:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
    logits = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    if attn_mask is not None:
        if attn_mask.dtype == torch.bool:
            logits = logits.masked_fill(~attn_mask, float("-inf"))
        else:
            logits = logits + attn_mask
    return logits.softmax(dim=-1) @ v


def block_forward(block: ResidualAttentionBlock, x: Tensor, *, attn_mask: Tensor | None = None) -> Tensor:
    """One pre-LN CLIP block: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))`` (layer scales respected)."""
    x = x + block.ls_1(attention(block.attn, block.ln_1(x), attn_mask=attn_mask))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def embed_patches(visual: VisionTransformer, frames: Tensor) -> Tensor:
    """Patch tokens with CLS prepended and positional embedding added (before ``ln_pre``).

    Args:
        visual: the CLIP vision tower.
        frames: (N, 3, H, W) normalised images; H and W must equal the model's input size.

    Returns:
        (N, 1 + P, D), patches in row-major grid order, CLS first.
    """
    x = visual.conv1(frames)
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1)
    if x.shape[1] != visual.positional_embedding.shape[0]:
        raise ValueError(
            f"frames of {tuple(frames.shape[-2:])} px give {x.shape[1] - 1} patches but the CLIP positional table has "
            f"{visual.positional_embedding.shape[0] - 1}; resize frames to {visual.image_size}")
    return x + visual.positional_embedding.to(x.dtype)


def vision_head(visual: VisionTransformer, cls: Tensor) -> Tensor:
    """``ln_post`` then the projection: (..., D) -> (..., E)."""
    x = visual.ln_post(cls)
    return x @ visual.proj if visual.proj is not None else x


def encode_frames(clip: CLIP, video: Tensor) -> Tensor:
    """Plain CLIP image embeddings of every frame.

    Args:
        clip: the backbone.
        video: (B, T, 3, H, W) normalised.

    Returns:
        (B, T, E) un-normalised frame embeddings.
    """
    b, t = video.shape[:2]
    visual = clip.visual
    x = visual.ln_pre(embed_patches(visual, video.flatten(0, 1)))
    for block in visual.transformer.resblocks:
        x = block_forward(block, x)
    return vision_head(visual, x[:, 0]).view(b, t, -1)


def token_embeddings(clip: CLIP, tokens: Tensor) -> Tensor:
    """Token embedding lookup: (C, L) ids -> (C, L, W), no positional embedding."""
    return clip.token_embedding(tokens)


def _text_projection(clip: CLIP, x: Tensor) -> Tensor:
    proj = clip.text_projection
    if proj is None:
        return x
    return proj(x) if isinstance(proj, nn.Module) else x @ proj


def encode_text_embeddings(
    clip: CLIP,
    x: Tensor,
    tokens: Tensor,
    *,
    block_hook: Callable[[int, Tensor], Tensor] | None = None,
) -> Tensor:
    """Text tower from token embeddings, for learnable or video-conditioned prompts.

    Args:
        clip: the backbone.
        x: (C, L, W) token embeddings (learnable prompt vectors may replace some rows).
        tokens: (C, L) token ids; the EOT position is ``tokens.argmax(-1)`` (EOT has the largest id).
        block_hook: called as ``x = block_hook(i, x)`` right before text block ``i``.

    Returns:
        (C, E) un-normalised text embeddings.
    """
    length = x.shape[1]
    x = x + clip.positional_embedding[:length].to(x.dtype)
    mask = clip.attn_mask[:length, :length] if clip.attn_mask is not None else None
    for i, block in enumerate(clip.transformer.resblocks):
        if block_hook is not None:
            x = block_hook(i, x)
        x = block_forward(block, x, attn_mask=mask)
    x = clip.ln_final(x)
    pooled = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    return _text_projection(clip, pooled)


def encode_text(clip: CLIP, tokens: Tensor) -> Tensor:
    """Plain CLIP text embeddings: (C, L) ids -> (C, E), un-normalised."""
    return encode_text_embeddings(clip, token_embeddings(clip, tokens), tokens)
