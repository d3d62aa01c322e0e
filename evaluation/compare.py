"""``python -m evaluation compare``: several methods trained and evaluated on the same data, side by side.

    python -m evaluation compare                                  # every installed method, embedded data
    python -m evaluation compare --methods vifi,t2l,tcclip --runs-dir runs/compare
    python -m evaluation compare --untrained --model test         # no training: checks the pipeline in seconds

Each method is trained by ``python -m core.train`` in a subprocess on the embedded synthetic dataset (its
``synthetic`` recipe, tiny CLIP; ``--train-arg key=value`` is passed on to every run, e.g.
``--train-arg schedule.epochs=2``), or an existing run in ``<runs-dir>/<method>`` is reused. Every model is
then tested under base-to-novel on the synthetic ``val_base`` / ``val_novel`` splits with ITS OWN test
settings, exactly as ``python -m evaluation base-to-novel --run <runs-dir>/<method>`` tests it (the
precedence of ``core.eval.settings``): a run's own frames, views, frame sampler and seed (what its
``summary.json`` used, so the three agree to the last digit), the method's view aggregation and class-text
mode from its ``evaluation.yaml``; ``--untrained`` builds take the method's ``evaluation.yaml`` alone.
``--views`` / ``--frames`` / ``--sampling`` override every method alike, and the report says which
settings each row used. The table gives base / novel top-1 and their HM, the time-reversal pair accuracy
(true class scored above its time-reversed partner; chance 50 %, frame-averaging models sit there),
trainable parameters, GFLOPs per view and clips/s per view (``evaluation.profile``, on this machine).
Plots: HM against GFLOPs and against clips/s.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as _dt
import logging
import math
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

import core
from core.cli import ArgumentParser, UserError, call_cli, check_device, check_range
from core.eval.settings import parse_views, resolve_eval_dtype, resolve_settings
from core.eval.sources import LoadedModel, load_model
from core.precision import DTYPES
from evaluation.datasets import synthetic_sets
from evaluation.protocols import Entry, RunOptions, run_protocol, summarize
from evaluation.report import fmt, fmt_count, markdown_table, write_json, write_text

__all__ = ["compare_table", "main"]

logger = logging.getLogger("evaluation.compare")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m evaluation compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="all", help="comma-separated methods (default: every installed one)")
    parser.add_argument("--runs-dir", default="runs/compare", help="where the runs live (<runs-dir>/<method>)")
    parser.add_argument("--retrain", action="store_true", help="train again even when <runs-dir>/<method> has a model")
    parser.add_argument("--train-arg", action="append", default=[], metavar="KEY=VALUE",
                        help="override passed to every core.train run, repeatable (e.g. schedule.epochs=2)")
    parser.add_argument("--untrained", action="store_true",
                        help="skip training: fresh builds on --model (a quick check of the pipeline)")
    parser.add_argument("--model", dest="clip_model", default="tiny", help="CLIP preset for --untrained (tiny)")
    parser.add_argument("--frames", type=int,
                        help="frames per clip for every method whose weights do not fix it (default: each method's own)")
    parser.add_argument("--views", help="test views for every method, e.g. 1x1 (default: each method's own)")
    parser.add_argument("--sampling", help="frame sampler for every method (default: each method's own)")
    parser.add_argument("--batch-size", type=int, help="evaluation batch (default: a run's eval.batch_size, else 8)")
    parser.add_argument("--dtype", choices=DTYPES, default="auto",
                        help="precision (default auto: a run's own validation precision on this device, else bf16 "
                             "where the hardware has it, fp32 elsewhere)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile each classifier (compile time reported apart from steady-state speed)")
    parser.add_argument("--iters", type=int, default=3, help="timed calls per method for clips/s (default 3)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--output-dir", help="report folder (default reports/compare-<time>)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """Bad input is an error before anything trains or loads (one line, exit 2: ``core.cli``)."""
    from core.data.sampling import get_sampler

    check_range("--frames", args.frames, minimum=1)
    check_range("--batch-size", args.batch_size, minimum=1)
    check_range("--iters", args.iters, minimum=1)
    if args.views:
        parse_views(args.views)
    if args.sampling:
        get_sampler(args.sampling)
    check_device("--device", args.device)
    _methods(args.methods)
    bad = [item for item in args.train_arg if not item.partition("=")[0] or "=" not in item]
    if bad:
        raise UserError(f"--train-arg must look like key=value (e.g. schedule.epochs=2); got {bad[0]!r}")
    for name, value in (("--runs-dir", args.runs_dir), ("--output-dir", args.output_dir)):
        if value and Path(value).exists() and not Path(value).is_dir():
            raise UserError(f"{name} {value} is a file; pick a folder name")


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
    """``<run_dir>``'s model, trained first by ``python -m core.train`` in a subprocess when missing (or ``retrain``)."""
    if retrain or not (run_dir / "model.pt").is_file():
        argv = ["--method", method, "--output-dir", str(run_dir)]
        for item in train_args:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--train-arg must look like key=value; got {item!r}")
            argv.append(f"{key}={value}")
        command = [sys.executable, "-m", "core.train", *argv]
        logger.info("training %s: python -m core.train %s", method, " ".join(argv))
        status = subprocess.run(command, check=False).returncode
        if status != 0:
            raise RuntimeError(f"python -m core.train {' '.join(argv)} exited with status {status} (its message is "
                               f"above; fix the --train-arg values or the run directory {run_dir})")
    return load_model(run=run_dir)


