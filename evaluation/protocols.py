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

from core.eval.engine import SetResult
from core.eval.engine import evaluate_set as engine_evaluate_set
from core.eval.metrics import harmonic_mean, mean_std
from core.eval.sets import EvalSet
from core.eval.settings import EvalSettings
from core.eval.sources import LoadedModel, input_size_of
from core.eval.texts import resolve_class_texts

__all__ = ["Entry", "RunOptions", "SetResult", "evaluate_set", "run_protocol", "summarize"]

logger = logging.getLogger(__name__)


@dataclass
class RunOptions:
    """How to run the evaluation (not what is evaluated)."""

    device: str = "cpu"
    batch_size: int | None = None
    num_workers: int = 0
    decoder: str = "decord"  # core.data.decoders backend
    seed: int | None = None
    descriptions_file: str | None = None
    progress: bool = True
    dtype: str = "auto"
    rank: int = 0
    world_size: int = 1
    compile: bool = False


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


#: Videos per evaluation batch when neither the command line nor the run (its eval.batch_size) sets one.
DEFAULT_BATCH_SIZE = 8


def _batch_size(entry: Entry, options: RunOptions) -> int:
    run = entry.loaded.run_test
    return options.batch_size or (run.batch_size if run is not None and run.batch_size else DEFAULT_BATCH_SIZE)


def resolved_dtype(entry: Entry, options: RunOptions) -> torch.dtype:
    """The dtype ``entry`` is evaluated in (``core.eval.settings.resolve_eval_dtype``)."""
    from core.eval.settings import resolve_eval_dtype

    return resolve_eval_dtype(options.dtype, options.device, entry.loaded.run_test)


def evaluate_set(entry: Entry, eval_set: EvalSet, options: RunOptions) -> SetResult:
    """Run ``entry``'s model over ``eval_set`` with its settings and compute every metric (``core.eval.engine``).

    A model from a run keeps the run's evaluation batch size and seed unless ``options`` set them, so the
    numbers match its ``summary.json`` to the last digit.
    """
    model, settings = entry.loaded.model, entry.settings
    texts, text_note = resolve_class_texts(model, eval_set.class_names, settings.text, dataset=eval_set.dataset,
                                           split=eval_set.catalog_split, descriptions_file=options.descriptions_file,
                                           run_descriptions=entry.loaded.descriptions)
    batch_size = _batch_size(entry, options)
    if options.seed is not None:
        import dataclasses

        settings = dataclasses.replace(settings, seed=options.seed)
    return engine_evaluate_set(
        entry.notes.get("_compiled", model), eval_set, texts, settings, input_size=input_size_of(model),
        batch_size=batch_size, device=options.device, dtype=resolved_dtype(entry, options),
        num_workers=options.num_workers, rank=options.rank, world_size=options.world_size,
        decoder=options.decoder, keep_view_logits=True,
        progress=f"{entry.label}: {eval_set.name}" if options.progress else False, text_note=text_note)


class _Classifier(torch.nn.Module):
    """``model.classify`` as a module's ``forward``, so ``torch.compile`` compiles it (``--compile``)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.input_mean, self.input_std = model.input_mean, model.input_std

    def forward(self, video: torch.Tensor, class_texts: Sequence[str]) -> torch.Tensor:
        return self.model.classify(video, class_texts)


class _CompiledModel(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, compiled: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.compiled = model, compiled
        self.input_mean, self.input_std = model.input_mean, model.input_std

    def classify(self, video: torch.Tensor, class_texts: Sequence[str]) -> torch.Tensor:
        return self.compiled(video, class_texts)


def _compile(entry: Entry, groups: dict[str, list[EvalSet]], options: RunOptions, dtype: torch.dtype) -> None:
    """``torch.compile`` the entry's classifier and compile it now on one dummy batch (time in ``entry.notes``)."""
    from core.precision import compile_module

    model = entry.loaded.model
    first = next(s for sets in groups.values() for s in sets)
    size = input_size_of(model)
    batch = _batch_size(entry, options)
    video = torch.zeros(batch * entry.settings.views, entry.settings.frames, 3, size, size, device=options.device,
                        dtype=dtype)
    texts = model.class_texts(first.class_names, {n: n for n in first.class_names}
                              if entry.settings.text != "names" else None)

    def warmup(compiled: torch.nn.Module) -> None:
        with torch.inference_mode():
            compiled(video, texts)

    compiled, seconds = compile_module(_Classifier(model), warmup=warmup)
    entry.notes["_compiled"] = _CompiledModel(model, compiled)
    entry.notes["compile_s"] = seconds


def run_protocol(entries: Sequence[Entry], groups: dict[str, list[EvalSet]], options: RunOptions
                 ) -> dict[str, dict[str, SetResult]]:
    """Evaluate every entry on every set: ``{entry.label: {set.name: SetResult}}``.

    Each entry's ``notes`` get the precision it ran in, the evaluation time and the videos per second
    (steady state: with ``options.compile`` the compile time is measured apart, as ``compile_s``).
    """
    import time

    from core.precision import cast_parameters, dtype_name

    results: dict[str, dict[str, SetResult]] = {}
    for entry in entries:
        dtype = resolved_dtype(entry, options)
        cast_parameters(entry.loaded.model, dtype, options.device).eval()
        entry.notes["precision"] = dtype_name(dtype)
        if options.compile:
            _compile(entry, groups, options, dtype)
        results[entry.label] = {}
        start, videos = time.perf_counter(), 0
        for sets in groups.values():
            for eval_set in sets:
                result = evaluate_set(entry, eval_set, options)
                logger.info("%s on %s: top-1 %.2f top-5 %.2f (%d videos)", entry.label, eval_set.name, result.top1,
                            result.top5, result.num_videos)
                results[entry.label][eval_set.name] = result
                videos += result.num_videos
        seconds = time.perf_counter() - start
        entry.notes["eval_s"] = seconds
        entry.notes["videos_per_s"] = videos / seconds if seconds > 0 else math.nan
        entry.notes.pop("_compiled", None)
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
