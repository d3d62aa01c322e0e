"""``python -m evaluation compare``: several methods trained and evaluated on the same data, side by side.

    python -m evaluation compare                                  # every installed method, embedded data
    python -m evaluation compare --methods vifi,t2l,tcclip --runs-dir runs/compare
    python -m evaluation compare --untrained --model test         # no training: checks the pipeline in seconds

Each method is trained with ``core.train`` on the embedded synthetic dataset (its ``synthetic`` recipe, tiny
CLIP; ``--train-arg key=value`` is passed on to every run, e.g. ``--train-arg schedule.epochs=2``), or an
existing run in ``<runs-dir>/<method>`` is reused. Every model is then tested the same way: base-to-novel
on the synthetic ``val_base`` / ``val_novel`` splits, with the same frames (the run's), the same views
(``--views``, default 1x1) and each method's own view aggregation and class texts. The table gives
base / novel top-1 and their HM, the time-reversal pair accuracy (true class scored above its
time-reversed partner; chance 50 %, frame-averaging models sit there), trainable parameters, GFLOPs per
view and clips/s per view (``evaluation.profile``, on this machine). Plots: HM against GFLOPs and
against clips/s.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

import core
from evaluation.datasets import synthetic_sets
from evaluation.protocols import Entry, RunOptions, run_protocol, summarize
from evaluation.report import fmt, fmt_count, markdown_table, write_json, write_text
from evaluation.settings import resolve_settings
from evaluation.sources import LoadedModel, load_model

__all__ = ["compare_table", "main"]

logger = logging.getLogger("evaluation.compare")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="all", help="comma-separated methods (default: every installed one)")
    parser.add_argument("--runs-dir", default="runs/compare", help="where the runs live (<runs-dir>/<method>)")
    parser.add_argument("--retrain", action="store_true", help="train again even when <runs-dir>/<method> has a model")
    parser.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override passed to every core.train run, repeatable (e.g. schedule.epochs=2)")
    parser.add_argument("--untrained", action="store_true",
                        help="skip training: fresh builds on --model (a quick check of the pipeline)")
    parser.add_argument("--model", dest="clip_model", default="tiny", help="CLIP preset for --untrained (tiny)")
    parser.add_argument("--frames", type=int, default=8, help="frames for --untrained models (runs use their own)")
    parser.add_argument("--views", default="1x1", help="test views for every method (default 1x1)")
    parser.add_argument("--batch-size", type=int, default=16, help="evaluation batch (default 16)")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per method for clips/s (default 3)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--output-dir", help="report folder (default reports/compare-<time>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _methods(arg: str) -> list[str]:
    installed = list(core.list_methods())
    if arg == "all":
        return installed
    names = [m.strip() for m in arg.split(",") if m.strip()]
    unknown = [m for m in names if m not in installed]
    if unknown:
        raise ValueError(f"methods {unknown} are not installed; installed: {', '.join(installed)}")
    return names


def _train(method: str, run_dir: Path, train_args: Sequence[str], retrain: bool) -> LoadedModel:
    if retrain or not (run_dir / "model.pt").is_file():
        from core.train import main as train_main

        argv = ["--method", method, "--output-dir", str(run_dir)]
        for item in train_args:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--train-arg must look like key=value; got {item!r}")
            argv.append(f"{key}={value}")
        logger.info("training %s: python -m core.train %s", method, " ".join(argv))
        status = train_main(argv)
        if status != 0:
            raise RuntimeError(f"python -m core.train {' '.join(argv)} exited with status {status} (its message is "
                               f"above; fix the --train-arg values or the run directory {run_dir})")
    return load_model(run=run_dir)


def _profile(loaded: LoadedModel, frames: int, num_classes: int, device: str, iters: int) -> dict[str, Any]:
    from evaluation.profile import profile_model

    prof = profile_model(copy.deepcopy(loaded.model), method=loaded.method, model_name=loaded.clip_name or "?",
                         num_frames=frames, num_classes=num_classes, batch_size=1, iters=iters, warmup=1,
                         device=device)
    return asdict(prof)


def compare_table(rows: Sequence[dict[str, Any]]) -> str:
    """``Method | Trainable | GFLOPs/view | clips/s | Base | Novel | HM | Reversal (base) | Reversal (novel)``."""
    header = ["Method", "Trainable params", "GFLOPs/view", "clips/s/view", "Base top-1", "Novel top-1", "HM",
              "Reversal pairs (base)", "Reversal pairs (novel)"]
    body = [[r["method"], fmt_count(r["params_trainable"]), fmt(r["gflops"], 3), fmt(r["clips_per_s"]),
             fmt(r["base"]), fmt(r["novel"]), fmt(r["hm"]), fmt(r["reversal_base"]), fmt(r["reversal_novel"])]
            for r in rows]
    return markdown_table(header, body)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; returns ``{"rows", "paths"}``."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    parts = args.views.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise ValueError(f"--views must look like 1x1 or 4x3; got {args.views!r}")
    views = (int(parts[0]), int(parts[1]))
    groups = synthetic_sets("base-to-novel")
    options = RunOptions(device=device, batch_size=args.batch_size, progress=not args.quiet)
    rows, details = [], {}
    for method in _methods(args.methods):
        if args.untrained:
            plugin = core.load_method(method)
            # the method's options for the small CLIPs (e.g. fewer branch layers), as a training run would use
            method_options = (plugin.load_config("synthetic").get("method_options") or {}) \
                if "synthetic" in plugin.configs() else {}
            loaded = load_model(method=method, untrained=True, clip_model=args.clip_model, num_frames=args.frames,
                                options=method_options)
        else:
            loaded = _train(method, Path(args.runs_dir) / method, args.train_arg, args.retrain)
        trained_frames = ((loaded.config or {}).get("data") or {}).get("num_frames") or args.frames
        settings = resolve_settings(method, "base-to-novel", model_frames=loaded.model.num_frames,
                                    trained_frames=trained_frames,
                                    overrides={"views": views, "sampling": "segment_center" if views[0] == 1 else "segment"})
        entry = Entry(label=method, loaded=loaded, settings=settings, variant="final")
        results = run_protocol([entry], groups, options)
        summary = summarize("base-to-novel", [entry], groups, results)["per_split"][method]
        base_result, novel_result = results[method]["base val"], results[method]["novel val"]
        profile = _profile(loaded, settings.frames, len(groups["base"][0].class_names), device, args.iters)
        rows.append({"method": method, "source": loaded.source, "frames": settings.frames,
                     "views": f"{settings.clips}x{settings.crops}", "aggregation": settings.aggregation,
                     "base": summary["base"], "novel": summary["novel"], "hm": summary["hm"],
                     "reversal_base": base_result.reversal_pair_accuracy,
                     "reversal_novel": novel_result.reversal_pair_accuracy,
                     "params_total": profile["params_total"], "params_trainable": profile["params_trainable"],
                     "gflops": profile["gflops"], "clips_per_s": profile["clips_per_s"],
                     "peak_memory_mb": profile["peak_memory_mb"]})
        details[method] = {"results": {k: v.as_dict() for k, v in results[method].items()}, "profile": profile,
                           "settings": settings.as_dict()}
        loaded.model.to("cpu")
        del loaded, entry, results
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.output_dir or Path("reports") / f"compare-{stamp}")
    paths = {"json": write_json(out / "compare.json", {
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "protocol": "base-to-novel (synthetic)",
        "views": args.views, "device": device, "untrained": args.untrained, "rows": rows, "details": details})}
    lines = ["# compare: base-to-novel on the embedded synthetic dataset", "",
             f"{'Untrained builds on ' + args.clip_model if args.untrained else 'Runs in ' + args.runs_dir}; "
             f"views {args.views}; GFLOPs = multiply-adds per view (papers' convention); clips/s on {device}.",
             "Reversal pairs: % of clips whose class outscores its time-reversed partner (chance 50).", "",
             compare_table(rows)]
    paths["markdown"] = write_text(out / "compare.md", "\n".join(lines) + "\n")
    if not args.no_plots:
        from evaluation.plots import plot_tradeoff

        points = [{"name": r["method"], "gflops": r["gflops"], "clips_per_s": r["clips_per_s"], "hm": r["hm"]}
                  for r in rows]
        paths["hm_vs_gflops"] = plot_tradeoff(points, "gflops", out / "hm_vs_gflops.png", y="hm",
                                              xlabel="GFLOPs per view (MACs)", ylabel="HM of base/novel top-1 (%)",
                                              title="accuracy vs compute")
        paths["hm_vs_throughput"] = plot_tradeoff(points, "clips_per_s", out / "hm_vs_clips_per_s.png", y="hm",
                                                  xlabel=f"clips/s per view ({device})",
                                                  ylabel="HM of base/novel top-1 (%)", title="accuracy vs speed")
    print("\n".join(lines))
    print(f"report: {paths['json']} and {paths['markdown']}")
    if any(math.isnan(r["hm"]) for r in rows):
        print("warning: some methods have no HM (an evaluation set was empty)", file=sys.stderr)
    return {"rows": rows, "paths": paths}


if __name__ == "__main__":
    main()
