"""``python -m evaluation <protocol>``: evaluate models under the papers' protocols and write reports.

With no data arguments every protocol runs on the embedded synthetic dataset (see
:mod:`evaluation.datasets`), so a model trained by ``python -m core.train`` can be evaluated at once::

    python -m core.train --method vifi --output-dir runs/vifi
    python -m evaluation base-to-novel --run runs/vifi

Real data: shards written per official split by ``chronoclip-shards``::

    python -m evaluation zero-shot --run runs/tcclip-k400 --wise-ft-clip ViT-B-16.pt \\
        --target hmdb51:1=shards/hmdb_val1 --target hmdb51:2=shards/hmdb_val2 --target hmdb51:3=shards/hmdb_val3 \\
        --target ucf101:1=shards/ucf_val1 ... --target k600:1=shards/k600_zs1 ...
    python -m evaluation few-shot --run 2=runs/hmdb-2shot --run 4=runs/hmdb-4shot ... --val shards/hmdb_val1
    python -m evaluation base-to-novel --run s1=runs/b2n-s1 --run s2=... --run s3=... \\
        --base-val shards/hmdb_base_val --novel-val shards/hmdb_novel_val --dataset hmdb51
    python -m evaluation fully-supervised --official ila_k400.pth --method ila --val shards/k400_val --profile

Bad input (a missing run or shard, a file that is not a checkpoint, an unknown method, an out-of-range value) is
one line on stderr naming the problem and the fix, exit status 2, before any model loads where it can be told
(``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import datetime as _dt
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

import core
from core.cli import ArgumentParser, UserError, call_cli, check_device, check_range
from core.eval.metrics import AGGREGATIONS, confusion_matrix, per_class_accuracy
from core.eval.sets import EvalSet
from core.eval.settings import PROTOCOLS, TEXT_MODES, EvalSettings, method_settings, parse_views, resolve_settings
from core.precision import DTYPES
from evaluation.datasets import catalog_name, display_name, real_set, synthetic_sets
from evaluation.protocols import Entry, RunOptions, run_protocol, summarize
from evaluation.sources import LoadedModel, best_logged, load_model, parse_options, zero_shot_clip_file

__all__ = ["build_entries", "eval_sets_from_args", "load_sources", "main", "write_report"]

logger = logging.getLogger("evaluation")

CHOICES = {
    "zero-shot": [
        "K-600 zero-shot follows ViFi-CLIP/TC-CLIP's official split files: 3 splits of 160 classes drawn from the "
        "220 K-600 classes outside K-400 (T2L's single list has 232 classes); pass any other list as shards + "
        "--classes.",
        "mean ± std over the splits uses the population std (ddof=0).",
    ],
    "few-shot": ["few-shot K-shot training lists are the official ones (split 1); evaluation on the validation split."],
    "base-to-novel": ["HM is the harmonic mean of the split-averaged base and novel top-1 (ViFi-CLIP, TC-CLIP); "
                      "the mean of per-split HMs is in the JSON."],
    "fully-supervised": [],
}
#: Said in every report.
COMMON_CHOICES = [
    "accuracies in percent; a tie between the true class and others counts at its expected value (a fair coin: "
    "equal to torch.topk on real logits); a reversal-pair tie counts 0.5 (core.eval.metrics).",
    "test settings: command line > a run's frame count (model.pt) and, on the data it validated on, its own test "
    "settings (data.test_views, data.test_sampling, train.seed: what its summary.json used) > the method's "
    "evaluation.yaml > core defaults; each value's origin is in report.json (entries[].settings.origin).",
]


def _add_common(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("model source (one kind)")
    src.add_argument("--run", action="append", default=[], metavar="[KEY=]PATH",
                     help="core.train run dir or model.pt; repeat with KEY = shots (few-shot) or split (base-to-novel)")
    src.add_argument("--official", help="the authors' released checkpoint: a file (with --method) or a registry "
                                        "name (python -m core.train --list-weights; the method is implied)")
    src.add_argument("--untrained", action="store_true", help="fresh build of --method on --model (smoke tests)")
    src.add_argument("--method", help="installed method (clip, vifi, t2l, tcclip, ila, stan)")
    src.add_argument("--model", dest="clip_model", help="CLIP architecture or preset for --untrained/zero-shot CLIP")
    src.add_argument("--pretrained", help="CLIP weights for zero-shot --method clip or under --untrained")
    src.add_argument("--clip", dest="clip_file", help="OpenAI CLIP file passed as clip= to --official converters")
    src.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option, repeatable")
    src.add_argument("--key", help="protocol key of a single non-run model (shots or split name)")

    st = parser.add_argument_group("test settings (default: a run's own, else the method's evaluation.yaml)")
    st.add_argument("--frames", type=int, help="frames per clip, >= 1 (only for models that do not fix it)")
    st.add_argument("--views", help="temporal clips x spatial crops (crops 1 or 3), e.g. 4x3")
    st.add_argument("--sampling", help="frame sampler (core.data.sampling name)")
    st.add_argument("--aggregation", choices=sorted(AGGREGATIONS), help="view aggregation")
    st.add_argument("--text", choices=TEXT_MODES, help="class text: names, descriptions (T2L), rephrased (TC-CLIP)")
    st.add_argument("--descriptions", help="description CSV (T2L) or rephrased-name JSON (TC-CLIP) for --text")
    st.add_argument("--wise-ft", type=float, help="WiSE-FT alpha on the fine-tuned side, in [0, 1] (0 disables)")
    st.add_argument("--wise-ft-clip", help="zero-shot CLIP weights for WiSE-FT (default: the run's clip.pretrained)")

    rn = parser.add_argument_group("running")
    rn.add_argument("--batch-size", type=int, help="videos per batch, >= 1 (default: a run's eval.batch_size, else 8)")
    rn.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    rn.add_argument("--decoder", default="decord", choices=["decord", "pyav", "torchcodec"],
                    help="video decoder (default decord; pyav when decord cannot be imported)")
    rn.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda if available)")
    rn.add_argument("--dtype", choices=DTYPES, default="auto",
                    help="precision (default auto: a run's own validation precision on this device, else bf16 where "
                         "the hardware has it, fp32 elsewhere; fp32 on CUDA allows TF32)")
    rn.add_argument("--compile", action="store_true",
                    help="torch.compile the classifier (compile time reported apart from steady-state speed)")
    rn.add_argument("--seed", type=int, help="seed of the random multi-view clips, >= 0 (default: a run's train.seed, else 0)")
    rn.add_argument("--output-dir", help="report folder (default reports/<protocol>-<method>-<time>)")
    rn.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    rn.add_argument("--quiet", action="store_true", help="no progress bars")


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m evaluation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="protocol", metavar="{" + ",".join((*PROTOCOLS, "compare")) + "}")
    sub.required = True
    descriptions = {
        "zero-shot": "trained on K-400, tested on the targets' official splits (mean ± std), optional WiSE-FT",
        "few-shot": "one model per K (2, 4, 8, 16), tested on the validation split",
        "base-to-novel": "one model per base split (s1-s3), tested on base and novel classes; HM",
        "fully-supervised": "multi-view test on the validation split; top-1/top-5",
    }
    for protocol in PROTOCOLS:
        p = sub.add_parser(protocol, help=descriptions[protocol], description=descriptions[protocol] + ". " +
                           "Without data arguments: the embedded synthetic dataset.")
        _add_common(p)
        data = p.add_argument_group("data (default: the embedded synthetic dataset)")
        data.add_argument("--dataset", default="", help="catalog name of the data (hmdb51, ucf101, k400, ssv2, ...)")
        data.add_argument("--classes", action="append", default=[], metavar="[SET=]FILE",
                          help="class list of a shard set when its manifest has none (one name per line or id,name CSV)")
        if protocol == "zero-shot":
            data.add_argument("--target", action="append", default=[], metavar="NAME[:SPLIT]=SHARDS",
                              help="a target split's shards, repeatable (hmdb51:1=..., k600:2=...)")
        elif protocol == "base-to-novel":
            data.add_argument("--base-val", help="shards of the base classes' validation split")
            data.add_argument("--novel-val", help="shards of the novel classes' validation split")
        else:
            data.add_argument("--val", help="shards of the validation split")
        if protocol == "fully-supervised":
            p.add_argument("--profile", action="store_true", help="add GFLOPs per view and clips/s to the table")
    sub.add_parser("compare", help="train and evaluate several methods side by side (python -m evaluation compare "
                   "--help)")
    return parser


# ---------------------------------------------------------------------------------------------------------------
# Entries (models) and sets (data)


def _split_key(item: str) -> tuple[str, str]:
    key, sep, path = item.partition("=")
    if sep and key and not os.path.exists(item):
        return key.strip(), path
    return "", item


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    views = parse_views(args.views) if args.views else None
    return {"frames": args.frames, "views": views, "sampling": args.sampling, "aggregation": args.aggregation,
            "text": args.text}


def _with_wise(settings: EvalSettings, alpha: float | None) -> EvalSettings:
    return dataclasses.replace(settings, wise_ft=alpha, origin=dict(settings.origin))


def load_sources(args: argparse.Namespace, protocol: str) -> list[tuple[str, LoadedModel]]:
    """``(protocol key, loaded model)`` for every model the arguments name (``--run``, or one other source)."""
    sources: list[tuple[str, LoadedModel]] = []
    if args.run:
        if args.official or args.untrained:
            raise ValueError("pass --run or a single --official / --untrained model, not both")
        for item in args.run:
            key, path = _split_key(item)
            sources.append((key, load_model(run=path)))
    else:
        # a fresh build gets the protocol's frame count of the method (TC-CLIP: 16) unless --frames says otherwise
        frames = args.frames or (method_settings(args.method)[0][protocol].get("frames") if args.method else None)
        loaded = load_model(official=args.official, method=args.method, clip_model=args.clip_model,
                            pretrained=args.pretrained, clip_file=args.clip_file, untrained=args.untrained,
                            num_frames=frames, options=parse_options(args.option))
        sources.append((args.key or "", loaded))
    return sources


def build_entries(args: argparse.Namespace, protocol: str, groups: dict[str, list[EvalSet]] | None = None,
                  sources: list[tuple[str, LoadedModel]] | None = None) -> list[Entry]:
    """Load every model the arguments name (unless ``sources`` holds them: :func:`load_sources`) and resolve its
    settings (plus WiSE-FT variants for zero-shot).

    A run keeps its own test settings on data it validated on (``RunTestSettings.covers``); elsewhere only
    its frame count and precision carry over."""
    from evaluation.wiseft import wise_ft

    if sources is None:
        sources = load_sources(args, protocol)
    entries: list[Entry] = []
    for index, (key, loaded) in enumerate(sources):
        if protocol == "base-to-novel" and not key and len(sources) > 1:
            key = f"s{index + 1}"
        if loaded.run_test is not None and groups is not None and \
                not loaded.run_test.covers([s for sets in groups.values() for s in sets]):
            loaded = dataclasses.replace(loaded, run_test=loaded.run_test.frames_only())
        settings = resolve_settings(loaded.method, protocol, model_frames=loaded.model.num_frames,
                                    run=loaded.run_test, overrides=_overrides(args))
        alpha = args.wise_ft if args.wise_ft is not None else settings.wise_ft
        settings = _with_wise(settings, None)
        label = {"few-shot": f"K={key}" if key else "final", "base-to-novel": key or "final"}.get(protocol, key or "final")
        if any(e.label == label for e in entries):  # several unnamed models: keep every row
            label = f"{label} #{index + 1}"
        entry = Entry(label=label, loaded=loaded, settings=settings, key=key, variant="final")
        if loaded.run_dir is not None:
            logged = best_logged(loaded.run_dir)
            if logged is not None:
                entry.notes["best validation logged in training"] = (
                    f"{logged['top1']:.2f} top-1 on {logged['split']} at step {logged['step']} (last logged "
                    f"{logged['final_top1']:.2f}); the run keeps only its final model, evaluated here")
                entry.notes["best_logged"] = logged
        if settings.report == "best":
            entry.notes["paper reports"] = ("the best checkpoint; pass it with --run when you kept one "
                                            "(core.train keeps the final model)")
        entries.append(entry)
        if protocol != "zero-shot" or not alpha:
            continue
        clip_file = args.wise_ft_clip or zero_shot_clip_file(loaded)
        if clip_file is None:
            if args.wise_ft:
                raise ValueError("--wise-ft needs the zero-shot CLIP weights: pass --wise-ft-clip ViT-B-16.pt")
            entries[-1].notes["wise_ft"] = (f"{loaded.method}'s protocol adds a WiSE-FT row (alpha {alpha}); skipped: "
                                            f"pass --wise-ft-clip <CLIP file>")
            continue
        fused, how = wise_ft(loaded.model, loaded.method, clip_file, float(alpha))
        fused_loaded = copy.copy(loaded)
        fused_loaded.model = fused
        entries.append(Entry(label=f"{label} + WE", loaded=fused_loaded, settings=_with_wise(settings, float(alpha)),
                             key=key, variant="WE", notes={"wise_ft": how, "zero_shot_clip": str(clip_file)}))
    return entries


def _classes_files(args: argparse.Namespace) -> dict[str, str]:
    out = {}
    for item in args.classes:
        key, sep, path = item.partition("=")
        out[key if sep else ""] = path if sep else item
    return out


def eval_sets_from_args(args: argparse.Namespace, protocol: str) -> dict[str, list[EvalSet]]:
    """The evaluation sets: user shards when given, else the synthetic stand-ins.

    Class lists: ``--classes``, else the shards' manifest, else the catalog list the split's labels index
    (zero-shot K-600 split n: ``zs_split<n>``; base-to-novel: ``base`` / ``novel``; otherwise ``all``).
    """
    classes = _classes_files(args)
    dataset = catalog_name(args.dataset) if args.dataset else ""
    if protocol == "zero-shot":
        if not args.target:
            return synthetic_sets(protocol)
        groups: dict[str, list[EvalSet]] = {}
        for item in args.target:
            spec, sep, shards = item.partition("=")
            if not sep:
                raise ValueError(f"--target must look like NAME[:SPLIT]=SHARDS; got {item!r}")
            name, _, split = spec.partition(":")
            target = catalog_name(name)
            which = f"zs_split{split}" if target == "kinetics600" and split else "all"
            group = display_name(target)
            eval_set = real_set(group, split or "1", shards, dataset=target, catalog_split=which,
                                classes_file=classes.get(spec) or classes.get(name) or None)
            groups.setdefault(group, []).append(eval_set)
        return groups
    if protocol == "base-to-novel":
        if not (args.base_val or args.novel_val):
            return synthetic_sets(protocol)
        if not (args.base_val and args.novel_val):
            raise ValueError("base-to-novel needs both --base-val and --novel-val shards")
        return {"base": [real_set("base", "val", args.base_val, dataset=dataset, catalog_split="base",
                                  classes_file=classes.get("base"))],
                "novel": [real_set("novel", "val", args.novel_val, dataset=dataset, catalog_split="novel",
                                   classes_file=classes.get("novel"))]}
    if not args.val:
        return synthetic_sets(protocol)
    group = display_name(dataset) if dataset else "val"
    return {group: [real_set(group, "val", args.val, dataset=dataset, catalog_split="all",
                             classes_file=classes.get("") or None)]}


# ---------------------------------------------------------------------------------------------------------------
# Reports


def write_report(protocol: str, entries: Sequence[Entry], groups: dict[str, list[EvalSet]], results, summary,
                 out_dir: Path, *, plots: bool = True, profile: dict | None = None) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and the plots into ``out_dir``; returns their paths."""
    from evaluation import report as R

    method = entries[0].loaded.method
    logits_files = _save_logits(results, out_dir)
    json_obj = {
        "protocol": protocol, "method": method,
        "created": _dt.datetime.now().isoformat(timespec="seconds"), "chronoclip": core.__version__,
        "entries": [{"label": e.label, "key": e.key, "variant": e.variant, "source": e.loaded.source,
                     "settings": e.settings.as_dict(), "notes": e.notes} for e in entries],
        "sets": [{"group": s.group, "split": s.split, "shards": str(s.shards), "num_classes": len(s.class_names),
                  "class_origin": s.class_origin, "label_subset": s.label_map is not None}
                 for sets in groups.values() for s in sets],
        "results": {label: {name: {**r.as_dict(), "logits_file": logits_files.get((label, name))}
                            for name, r in per.items()} for label, per in results.items()},
        "summary": summary, "choices": CHOICES[protocol] + COMMON_CHOICES, "unit": "%",
        "precision": {e.label: e.notes.get("precision") for e in entries},
    }
    if profile:
        json_obj["profile"] = profile
    paths = {"json": R.write_json(out_dir / "report.json", json_obj)}

    lines = [f"# {protocol}: {method}", ""]
    for e in entries:
        lines.append(f"- **{e.label}**: {e.loaded.source}; {e.settings.describe()}; precision "
                     f"{e.notes.get('precision', '?')}")
        lines += [f"  - {k}: {v}" for k, v in e.notes.items() if isinstance(v, str) and k != "precision"]
        if "compile_s" in e.notes:
            lines.append(f"  - torch.compile: {e.notes['compile_s']:.1f} s compile, then "
                         f"{e.notes['videos_per_s']:.1f} videos/s")
    lines.append("")
    if protocol == "zero-shot":
        lines.append(R.zero_shot_table(method, entries, summary))
    elif protocol == "few-shot":
        lines.append(R.few_shot_table(method, entries, summary, next(iter(groups))))
    elif protocol == "base-to-novel":
        base_dataset = groups["base"][0].dataset
        lines.append(R.base_to_novel_table(method, summary, display_name(base_dataset) if base_dataset else ""))
    else:
        lines.append(R.fully_supervised_table(method, entries, summary, profile))
    lines += ["", "## Every evaluation", "", R.details_table(results), "## Choices", ""]
    lines += [f"- {c}" for c in CHOICES[protocol] + COMMON_CHOICES]
    lines += [f"- view aggregation `{e.settings.aggregation}`: {AGGREGATIONS[e.settings.aggregation]}"
              for e in entries[:1]]
    lines += [f"- class list of {s.name}: {s.class_origin}" for sets in groups.values() for s in sets]
    paths["markdown"] = R.write_text(out_dir / "report.md", "\n".join(lines) + "\n")

    if plots:
        from evaluation.plots import plot_confusion_matrix, plot_per_class_accuracy

        for entry in entries:
            for sets in groups.values():
                eval_set = sets[0]  # first split of each group: enough to read the errors, few files
                r = results[entry.label][eval_set.name]
                preds = r.predictions
                stem = f"{entry.label}_{eval_set.name}".replace(" ", "_").replace("/", "-").replace("=", "")
                matrix = confusion_matrix(preds.predictions, preds.labels, r.num_classes)
                paths[f"confusion {stem}"] = plot_confusion_matrix(
                    matrix, r.class_names, out_dir / f"confusion_{stem}.png",
                    title=f"{method} {entry.label} on {eval_set.name}")
                paths[f"per-class {stem}"] = plot_per_class_accuracy(
                    per_class_accuracy(preds.scores, preds.labels, r.num_classes), r.class_names,
                    out_dir / f"per_class_{stem}.png", title=f"{method} {entry.label} on {eval_set.name}")
    return paths


