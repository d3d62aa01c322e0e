"""The four evaluation protocols of the papers, as functions of models and evaluation sets.

=================  ===============================================================================
protocol           what is reported (each paper's layout, see :mod:`evaluation.report`)
=================  ===============================================================================
zero-shot          a model trained on K-400, evaluated on each target's official test splits
                   (UCF-101 and HMDB-51: 3 splits; K-600: the 3 splits of 160 of the 220 classes
                   outside K-400); top-1 and top-5 as mean ± std over the splits; optionally again
                   after WiSE-FT with zero-shot CLIP (TC-CLIP's "WE" rows)
few-shot           one model per K in {2, 4, 8, 16} (trained on the official K-shot list), evaluated
                   on the official validation split; top-1 per K
base-to-novel      one model per base training split s1-s3, evaluated on the base classes
                   (base_val) and on the novel classes (novel_val); base and novel top-1 averaged
                   over the splits and their harmonic mean (HM of the averages, as ViFi-CLIP and
                   TC-CLIP compute it; the mean of per-split HMs is also given)
fully-supervised   multi-view test (temporal clips × spatial crops, scores combined as the method's
                   code does); top-1 / top-5
=================  ===============================================================================

Every model is evaluated as the :class:`Entry` it was given ("final", "best", "K=4", "seed 2", "WE"),
so the final-epoch and the best-validation checkpoints are reported side by side when both exist.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from evaluation.datasets import EvalSet
from evaluation.engine import Predictions, run_classifier
from evaluation.metrics import harmonic_mean, mean_class_accuracy, mean_std, pair_accuracy, topk_accuracy
from evaluation.settings import EvalSettings
from evaluation.sources import LoadedModel, input_size_of
from evaluation.texts import resolve_class_texts

__all__ = ["Entry", "RunOptions", "SetResult", "evaluate_set", "run_protocol", "summarize"]

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to run the evaluation (not what is evaluated)."""

    device: str = "cpu"
    batch_size: int = 8
    num_workers: int = 0
    decoder: str = "decord"  # core.data.decoders backend
    seed: int = 0
    descriptions_file: str | None = None
    progress: bool = True
    dtype: torch.dtype | None = None
    rank: int = 0
    world_size: int = 1


@dataclass
class Entry:
    """One evaluated model.

    Attributes:
        label: its row/column name in the report (``final``, ``best``, ``K=4``, ``seed 2``, ``final + WE``).
        loaded: the model and its origin.
        settings: resolved test settings.
        key: the protocol key it stands for (shots for few-shot, the seed for base-to-novel).
        variant: ``final``, ``best`` or ``WE`` (WiSE-FT ensemble).
        notes: extra facts for the report (e.g. the fusion used, best validation logged in training).
    """

    label: str
    loaded: LoadedModel
    settings: EvalSettings
    key: str = ""
    variant: str = "final"
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass
class SetResult:
    """Metrics of one model on one evaluation set (``predictions`` stays out of the JSON report)."""

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

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("predictions", "class_names")}
        if self.predictions is not None and self.class_names:
            from evaluation.logits import per_class_dict

            out["per_class_top1"] = per_class_dict(self.predictions.predictions, self.predictions.labels,
                                                   self.class_names)
        return out


def evaluate_set(entry: Entry, eval_set: EvalSet, options: RunOptions) -> SetResult:
    """Run ``entry``'s model over ``eval_set`` with its settings and compute every metric."""
    from core.data.loader import make_video_loader  # imported here: decord/webdataset only when data is read

    model, settings = entry.loaded.model, entry.settings
    texts, text_note = resolve_class_texts(model, eval_set.class_names, settings.text, dataset=eval_set.dataset,
                                           split=eval_set.catalog_split, descriptions_file=options.descriptions_file,
                                           run_descriptions=entry.loaded.descriptions)
    loader = make_video_loader(
        eval_set.shards, train=False, num_frames=settings.frames, input_size=input_size_of(model),
        mean=model.input_mean, std=model.input_std, batch_size=options.batch_size, sampling=settings.sampling,
        views=(settings.clips, settings.crops), num_workers=options.num_workers, seed=options.seed,
        rank=options.rank, world_size=options.world_size, decoder=options.decoder)
    total = loader.num_batches
    preds = run_classifier(
        model, loader, texts, aggregation=settings.aggregation, label_map=eval_set.label_map, device=options.device,
        dtype=options.dtype, progress=f"{entry.label}: {eval_set.name}" if options.progress else False, total=total,
        keep_view_logits=True)  # saved beside the report (evaluation.logits): re-scoring needs no new forward
    stats = getattr(loader, "last_epoch_stats", {}) or {}
    skipped = int(stats.get("skipped_decode", 0)) + int(stats.get("skipped_read", 0))
    num_classes = len(eval_set.class_names)
    if len(preds) == 0:
        raise ValueError(f"no video of {eval_set.name} could be evaluated ({eval_set.shards}); {skipped} skipped")
    return SetResult(
        group=eval_set.group, split=eval_set.split, num_videos=len(preds), num_classes=num_classes,
        top1=topk_accuracy(preds.scores, preds.labels, 1), top5=topk_accuracy(preds.scores, preds.labels, 5),
        mean_class_top1=mean_class_accuracy(preds.predictions, preds.labels, num_classes),
        reversal_pair_accuracy=pair_accuracy(preds.scores, preds.labels, eval_set.reversal_pairs),
        text=text_note, skipped=skipped, predictions=preds, class_names=list(eval_set.class_names))


