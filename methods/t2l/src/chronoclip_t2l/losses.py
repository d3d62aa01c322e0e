"""T2L's training objectives as the official code computes them (spec section 5).

* :func:`inbatch_kl_loss`: ActionCLIP's in-batch video<->text KL ("KLLoss") in both directions, targets
  ``softmax(10 * G)`` with ``G[i, j] = [y_i == y_j]`` so samples of the same class share the target mass.
* :func:`tfd_loss`: Temporal Feature Diversity, ``1 / (1 + C + V)`` over the per-frame embeddings.

Both gather their inputs across ranks (with gradient), so N ranks compute exactly the loss of one
process over the global batch, as the official single-process ``DataParallel`` training does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from core.objectives import gather_with_grad

__all__ = ["TARGET_TEMPERATURE", "inbatch_kl_loss", "inbatch_targets", "tfd_loss"]

# ActionCLIP's KLLoss sharpens the 0/1 same-class matrix with this factor before its softmax.
TARGET_TEMPERATURE = 10.0


def inbatch_targets(labels: Tensor) -> Tensor:
    """Soft targets ``softmax(10 * G)`` row-wise, ``G[i, j] = 1`` where samples i and j share a class.

    Args:
        labels: (B,) class ids.

    Returns:
        (B, B) float targets; each row sums to 1.
    """
    same = (labels[:, None] == labels[None, :]).float()
    return F.softmax(TARGET_TEMPERATURE * same, dim=1)


def _kl_rows(logits: Tensor, target: Tensor) -> Tensor:
    # PyTorch KLDivLoss(reduction="mean") averages over all B*B entries; KLLoss multiplies by B again,
    # so this is the per-row KL summed over columns and averaged over rows.
    return (target * (target.log() - F.log_softmax(logits, dim=1))).sum(dim=1).mean()


def inbatch_kl_loss(
    video: Tensor,
    text: Tensor,
    labels: Tensor,
    logit_scale: Tensor | float,
    *,
    gather: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Symmetric in-batch KL between video-text similarities and same-class targets.

    Args:
        video: (B, E) video embeddings, un-normalised.
        text: (B, E) embeddings of each sample's class text (row i = text of ``labels[i]``), un-normalised.
        labels: (B,) class ids.
        logit_scale: the similarity multiplier, already exponentiated (T2L: frozen ``exp(logit_scale)``).
            The loss is computed in fp32 whatever the dtype of the embeddings.
        gather: concatenate all three inputs across ranks first (gradient kept for the local rows).

    Returns:
        ``(loss_v2t, loss_t2v, logits)``: the two KL terms (the official total uses their mean) and the
        (B_global, B_global) video-to-text logits ``scale * cos``.
    """
    if gather:
        video, text, labels = gather_with_grad(video), gather_with_grad(text), gather_with_grad(labels)
    # fp32 whatever the model runs in (bf16 training): log-softmax and log-targets need the precision.
    logits = logit_scale * F.normalize(video.float(), dim=-1) @ F.normalize(text.float(), dim=-1).t()
    target = inbatch_targets(labels)
    # G is symmetric, so the text-to-video direction uses the same targets on the transposed logits.
    return _kl_rows(logits, target), _kl_rows(logits.t(), target), logits


def tfd_loss(frames: Tensor, *, gather: bool = True) -> Tensor:
    """Temporal Feature Diversity loss of the official ``Motion_loss`` (delta = 1).

    ``C`` = mean over (video, frame, channel) of ``|next(t) - prev(t)| / 2`` with replicated ends
    (``prev(0) = F_0``, ``next(T-1) = F_{T-1}``); ``V`` = mean over (video, channel) of the unbiased
    variance over frames. Loss ``1 / (1 + C + V)``.

    Args:
        frames: (B, T, E) per-frame embeddings (``ln_post`` + ``proj`` output, un-normalised).
        gather: concatenate over ranks first, so C and V are global-batch means.

    Returns:
        Scalar loss.
    """
    if frames.shape[1] < 2:
        raise ValueError(f"TFD needs at least 2 frames per clip, got {frames.shape[1]}")
    if gather:
        frames = gather_with_grad(frames)
    frames = frames.float()
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    nxt = torch.cat([frames[:, 1:], frames[:, -1:]], dim=1)
    central = ((nxt - prev).abs() / 2).mean()
    variance = frames.var(dim=1).mean()
    return 1.0 / (1.0 + central + variance)