def _save_logits(results, out_dir: Path) -> dict[tuple[str, str], str]:
    """Every model's per-video, per-view logits on every set under ``out_dir/logits`` (see evaluation.logits)."""
    from evaluation.logits import save_logits

    out: dict[tuple[str, str], str] = {}
    for label, per in results.items():
        for name, r in per.items():
            if r.predictions is None or r.predictions.view_logits is None:
                continue
            stem = f"{label}_{name}".replace(" ", "_").replace("/", "-").replace("=", "").replace("+", "plus")
            path = save_logits(out_dir / "logits" / f"{stem}.npz", r.predictions, r.class_names)
            out[(label, name)] = str(path.relative_to(out_dir))
    return out


def _profile_for(entry: Entry, device: str, dtype: str) -> dict:
    from dataclasses import asdict

    from core.eval.settings import resolve_eval_dtype
    from evaluation.profile import profile_model

    prof = profile_model(copy.deepcopy(entry.loaded.model), method=entry.loaded.method,
                         model_name=entry.loaded.clip_name or "?", num_frames=entry.settings.frames, device=device,
                         num_classes=10, iters=3, warmup=1,
                         dtype=resolve_eval_dtype(dtype, device, entry.loaded.run_test))
    return asdict(prof)


def _init_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _shard_specs(args: argparse.Namespace) -> list[tuple[str, str]]:
    """``(option, shards)`` for every shard set the arguments name."""
    specs = [("--val", getattr(args, "val", None)), ("--base-val", getattr(args, "base_val", None)),
             ("--novel-val", getattr(args, "novel_val", None))]
    for item in getattr(args, "target", []):
        spec, sep, shards = item.partition("=")
        if not sep or not spec or not shards:
            raise UserError(f"--target must look like NAME[:SPLIT]=SHARDS (e.g. hmdb51:1=shards/hmdb_val1); "
                            f"got {item!r}")
        specs.append(("--target", shards))
    return [(name, value) for name, value in specs if value]