def run_protocol(entries: Sequence[Entry], groups: dict[str, list[EvalSet]], options: RunOptions
                 ) -> dict[str, dict[str, SetResult]]:
    """Evaluate every entry on every set: ``{entry.label: {set.name: SetResult}}``."""
    results: dict[str, dict[str, SetResult]] = {}
    for entry in entries:
        entry.loaded.model.to(options.device).eval()
        results[entry.label] = {}
        for sets in groups.values():
            for eval_set in sets:
                result = evaluate_set(entry, eval_set, options)
                logger.info("%s on %s: top-1 %.2f top-5 %.2f (%d videos)", entry.label, eval_set.name, result.top1,
                            result.top5, result.num_videos)
                results[entry.label][eval_set.name] = result
        entry.loaded.model.to("cpu")  # free the device for the next entry
    return results


def _mean_std_dict(values: Sequence[float]) -> dict[str, float | int]:
    clean = [v for v in values if not math.isnan(v)]
    if not clean:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    mean, std = mean_std(clean)
    return {"mean": mean, "std": std, "n": len(clean)}


def summarize(protocol: str, entries: Sequence[Entry], groups: dict[str, list[EvalSet]],
              results: dict[str, dict[str, SetResult]]) -> dict[str, Any]:
    """The protocol's headline numbers per entry (the JSON ``summary``)."""
    if protocol == "zero-shot":
        out: dict[str, Any] = {}
        for entry in entries:
            row: dict[str, Any] = {"targets": {}}
            for group, sets in groups.items():
                rs = [results[entry.label][s.name] for s in sets]
                row["targets"][group] = {"top1": _mean_std_dict([r.top1 for r in rs]),
                                         "top5": _mean_std_dict([r.top5 for r in rs]),
                                         "splits": [r.split for r in rs], "num_classes": [r.num_classes for r in rs]}
            means = [t["top1"]["mean"] for t in row["targets"].values()]
            row["all_top1"] = sum(means) / len(means) if means else math.nan
            out[entry.label] = row
        return out
    if protocol == "few-shot":
        ((group, sets),) = groups.items()
        return {entry.label: {"shots": entry.key, "top1": results[entry.label][sets[0].name].top1,
                              "top5": results[entry.label][sets[0].name].top5} for entry in entries}
    if protocol == "base-to-novel":
        base_set, novel_set = groups["base"][0], groups["novel"][0]
        per_split, variants = {}, {}
        for entry in entries:
            base, novel = results[entry.label][base_set.name].top1, results[entry.label][novel_set.name].top1
            per_split[entry.label] = {"split": entry.key, "variant": entry.variant, "base": base, "novel": novel,
                                      "hm": harmonic_mean(base, novel)}
            variants.setdefault(entry.variant, []).append(per_split[entry.label])
        averaged = {}
        for variant, rows in variants.items():
            base = _mean_std_dict([r["base"] for r in rows])
            novel = _mean_std_dict([r["novel"] for r in rows])
            averaged[variant] = {"base": base, "novel": novel, "hm": harmonic_mean(base["mean"], novel["mean"]),
                                 "mean_of_split_hm": sum(r["hm"] for r in rows) / len(rows), "splits": len(rows)}
        return {"per_split": per_split, "average": averaged}
    if protocol == "fully-supervised":
        ((group, sets),) = groups.items()
        return {entry.label: {"top1": results[entry.label][sets[0].name].top1,
                              "top5": results[entry.label][sets[0].name].top5,
                              "mean_class_top1": results[entry.label][sets[0].name].mean_class_top1,
                              "frames": entry.settings.frames,
                              "views": f"{entry.settings.clips}x{entry.settings.crops}"} for entry in entries}
    raise ValueError(f"unknown protocol {protocol!r}")