def _profile(loaded: LoadedModel, frames: int, num_classes: int, device: str, iters: int,
             dtype: torch.dtype) -> dict[str, Any]:
    from evaluation.profile import profile_model

    prof = profile_model(copy.deepcopy(loaded.model), method=loaded.method, model_name=loaded.clip_name or "?",
                         num_frames=frames, num_classes=num_classes, batch_size=1, iters=iters, warmup=1,
                         device=device, dtype=dtype)
    return asdict(prof)


def compare_table(rows: Sequence[dict[str, Any]]) -> str:
    """``Method | Trainable | GFLOPs/view | clips/s | Base | Novel | HM | Reversal (base) | Reversal (novel) | Test``."""
    header = ["Method", "Trainable params", "GFLOPs/view", "clips/s/view", "Base top-1", "Novel top-1", "HM",
              "Reversal pairs (base)", "Reversal pairs (novel)", "Test settings"]
    body = [[r["method"], fmt_count(r["params_trainable"]), fmt(r["gflops"], 3), fmt(r["clips_per_s"]),
             fmt(r["base"]), fmt(r["novel"]), fmt(r["hm"]), fmt(r["reversal_base"]), fmt(r["reversal_novel"]),
             f"{r['frames']} frames, {r['views']} views, {r['sampling']}, {r['aggregation']}, {r['text']}, "
             f"{r['precision']}"]
            for r in rows]
    return markdown_table(header, body)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; returns ``{"rows", "paths"}``. Bad input: one line on stderr and ``SystemExit(2)``."""
    return call_cli(_main, argv, prog="python -m evaluation compare")


def _main(argv: Sequence[str]) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    _check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    overrides = {"views": parse_views(args.views) if args.views else None, "frames": args.frames,
                 "sampling": args.sampling}
    groups = synthetic_sets("base-to-novel")
    options = RunOptions(device=device, batch_size=args.batch_size, progress=not args.quiet, dtype=args.dtype,
                         compile=args.compile)
    rows, details = [], {}
    for method in _methods(args.methods):
        if args.untrained:
            plugin = core.load_method(method)
            # the method's options for the small CLIPs (e.g. fewer branch layers), as a training run would use
            method_options = (plugin.load_config("synthetic").get("method_options") or {}) \
                if "synthetic" in plugin.configs() else {}
            frames = resolve_settings(method, "base-to-novel", overrides={"frames": args.frames}).frames
            loaded = load_model(method=method, untrained=True, clip_model=args.clip_model, num_frames=frames,
                                options=method_options)
        else:
            loaded = _train(method, Path(args.runs_dir) / method, args.train_arg, args.retrain)
        if loaded.run_test is not None and not loaded.run_test.covers([*groups["base"], *groups["novel"]]):
            loaded = dataclasses.replace(loaded, run_test=loaded.run_test.frames_only())  # a run on other data
        settings = resolve_settings(method, "base-to-novel", model_frames=loaded.model.num_frames,
                                    run=loaded.run_test, overrides=overrides)
        entry = Entry(label=method, loaded=loaded, settings=settings, variant="final")
        results = run_protocol([entry], groups, options)
        summary = summarize("base-to-novel", [entry], groups, results)["per_split"][method]
        base_result, novel_result = results[method]["base val"], results[method]["novel val"]
        profile = _profile(loaded, settings.frames, len(groups["base"][0].class_names), device, args.iters,
                           resolve_eval_dtype(args.dtype, device, loaded.run_test))
        rows.append({"method": method, "source": loaded.source, "frames": settings.frames,
                     "views": f"{settings.clips}x{settings.crops}", "sampling": settings.sampling,
                     "aggregation": settings.aggregation, "text": settings.text,
                     "settings_origin": dict(settings.origin), "precision": entry.notes.get("precision"),
                     "compile_s": entry.notes.get("compile_s"), "videos_per_s": entry.notes.get("videos_per_s"),
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
        "views": args.views, "device": device, "dtype": args.dtype, "untrained": args.untrained, "unit": "%",
        "rows": rows, "details": details})}
    same = ", ".join(f"{k} {v}" for k, v in (("views", args.views), ("frames", args.frames),
                                               ("sampling", args.sampling)) if v)
    lines = ["# compare: base-to-novel on the embedded synthetic dataset", "",
             f"{'Untrained builds on ' + args.clip_model if args.untrained else 'Runs in ' + args.runs_dir}; "
             f"GFLOPs = multiply-adds per view (papers' convention); clips/s on {device}.",
             "Each method is tested with its own test settings (last column): a run's own frames, views, sampler "
             "and seed (as its summary.json and `python -m evaluation base-to-novel --run` use them), the method's "
             "view aggregation and class text from its evaluation.yaml" +
             (f"; overridden for every method: {same}." if same else "."),
             "Accuracies in percent; ties count at their expected value (core.eval.metrics). Reversal pairs: % of "
             "clips whose class outscores its time-reversed partner (chance 50).", "",
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
