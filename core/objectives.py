"""Contrastive objectives shared by the methods.

* video-to-class cross-entropy against class text embeddings (hard labels with label smoothing, or soft
  targets from mixup/cutmix);
* symmetric video-text InfoNCE with embeddings gathered across ranks (retrieval, CLIP pretraining).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.distributed import gather_with_grad

__all__ = ["classification_loss", "cosine_logits", "gather_with_grad", "head_precision", "soft_target_cross_entropy",
           "symmetric_infonce"]


def head_precision(x: Tensor) -> Tensor:
    """``x`` in at least fp32, for the similarity head (normalise, cosine, scale) of every method.

    Encoders may run in bf16 / fp16; their embeddings are upcast here (fp32 and fp64 pass unchanged). In bf16
    (8-bit mantissa) a logit of 100 x cos ~ 30 is rounded to steps of 0.125, which ties or swaps classes whose
    fp32 logits are closer than that; the head costs B x C x E multiply-adds, nothing beside the encoders.
    """
    return x.to(torch.promote_types(x.dtype, torch.float32))


def cosine_logits(video: Tensor, text: Tensor, scale: Tensor | float) -> Tensor:
    """``scale * cos(video_i, text_j)``: (B, E) x (C, E) -> (B, C), in at least fp32 (:func:`head_precision`)."""
    return scale * F.normalize(head_precision(video), dim=-1) @ F.normalize(head_precision(text), dim=-1).t()


def soft_target_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """``mean_b sum_c -target[b, c] * log_softmax(logits[b])_c`` (timm's SoftTargetCrossEntropy)."""
    return torch.sum(-target * F.log_softmax(logits, dim=-1), dim=-1).mean()


def classification_loss(
    logits: Tensor,
    label: Tensor | None = None,
    target: Tensor | None = None,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Video-to-class cross-entropy.

    Args:
        logits: (B, C) scaled similarities to the class texts.
        label: (B,) class ids; used when ``target`` is None, smoothed by ``label_smoothing``
            (off-value ``eps / C``, on-value ``1 - eps + eps / C``).
        target: (B, C) soft targets (mixup/cutmix, already smoothed); takes precedence over ``label``.
        label_smoothing: epsilon for hard labels.

    Returns:
        Scalar mean over the batch.
    """
    if target is not None:
        return soft_target_cross_entropy(logits, target)
    if label is None:
        raise ValueError("classification_loss needs label or target")
    return F.cross_entropy(logits, label, label_smoothing=label_smoothing)


def symmetric_infonce(a: Tensor, b: Tensor, logit_scale: Tensor | float, *, gather: bool = True) -> Tensor:
    """CLIP's symmetric InfoNCE over matched pairs ``(a_i, b_i)``.

    Args:
        a: (B, E) embeddings (e.g. videos), un-normalised.
        b: (B, E) embeddings (e.g. captions), row i matches ``a`` row i.
        logit_scale: multiplier of the cosine similarities (already exponentiated).
        gather: gather both sides across ranks with gradient, so every rank computes the loss over the
            global batch (identical to one process over that batch).

    Returns:
        ``(CE(S, diag) + CE(S^T, diag)) / 2`` with ``S = scale * cos(a, b)``.
    """
    if gather:
        a, b = gather_with_grad(a), gather_with_grad(b)
    logits = cosine_logits(a, b, logit_scale)
    labels = torch.arange(logits.shape[0], device=logits.device)
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.t(), labels)) / 2