def _check_args(args: argparse.Namespace) -> None:
    """Out-of-range values, malformed options and missing files are errors before any model loads."""
    from core.data.reader import expand_shards
    from core.data.sampling import get_sampler
    from core.weights import looks_like_path

    check_range("--frames", args.frames, minimum=1)
    check_range("--batch-size", args.batch_size, minimum=1)
    check_range("--workers", args.workers, minimum=0)
    check_range("--seed", args.seed, minimum=0)
    check_range("--wise-ft", args.wise_ft, minimum=0, maximum=1)
    if args.views:
        parse_views(args.views)
    if args.sampling:
        get_sampler(args.sampling)
    check_device("--device", args.device)
    if args.method:
        core.load_method(args.method)  # an unknown method: UnknownMethodError naming the installed ones
    sources = sum((bool(args.run), bool(args.official), bool(args.untrained)))
    if sources == 0 and args.method != "clip":
        raise UserError("name a model: --run DIR, --official FILE --method NAME, --untrained --method NAME, or "
                        "--method clip --pretrained WEIGHTS")
    if sources > 1:
        raise UserError("pass --run or a single --official / --untrained model, not both")
    for item in args.run:
        path = Path(_split_key(item)[1])
        if not path.exists():
            raise UserError(f"--run {path} does not exist; pass a core.train run directory or its model.pt")
    for name, value in (("--descriptions", args.descriptions), ("--wise-ft-clip", args.wise_ft_clip)):
        if value and looks_like_path(value) and not Path(value).is_file():
            raise UserError(f"{name} {value} is not a file; check the path")
    for path in map(Path, _classes_files(args).values()):
        if not path.is_file():
            raise UserError(f"--classes {path} is not a file; pass a class list (one name per line or id,name CSV)")
    for name, shards in _shard_specs(args):
        try:
            expand_shards(shards)
        except (FileNotFoundError, ValueError) as error:
            raise UserError(f"{name} {shards}: {error}") from None
    if args.output_dir and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        raise UserError(f"--output-dir {args.output_dir} is a file; pick a folder name")


