"""The model-source flags every command shares, and what a run logged while training.

The sources themselves (a run, the authors' checkpoint, zero-shot CLIP, a fresh build) are resolved by
:func:`core.eval.sources.load_model`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from core.eval.sources import (  # noqa: F401 - re-exported: the names evaluation's modules and users import
    LoadedModel,
    build_untrained,
    find_clip,
    input_size_of,
    load_model,
    parse_options,
)

__all__ = ["LoadedModel", "add_model_arguments", "best_logged", "build_untrained", "find_clip", "input_size_of",
           "load_model", "model_from_args", "parse_options", "zero_shot_clip_file"]


def zero_shot_clip_file(loaded: LoadedModel) -> str | None:
    """The CLIP weights file the model started from, for WiSE-FT (``None`` when unknown); see
    :func:`core.runs.clip_weights_file`."""
    from core.runs import clip_weights_file

    return clip_weights_file(loaded.clip_name, loaded.clip_pretrained)


def best_logged(run_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The best validation top-1 a run logged while training (``metrics.jsonl`` ``val`` events), or ``None``.

    The split is the run's first evaluation split (``val`` on real data, ``val_base`` on the synthetic data).
    Returns ``{"top1": percent, "step": step, "split": name, "final_top1": percent of the last val event}``.
    Runs written before accuracies were logged in percent (rows without ``"unit": "%"``) hold fractions.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return None
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line cut by a kill mid-write
            continue
        if row.get("event") in ("val", "final"):
            scale = 1.0 if row.get("unit") == "%" else 100.0
            rows.append({k: v * scale if k.endswith("/top1") and isinstance(v, (int, float)) else v
                         for k, v in row.items()})
    for split in ("val", "val_base"):
        key = f"{split}/top1"
        scored = [r for r in rows if isinstance(r.get(key), (int, float))]
        if scored:
            best = max(scored, key=lambda r: r[key])
            return {"top1": best[key], "step": best.get("step"), "split": split, "final_top1": scored[-1][key]}
    return None


def add_model_arguments(parser: argparse.ArgumentParser, *, method_required: bool = False) -> None:
    """Add the model-source flags every command shares."""
    group = parser.add_argument_group("model source (one of)")
    group.add_argument("--run", help="core.train run directory or its model.pt")
    group.add_argument("--official", help="the authors' released checkpoint: a file (with --method) or a registry "
                                          "name (python -m core.train --list-weights)")
    group.add_argument("--untrained", action="store_true", help="fresh build of --method on --model (smoke tests)")
    group.add_argument("--method", required=method_required, help="installed method name (clip, vifi, t2l, ...)")
    group.add_argument("--model", dest="clip_model", help="CLIP architecture or preset (ViT-B-16, tiny, test)")
    group.add_argument("--pretrained", help="CLIP weights file (zero-shot --method clip, or the CLIP under --untrained)")
    group.add_argument("--clip", dest="clip_file", help="OpenAI CLIP file passed as clip= to --official converters")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="method option (YAML value), repeatable")


def model_from_args(args: argparse.Namespace, *, num_frames: int | None = None) -> LoadedModel:
    """:func:`load_model` from the flags of :func:`add_model_arguments`."""
    return load_model(run=args.run, official=args.official, method=args.method, clip_model=args.clip_model,
                      pretrained=args.pretrained, clip_file=args.clip_file, untrained=args.untrained,
                      num_frames=num_frames or getattr(args, "frames", None), options=parse_options(args.option))
