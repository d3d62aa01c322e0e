"""``python -m evaluation compare``: several methods trained and evaluated on the same data, side by side.

    python -m evaluation compare                                  # every installed method, 3 seeds, embedded data
    python -m evaluation compare --methods vifi,t2l,tcclip --seeds 5 --runs-dir runs/compare
    python -m evaluation compare --untrained --model test         # no training: checks the pipeline in seconds

Each method is trained by ``python -m core.train`` in a subprocess on the embedded synthetic dataset (its
``synthetic`` recipe, tiny CLIP; ``--train-arg key=value`` is passed on to every run, e.g.
``--train-arg schedule.epochs=2``), once per seed (``--seeds``, default 3: seed 0 in ``<runs-dir>/<method>``
with the recipe's train.seed, seed k in ``<runs-dir>/<method>-seed<k>`` with train.seed + k), or an existing
run there is reused. Every model is
then tested under base-to-novel on the synthetic ``val_base`` / ``val_novel`` splits with ITS OWN test
settings, exactly as ``python -m evaluation base-to-novel --run <runs-dir>/<method>`` tests it (the
precedence of ``core.eval.settings``): a run's own frames, views, frame sampler and seed (what its
``summary.json`` used, so the three agree to the last digit), the method's view aggregation and class-text
mode from its ``evaluation.yaml``; ``--untrained`` builds take the method's ``evaluation.yaml`` alone.
``--views`` / ``--frames`` / ``--sampling`` override every method alike, and the report says which
settings each row used. The table gives base / novel top-1 and their HM, the time-reversal pair accuracy
(true class scored above its time-reversed partner; chance 50 %, frame-averaging models sit there),
trainable parameters, GFLOPs per view and clips/s per view (``evaluation.profile``, on this machine).
Accuracies are the mean over seeds with the 95 % Student-t interval over seeds (mean ± half-width);
clips/s is the median and IQR of ``--repeats`` timed repeats (default 5, after warm-up), interleaved across
methods, every method with the same torch thread count. Plots: HM against GFLOPs and against clips/s, with
the interval and the IQR as error bars and speeds within each other's spread marked as such.
docs/evaluation.md says how each figure is made.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--seeds", type=_seeds, default=3, metavar="N|auto",
                        help="training seeds per method (default 3); accuracies are their mean with a 95 %% t-interval "
                             f"over seeds. auto: 3 seeds, then more (up to {AUTO_SEEDS_MAX}) until every accuracy's "
                             "half-width is at most 3 points")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed repeats per method, interleaved across methods (default 5); clips/s is their "
                             "median with the interquartile range")
    parser.add_argument("--iters", type=int, default=3,
                        help="calls per timed repeat; a repeat's clips/s is from its median call (default 3)")
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
    check_range("--repeats", args.repeats, minimum=1)
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


AUTO_SEEDS_MIN, AUTO_SEEDS_MAX = 3, 10


def _seeds(text: str) -> int | str:
    """``--seeds``: a count of at least 1, or ``auto``."""
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"--seeds takes a count of at least 1 or 'auto'; got {text!r}")
    return count


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


ACCURACIES = ("base", "novel", "hm", "reversal_base", "reversal_novel")
HALF_WIDTH_TARGET = 3.0  # points: the interval compare is sized for


def seed_run_dir(runs_dir: str | Path, method: str, seed_index: int) -> Path:
    """Seed 0 is ``<runs-dir>/<method>`` (a run trained with the recipe's own seed, e.g. the README's main
    job, is reused as is); seed ``k >= 1`` is ``<runs-dir>/<method>-seed<k>``."""
    return Path(runs_dir) / (method if seed_index == 0 else f"{method}-seed{seed_index}")


def seed_train_args(method: str, train_args: Sequence[str], seed_index: int) -> list[str]:
    """``train_args`` for seed ``k``: unchanged for ``k = 0``; ``train.seed=<base + k>`` appended otherwise, where
    the base is a ``train.seed`` in ``train_args`` or the method's synthetic recipe's (the trainer's 1024 else)."""
    args = list(train_args)
    if seed_index == 0:
        return args
    base = None
    for item in args:
        key, sep, value = item.partition("=")
        if sep and key.strip().lstrip("-") == "train.seed":
            base = int(value)
    if base is None:
        plugin = core.load_method(method)
        recipe = plugin.load_config("synthetic") if "synthetic" in plugin.configs() else {}
        base = int((recipe.get("train") or {}).get("seed", 1024))
    return [*args, f"train.seed={base + seed_index}"]


def _profile(loaded: LoadedModel, frames: int, num_classes: int, device: str, dtype: torch.dtype,
             compile: bool) -> tuple[dict[str, Any], torch.nn.Module]:
    """Parameters, GFLOPs and peak memory of ``loaded`` (one untimed-figure profile), and the module to time.

    Called once the model's evaluation is done: it is moved to ``device`` / ``dtype`` in place (a deep copy
    fails for models holding tensors computed during evaluation, e.g. ILA's)."""
    from evaluation.profile import _class_texts, _Compiled, _dummy_video, profile_model

    model = loaded.model
    prof = profile_model(model, method=loaded.method, model_name=loaded.clip_name or "?", num_frames=frames,
                         num_classes=num_classes, batch_size=1, iters=1, warmup=1, device=device, dtype=dtype,
                         compile=compile)
    timed: torch.nn.Module = model  # profile_model moved it to device / dtype and eval mode in place
    if compile:
        from core.precision import compile_module

        wrapper = _Compiled(model)
        video = _dummy_video(1, frames, prof.input_size, torch.device(device), dtype)
        texts = _class_texts(num_classes)

        def first_call(compiled: torch.nn.Module) -> None:
            with torch.inference_mode():
                compiled(video, texts)

        compiled, _ = compile_module(wrapper, warmup=first_call)
        wrapper.__dict__["compiled"] = compiled
        timed = wrapper
    return asdict(prof), timed


def time_interleaved(models: dict[str, tuple[torch.nn.Module, int, int, int, torch.dtype]], *, device: str,
                     repeats: int, iters: int, warmup: int, threads: int) -> dict[str, dict[str, Any]]:
    """Clips/s of every model, median and IQR over ``repeats`` timed repeats, interleaved across methods.

    ``models`` maps a name to ``(module, frames, input size, classes, dtype)``. Every method gets ``warmup``
    untimed calls first; then repeat ``r`` times each method once (the order rotated by ``r`` so no method
    always runs first), a repeat's figure being ``1 / median`` of its ``iters`` calls. ``torch`` runs with
    ``threads`` intra-op threads for every method (restored afterwards).
    """
    from evaluation.profile import measure_throughput
    from evaluation.stats import median_iqr

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        names = list(models)
        for module, *_ in models.values():
            module.to(device)  # all on the device for the interleaved repeats (parked on the CPU before)
        samples: dict[str, list[float]] = {name: [] for name in names}
        for name in names:
            module, frames, size, classes, dtype = models[name]
            measure_throughput(module, num_frames=frames, input_size=size, num_classes=classes, iters=1,
                               warmup=warmup, device=device, dtype=dtype)
        for r in range(repeats):
            for name in names[r % len(names):] + names[:r % len(names)]:
                module, frames, size, classes, dtype = models[name]
                clips_per_s, _, _ = measure_throughput(module, num_frames=frames, input_size=size,
                                                       num_classes=classes, iters=iters, warmup=0, device=device,
                                                       dtype=dtype)
                samples[name].append(clips_per_s)
    finally:
        torch.set_num_threads(before)
    return {name: median_iqr(values) for name, values in samples.items()}


def _fmt_interval(row: dict[str, Any], key: str) -> str:
    half = row[f"{key}_half_width"]
    return fmt(row[key]) if half != half else f"{fmt(row[key])} ± {fmt(half)}"


def compare_table(rows: Sequence[dict[str, Any]]) -> str:
    """``Method | Trainable | GFLOPs/view | clips/s | Base | Novel | HM | Reversal (base) | Reversal (novel) | Test``.

    Accuracies are ``mean ± half-width`` of the 95 % t-interval over seeds (the mean alone for one seed);
    clips/s is ``median (IQR q1-q3)`` of the timed repeats."""
    header = ["Method", "Seeds", "Trainable params", "GFLOPs/view", "clips/s/view (median, IQR)", "Base top-1",
              "Novel top-1", "HM", "Reversal pairs (base)", "Reversal pairs (novel)", "Test settings"]
    body = [[r["method"], r["seeds"], fmt_count(r["params_trainable"]), fmt(r["gflops"], 3),
             f"{fmt(r['clips_per_s'])} ({fmt(r['clips_per_s_q1'])}-{fmt(r['clips_per_s_q3'])})",
             *(_fmt_interval(r, key) for key in ACCURACIES),
             f"{r['frames']} frames, {r['views']} views, {r['sampling']}, {r['aggregation']}, {r['text']}, "
             f"{r['precision']}"]
            for r in rows]
    return markdown_table(header, body)


def _evaluate_seed(method: str, seed_index: int, args: argparse.Namespace, groups: dict[str, Any],
                   options: RunOptions, overrides: dict[str, Any]) -> tuple[LoadedModel, Any, Entry, dict, dict]:
    """One seed's model (trained or fresh), its settings, and its base-to-novel results and summary row."""
    if args.untrained:
        plugin = core.load_method(method)
        # the method's options for the small CLIPs (e.g. fewer branch layers), as a training run would use
        method_options = (plugin.load_config("synthetic").get("method_options") or {}) \
            if "synthetic" in plugin.configs() else {}
        frames = resolve_settings(method, "base-to-novel", overrides={"frames": args.frames}).frames
        torch.manual_seed(seed_index)  # the seed of a fresh build is its initialisation
        loaded = load_model(method=method, untrained=True, clip_model=args.clip_model, num_frames=frames,
                            options=method_options)
    else:
        loaded = _train(method, seed_run_dir(args.runs_dir, method, seed_index),
                        seed_train_args(method, args.train_arg, seed_index), args.retrain)
    if loaded.run_test is not None and not loaded.run_test.covers([*groups["base"], *groups["novel"]]):
        loaded = dataclasses.replace(loaded, run_test=loaded.run_test.frames_only())  # a run on other data
    settings = resolve_settings(method, "base-to-novel", model_frames=loaded.model.num_frames,
                                run=loaded.run_test, overrides=overrides)
    entry = Entry(label=method, loaded=loaded, settings=settings, variant="final")
    results = run_protocol([entry], groups, options)
    summary = summarize("base-to-novel", [entry], groups, results)["per_split"][method]
    base_result, novel_result = results[method]["base val"], results[method]["novel val"]
    scores = {"base": summary["base"], "novel": summary["novel"], "hm": summary["hm"],
              "reversal_base": base_result.reversal_pair_accuracy,
              "reversal_novel": novel_result.reversal_pair_accuracy}
    return loaded, settings, entry, scores, {k: v.as_dict() for k, v in results[method].items()}


def _all_within(per_seed: Sequence[dict[str, Any]], target: float) -> bool:
    """Whether every accuracy's 95 % t-interval over these seeds has a half-width of at most ``target``."""
    from evaluation.stats import mean_interval

    return all(mean_interval([s[key] for s in per_seed])["half_width"] <= target for key in ACCURACIES)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; returns ``{"rows", "paths"}``. Bad input: one line on stderr and ``SystemExit(2)``."""
    return call_cli(_main, argv, prog="python -m evaluation compare")


def _main(argv: Sequence[str]) -> dict[str, Any]:
    from evaluation.stats import mean_interval, overlapping, seeds_for_half_width

    args = _parser().parse_args(argv)
    _check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    auto = args.seeds == "auto"
    max_seeds = AUTO_SEEDS_MAX if auto else args.seeds
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()  # fixed once: every method is timed with this many intra-op threads
    overrides = {"views": parse_views(args.views) if args.views else None, "frames": args.frames,
                 "sampling": args.sampling}
    groups = synthetic_sets("base-to-novel")
    options = RunOptions(device=device, batch_size=args.batch_size, progress=not args.quiet, dtype=args.dtype,
                         compile=args.compile)
    num_classes = len(groups["base"][0].class_names)
    rows, details, timed = [], {}, {}
    for method in _methods(args.methods):
        per_seed, seed_results = [], []
        for k in range(max_seeds):
            if auto and k >= AUTO_SEEDS_MIN and _all_within(per_seed, HALF_WIDTH_TARGET):
                break
            loaded, settings, entry, scores, results = _evaluate_seed(method, k, args, groups, options, overrides)
            per_seed.append({"seed_index": k, "source": loaded.source, **scores})
            seed_results.append(results)
            loaded.model.to("cpu")  # off the device while the other seeds run
            if k == 0:  # the first seed's model stands for the method in the speed figures
                first = (loaded, settings, entry)
            del loaded, entry
        loaded, settings, entry = first
        for parked in timed.values():  # only this method's model on the device for its peak memory
            parked[0].to("cpu")
        eval_dtype = resolve_eval_dtype(args.dtype, device, loaded.run_test)
        profile, module = _profile(loaded, settings.frames, num_classes, device, eval_dtype, args.compile)
        timed[method] = (module, settings.frames, profile["input_size"], num_classes, eval_dtype)
        row: dict[str, Any] = {
            "method": method, "seeds": len(per_seed), "source": loaded.source, "frames": settings.frames,
            "views": f"{settings.clips}x{settings.crops}", "sampling": settings.sampling,
            "aggregation": settings.aggregation, "text": settings.text, "settings_origin": dict(settings.origin),
            "precision": entry.notes.get("precision"), "compile_s": entry.notes.get("compile_s"),
            "videos_per_s": entry.notes.get("videos_per_s")}
        for key in ACCURACIES:
            interval = mean_interval([s[key] for s in per_seed])
            row[key] = interval["mean"]
            row[f"{key}_low"], row[f"{key}_high"] = interval["low"], interval["high"]
            row[f"{key}_half_width"], row[f"{key}_std"] = interval["half_width"], interval["std"]
            row[f"{key}_seeds_for_3pt"] = seeds_for_half_width(interval["std"], HALF_WIDTH_TARGET)
        row.update({"params_total": profile["params_total"], "params_trainable": profile["params_trainable"],
                    "gflops": profile["gflops"], "peak_memory_mb": profile["peak_memory_mb"]})
        rows.append(row)
        details[method] = {"per_seed": per_seed, "results": seed_results, "profile": profile,
                           "settings": settings.as_dict()}
        del loaded, entry, first  # the model stays on the device (in ``timed``) until every method is timed
    timings = time_interleaved(timed, device=device, repeats=args.repeats, iters=args.iters, warmup=2,
                               threads=threads)
    for row in rows:
        timing = timings[row["method"]]
        row.update({"clips_per_s": timing["median"], "clips_per_s_q1": timing["q1"],
                    "clips_per_s_q3": timing["q3"], "clips_per_s_iqr": timing["iqr"],
                    "clips_per_s_repeats": timing["values"]})
        details[row["method"]]["timing"] = timing
    del timed
    speed_ties = overlapping({r["method"]: (r["clips_per_s_q1"], r["clips_per_s_q3"]) for r in rows})
    wide = [(r["method"], key, r[f"{key}_half_width"], r[f"{key}_seeds_for_3pt"]) for r in rows for key in ACCURACIES
            if r[f"{key}_half_width"] == r[f"{key}_half_width"] and r[f"{key}_half_width"] > HALF_WIDTH_TARGET]
    seed_words = (f"{AUTO_SEEDS_MIN}-{AUTO_SEEDS_MAX} (--seeds auto: added until every half-width is at most "
                  f"{HALF_WIDTH_TARGET:g}; the Seeds column)") if auto else str(args.seeds)
    fewest = min((r["seeds"] for r in rows), default=0)
    method_note = {
        "seeds": args.seeds, "seeds_per_method": {r["method"]: r["seeds"] for r in rows},
        "accuracy": f"mean over {seed_words} seed(s) (seed 0: the recipe's train.seed, run <runs-dir>/<method>; "
                    "seed k: train.seed + k, run <runs-dir>/<method>-seed<k>; fresh builds: torch.manual_seed(k)); "
                    "HM is the mean of the per-seed HMs",
        "interval": "95 % Student-t interval over seeds: mean ± t(0.975, n-1) · std / sqrt(n) (none for one seed)",
        "half_width_target": HALF_WIDTH_TARGET,
        "timing": f"clips/s per view, batch 1, {device}: median and IQR (q1-q3, inclusive quartiles) of "
                  f"{args.repeats} timed repeats after 2 warm-up calls per method; a repeat is {args.iters} "
                  "call(s) and counts 1 / its median call; methods interleaved, their order rotated every repeat",
        "threads": threads, "repeats": args.repeats, "iters": args.iters,
    }
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.output_dir or Path("reports") / f"compare-{stamp}")
    paths = {"json": write_json(out / "compare.json", {
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "protocol": "base-to-novel (synthetic)",
        "views": args.views, "device": device, "dtype": args.dtype, "untrained": args.untrained, "unit": "%",
        "method": method_note, "speed_within_spread": [list(p) for p in speed_ties], "rows": rows,
        "details": details})}
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
             "clips whose class outscores its time-reversed partner (chance 50).",
             f"Accuracies: {method_note['accuracy']}; ± is the half-width of the "
             f"{method_note['interval']}.",
             f"Speed: {method_note['timing']}; torch intra-op threads {threads} for every method.", "",
             compare_table(rows)]
    if speed_ties:
        lines += ["", "Speeds within each other's spread (IQRs overlap; not a ranking): " +
                  ", ".join(f"{a} ~ {b}" for a, b in speed_ties) + "."]
    if fewest < 2:
        lines += ["", "One seed: no interval (pass --seeds 3 or more)."]
    elif wide:
        lines += ["", f"Intervals wider than ±{HALF_WIDTH_TARGET:g} points: " + "; ".join(
            f"{m} {k} ±{fmt(h)} ({'about ' + str(n) + ' seeds would reach ±3' if n else 'too noisy to size'})"
            for m, k, h, n in wide) + "."]
    paths["markdown"] = write_text(out / "compare.md", "\n".join(lines) + "\n")
    if not args.no_plots:
        from evaluation.plots import plot_tradeoff

        points = [{"name": r["method"], "gflops": r["gflops"], "clips_per_s": r["clips_per_s"], "hm": r["hm"],
                   "hm_err": (r["hm_low"], r["hm_high"]),
                   "clips_per_s_err": (r["clips_per_s_q1"], r["clips_per_s_q3"])} for r in rows]
        interval = f"95 % t-interval over {'the' if auto else args.seeds} seeds" if fewest > 1 else \
            "1 seed, no interval"
        paths["hm_vs_gflops"] = plot_tradeoff(points, "gflops", out / "hm_vs_gflops.png", y="hm",
                                              xlabel="GFLOPs per view (MACs)",
                                              ylabel=f"HM of base/novel top-1 (%), {interval}",
                                              title="accuracy vs compute")
        paths["hm_vs_throughput"] = plot_tradeoff(
            points, "clips_per_s", out / "hm_vs_clips_per_s.png", y="hm",
            xlabel=f"clips/s per view ({device}, {threads} threads): median, bars = IQR of {args.repeats} repeats",
            ylabel=f"HM of base/novel top-1 (%), {interval}", title="accuracy vs speed",
            ties=speed_ties)
    print("\n".join(lines))
    print(f"report: {paths['json']} and {paths['markdown']}")
    if any(math.isnan(r["hm"]) for r in rows):
        print("warning: some methods have no HM (an evaluation set was empty)", file=sys.stderr)
    return {"rows": rows, "paths": paths}


if __name__ == "__main__":
    main()
