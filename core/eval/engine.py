"""The evaluation engine: run a model over evaluation batches, one scored result per video.

Every number chronoclip prints comes out of :func:`run_classifier` and the metrics of
:mod:`core.eval.metrics`: the trainer's validation and ``summary.json``, every protocol of
``python -m evaluation``, ``compare`` and ``core.predict``.

Per batch: every view of every video goes through ``model.classify`` as one batch of B·V clips (videos
are independent in eval mode), the (B, V, C) logits are combined per video by the method's view
aggregation (:data:`core.eval.metrics.AGGREGATIONS`). The loop is local to a rank (ranks may see
different numbers of batches, see ``core.data.loader``); when ``torch.distributed`` is initialised the
per-video results are gathered once at the end and de-duplicated by sample key, so the accuracy is over
every video exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from core.eval.metrics import aggregate_views, mean_class_accuracy, pair_accuracy, per_class_accuracy, topk_accuracy
from core.eval.sets import EvalSet
from core.eval.settings import EvalSettings
from core.method import VideoModel

__all__ = ["Predictions", "SetResult", "classify_views", "evaluate_set", "run_classifier"]


@dataclass
class Predictions:
    """Per-video results of one evaluation.

    Attributes:
        scores: (N, C) aggregated scores (probabilities for the softmax aggregations).
        labels: (N,) true class ids in the evaluated class list.
        keys: the N sample keys.
        aggregation: the view aggregation used.
        num_views: views per video.
        view_logits: (N, V, C) per-view logits when kept, else ``None``.
    """

    scores: Tensor
    labels: Tensor
    keys: list[str]
    aggregation: str
    num_views: int
    view_logits: Tensor | None = None

    def accuracy(self, k: int = 1) -> float:
        """Top-k accuracy in percent (the tie rule of :func:`core.eval.metrics.topk_credit`)."""
        return topk_accuracy(self.scores, self.labels, k)

    def pair_accuracy(self, pairs: Sequence[tuple[int, int]]) -> float:
        """Time-reversal pair accuracy in percent (:func:`core.eval.metrics.pair_accuracy`)."""
        return pair_accuracy(self.scores, self.labels, pairs)

    @property
    def predictions(self) -> Tensor:
        """(N,) top-1 class ids (argmax; for the confusion matrix)."""
        return self.scores.argmax(dim=1)

    def __len__(self) -> int:
        return len(self.keys)


def classify_views(model: VideoModel, video: Tensor, class_texts: Sequence[str]) -> Tensor:
    """Logits of every view: ``video`` (B, V, T, 3, H, W) or (B, T, 3, H, W) -> (B, V, C).

    All views go through ``classify`` as one batch of B·V clips (videos are independent in eval mode).
    """
    if video.ndim == 5:
        video = video.unsqueeze(1)
    if video.ndim != 6:
        raise ValueError(f"video must be (B, T, 3, H, W) or (B, V, T, 3, H, W); got {tuple(video.shape)}")
    b, v = video.shape[:2]
    logits = model.classify(video.flatten(0, 1), class_texts)
    return logits.reshape(b, v, -1)


def _gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def run_classifier(
    model: VideoModel,
    batches: Iterable[Mapping[str, Any]],
    class_texts: Sequence[str],
    *,
    aggregation: str = "softmax_sum",
    label_map: Mapping[int, int] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    keep_view_logits: bool = False,
    progress: bool | str = False,
    total: int | None = None,
) -> Predictions:
    """Classify every video of ``batches`` against ``class_texts``.

    Args:
        model: eval-mode model (moved to ``device`` by the caller).
        batches: dicts with ``video`` (B, [V,] T, 3, H, W), ``label`` (B,), ``key`` (B keys).
        class_texts: the C texts of the evaluated class list, already in the method's form.
        aggregation: view aggregation (see :data:`core.eval.metrics.AGGREGATIONS`).
        label_map: keep only samples whose label is a key and relabel them with the value (evaluating a
            subset of the classes a shard set holds, e.g. the novel half); None keeps every sample.
        device, dtype: where and in which dtype clips are fed.
        keep_view_logits: also return the (N, V, C) per-view logits.
        progress: show a tqdm bar (a string is used as its description).
        total: batches expected, for the progress bar.

    Returns:
        :class:`Predictions` over every video seen on every rank.
    """
    device = torch.device(device)
    texts = list(class_texts)
    scores, labels, keys, views = [], [], [], []
    num_views = 0
    bar = tqdm(batches, total=total, desc=progress if isinstance(progress, str) else "eval", disable=not progress,
               unit="batch", leave=False)
    with torch.inference_mode():
        for batch in bar:
            video, label, key = batch["video"], batch["label"], list(batch["key"])
            if label_map is not None:
                keep = [i for i, y in enumerate(label.tolist()) if y in label_map]
                if not keep:
                    continue
                video = video[keep]
                label = torch.tensor([label_map[int(label[i])] for i in keep], dtype=torch.long)
                key = [key[i] for i in keep]
            video = video.to(device=device, dtype=dtype or video.dtype, non_blocking=True)
            logits = classify_views(model, video, texts).float().cpu()
            num_views = logits.shape[1]
            if label.numel() and int(label.max()) >= logits.shape[2]:
                raise ValueError(f"label {int(label.max())} is outside the {logits.shape[2]} evaluated classes; the "
                                 f"shards' labels must index the class list of this split")
            scores.append(aggregate_views(logits, aggregation))
            labels.append(label.long().cpu())
            keys.extend(key)
            if keep_view_logits:
                views.append(logits)
    local = {
        "scores": torch.cat(scores) if scores else torch.zeros(0, len(texts)),
        "labels": torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long),
        "keys": keys,
        "views": torch.cat(views) if views else None,
        "num_views": num_views,
    }
    parts = _gather(local)
    if len(parts) > 1:
        seen: dict[str, int] = {}
        rows_s, rows_l, rows_v, out_keys = [], [], [], []
        for part in parts:
            for i, k in enumerate(part["keys"]):
                if k in seen:
                    continue
                seen[k] = len(out_keys)
                out_keys.append(k)
                rows_s.append(part["scores"][i])
                rows_l.append(part["labels"][i])
                if part["views"] is not None:
                    rows_v.append(part["views"][i])
        local = {"scores": torch.stack(rows_s) if rows_s else local["scores"][:0],
                 "labels": torch.stack(rows_l) if rows_l else local["labels"][:0], "keys": out_keys,
                 "views": torch.stack(rows_v) if rows_v else None,
                 "num_views": max(p["num_views"] for p in parts)}
    return Predictions(scores=local["scores"], labels=local["labels"], keys=local["keys"], aggregation=aggregation,
                       num_views=local["num_views"], view_logits=local["views"] if keep_view_logits else None)


@dataclass
class SetResult:
    """Every metric of one model on one evaluation set, in percent (``predictions`` stays out of JSON reports)."""

    group: str
    split: str
    num_videos: int
    num_classes: int
    top1: float
    top5: float
    mean_class_top1: float
    reversal_pair_accuracy: float
    text: str
    skipped: int
    predictions: Predictions | None = None
    class_names: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.group} {self.split}".strip()

    def as_dict(self) -> dict[str, Any]:
        """The metrics, plus ``per_class_top1`` (class name -> percent, None without videos) when known."""
        out = {k: v for k, v in vars(self).items() if k not in ("predictions", "class_names")}
        if self.predictions is not None and self.class_names:
            values = per_class_accuracy(self.predictions.scores, self.predictions.labels, len(self.class_names))
            out["per_class_top1"] = {name: None if math.isnan(v) else round(float(v), 4)
                                     for name, v in zip(self.class_names, values.tolist())}
        return out


def evaluate_set(model: VideoModel, eval_set: EvalSet, class_texts: Sequence[str], settings: EvalSettings, *,
                 input_size: int, batch_size: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype | None = None, seed: int = 0, num_workers: int = 0, rank: int = 0,
                 world_size: int = 1, timeout: float | None = 30.0, progress: bool | str = False,
                 text_note: str = "", require_videos: bool = True, decoder: str = "decord",
                 keep_view_logits: bool = False) -> SetResult:
    """Test ``model`` on ``eval_set`` as ``settings`` say and compute every metric (the one code path behind
    the trainer's validation, the protocols and ``compare``).

    ``seed`` draws the random multi-view clips (``settings.seed``, when set, wins: a run's own seed).
    ``decoder`` is the video backend (``core.data.decoders``); ``keep_view_logits`` keeps the (N, V, C)
    per-view logits in ``predictions`` (saved beside reports, so re-scoring needs no new forward pass).

    Raises:
        ValueError: no video of the set could be evaluated (with ``require_videos``).
    """
    from core.data.loader import make_video_loader  # decord/webdataset only when data is read

    device = torch.device(device)
    loader = make_video_loader(
        eval_set.shards, train=False, num_frames=settings.frames, input_size=input_size, mean=model.input_mean,
        std=model.input_std, batch_size=batch_size, sampling=settings.sampling, views=(settings.clips, settings.crops),
        num_workers=num_workers, seed=settings.seed if settings.seed is not None else seed, rank=rank,
        world_size=world_size, timeout=timeout, pin_memory=device.type == "cuda", decoder=decoder)
    was_training = model.training
    model.eval()
    try:
        preds = run_classifier(model, loader, class_texts, aggregation=settings.aggregation,
                               label_map=eval_set.label_map, device=device, dtype=dtype, progress=progress,
                               total=loader.num_batches, keep_view_logits=keep_view_logits)
    finally:
        model.train(was_training)
    stats = getattr(loader, "last_epoch_stats", {}) or {}
    skipped = int(stats.get("skipped_decode", 0)) + int(stats.get("skipped_read", 0))
    if len(preds) == 0 and require_videos:
        raise ValueError(f"no video of {eval_set.name} could be evaluated ({eval_set.shards}); {skipped} skipped")
    num_classes = len(eval_set.class_names)
    return SetResult(
        group=eval_set.group, split=eval_set.split, num_videos=len(preds), num_classes=num_classes,
        top1=topk_accuracy(preds.scores, preds.labels, 1), top5=topk_accuracy(preds.scores, preds.labels, 5),
        mean_class_top1=mean_class_accuracy(preds.scores, preds.labels, num_classes),
        reversal_pair_accuracy=pair_accuracy(preds.scores, preds.labels, eval_set.reversal_pairs),
        text=text_note, skipped=skipped, predictions=preds, class_names=list(eval_set.class_names))