def _main(argv: list[str]) -> dict[str, Any]:
    if argv[:1] == ["compare"]:  # its own parser: every option after the word is compare's
        from evaluation.compare import _main as compare_main

        return compare_main(argv[1:])
    args = _parser().parse_args(argv)
    _check_args(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    protocol = args.protocol
    rank, world = _init_distributed()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and world > 1 and ":" not in device:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    torch.manual_seed(args.seed or 0)
    # user shards are read first (cheap: a missing class list fails before a model loads); the models load before
    # the embedded synthetic dataset is built, so a bad checkpoint fails at once
    groups = eval_sets_from_args(args, protocol) if _shard_specs(args) else None
    sources = load_sources(args, protocol)
    groups = groups or eval_sets_from_args(args, protocol)
    entries = build_entries(args, protocol, groups, sources)
    options = RunOptions(device=device, batch_size=args.batch_size, num_workers=args.workers, seed=args.seed,
                         decoder=args.decoder,
                         descriptions_file=args.descriptions, progress=not args.quiet, rank=rank, world_size=world,
                         dtype=args.dtype, compile=args.compile)
    results = run_protocol(entries, groups, options)
    summary = summarize(protocol, entries, groups, results)
    profile = _profile_for(entries[0], device, args.dtype) if getattr(args, "profile", False) else None
    paths: dict[str, Path] = {}
    if rank == 0:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path(args.output_dir or Path("reports") / f"{protocol}-{entries[0].loaded.method}-{stamp}")
        paths = write_report(protocol, entries, groups, results, summary, out_dir, plots=not args.no_plots,
                             profile=profile)
        print((out_dir / "report.md").read_text())
        print(f"report: {paths['json']} and {paths['markdown']}")
    return {"summary": summary, "paths": paths, "results": results, "entries": entries}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """CLI entry point; returns ``{"summary", "paths", "results"}`` of the evaluation (compare: its result).

    Bad input: one line on stderr and ``SystemExit(2)`` (``--debug``: the exception with its traceback)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "python -m evaluation compare" if argv[:1] == ["compare"] else "python -m evaluation"
    return call_cli(_main, argv, prog=prog)
