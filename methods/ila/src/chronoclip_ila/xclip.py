"""The X-CLIP parts the official ILA model runs after its visual encoder.

* :class:`MultiframeIntegrationTransformer` (``mit``): frame embeddings -> video embedding (spec §3.4); with
  ``num_classes`` it also carries the SSv2 branch's ``classify_head`` (spec §11).
* :class:`VideoSpecificPrompt` (``prompts_generator``): class-text features attend to the clip's patch tokens
  (spec §3.6).

Attribute names follow the official ``models/mit.py`` and ``models/prompt.py`` so checkpoints map 1:1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock
from torch import Tensor, nn

from core.clip import layers as L

__all__ = ["MultiframeIntegrationTransformer", "QuickGELU", "VideoSpecificPrompt"]

HEAD_WIDTH = 64  # every head count is width // 64 (trap 18 of the spec)


class QuickGELU(nn.Module):
    """``x * sigmoid(1.702 x)``, the activation of OpenAI's CLIP and of X-CLIP's heads."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def _trunc_normal_linears(module: nn.Module) -> None:
    """X-CLIP's init: every Linear (MHA ``out_proj`` included) trunc-normal std 0.02, bias 0; LayerNorm 1, 0."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class MultiframeIntegrationTransformer(nn.Module):
    """X-CLIP's MIT: ``mean_t(f + Blocks(f + pos))`` over the T frame embeddings (residual without ``pos``).

    Args:
        num_frames: ``T`` (baked into ``positional_embedding`` (1, T, E)).
        embed_dim: ``E``.
        layers: pre-LN QuickGELU blocks (official ILA: 1).
        num_classes: when given, the SSv2 head ``classify_head = LayerNorm -> Dropout(0.5) -> Linear`` applied to
            the L2-normalised video embedding by :meth:`classify_head_logits`.
    """

    def __init__(self, num_frames: int, embed_dim: int, layers: int = 1, num_classes: int | None = None) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.empty(1, num_frames, embed_dim))
        self.resblocks = nn.ModuleList(
            ResidualAttentionBlock(embed_dim, embed_dim // HEAD_WIDTH, act_layer=QuickGELU, norm_layer=nn.LayerNorm)
            for _ in range(layers))
        self.classify_head = None
        if num_classes is not None:
            self.classify_head = nn.Sequential(nn.LayerNorm(embed_dim), nn.Dropout(0.5), nn.Linear(embed_dim, num_classes))
        nn.init.trunc_normal_(self.positional_embedding, std=0.02)
        _trunc_normal_linears(self)

    def forward(self, frames: Tensor) -> Tensor:
        """(B, T, E) frame embeddings -> (B, E) video embedding (un-normalised)."""
        x = frames + self.positional_embedding.to(frames.dtype)
        for block in self.resblocks:
            x = L.block_forward(block, x)
        return (x + frames).mean(dim=1)

    def classify_head_logits(self, video: Tensor) -> Tensor:
        """SSv2 logits (B, K): the head on the L2-normalised (no epsilon, as the official code) video embedding."""
        if self.classify_head is None:
            raise ValueError("this MIT has no classify_head; build the ILA model with variant='ssv2'")
        return self.classify_head(video / video.norm(dim=-1, keepdim=True))


class _CrossAttention(nn.Module):
    """Bias-free q/k/v projections, softmax over the keys, ``proj`` with bias (official ``MulitHeadAttention``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, q: Tensor, kv: Tensor) -> Tensor:
        heads = self.num_heads
        out = F.scaled_dot_product_attention(
            L.split_heads(self.q_proj(q), heads), L.split_heads(self.k_proj(kv), heads),
            L.split_heads(self.v_proj(kv), heads))
        return self.proj(L.merge_heads(out))


class _PromptGeneratorLayer(nn.Module):
    """``c = c + proj(MHA(norm1(c), V, V))``; ``c = c + mlp(norm3(c))`` (keys ``mlp.0``, ``mlp.3``)."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.cross_attn = _CrossAttention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        # Dropout(0) at index 2 keeps the official indices 0 and 3 of the two Linears
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), QuickGELU(), nn.Dropout(0.0), nn.Linear(4 * dim, dim))

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        text = text + self.cross_attn(self.norm1(text), visual)
        return text + self.mlp(self.norm3(text))


class VideoSpecificPrompt(nn.Module):
    """X-CLIP's video-specific prompt generator: ``alpha * layers(text, norm(visual))``.

    The caller adds the result to the text features, so the final text is ``c + alpha * c_L`` where ``c_L``
    still carries the residual stream (trap 15 of the spec).

    Args:
        embed_dim: ``E``.
        layers: decoder layers (official: 2).
        alpha: initial value of the per-channel output scale (official: 0.1).
    """

    def __init__(self, embed_dim: int, layers: int = 2, alpha: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder = nn.ModuleList(_PromptGeneratorLayer(embed_dim, embed_dim // HEAD_WIDTH) for _ in range(layers))
        self.alpha = nn.Parameter(torch.full((embed_dim,), alpha))
        _trunc_normal_linears(self)

    def forward(self, text: Tensor, visual: Tensor) -> Tensor:
        """``text`` (B, K, E) class features per clip, ``visual`` (B, N, E) patch features -> (B, K, E)."""
        visual = self.norm(visual)
        for layer in self.decoder:
            text = layer(text, visual)
        return self.alpha * text
