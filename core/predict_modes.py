"""The practitioner modes of ``python -m core.predict`` beyond top-k labels: result files, feature export,
text-to-video search and long-video timelines (the work is in :mod:`core.features`, :mod:`core.search`,
:mod:`core.timeline`; this module wires them to the command-line arguments)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

__all__ = ["features_and_search", "features_input", "labels_for", "timeline", "write_results"]


def features_input(args: argparse.Namespace) -> Path | None:
    """The exported features file given as the input of ``--query`` (None when the inputs are videos).

    Raises:
        ValueError: a features file without ``--query``, or mixed with other inputs.
    """
    from core.features import FEATURE_SUFFIXES

    files = [Path(v) for v in args.videos if Path(v).suffix in FEATURE_SUFFIXES and Path(v).is_file()]
    if not files:
        return None
    if len(args.videos) > 1 or not args.query:
        raise ValueError(f"{files[0]} is a features file: search it alone with --query \"text\"")
    return files[0]


def labels_for(args: argparse.Namespace, loaded) -> list[str]:
    """``--labels``/``--labels-file``, else the run's own class list.

    Raises:
        ValueError: no labels given and the checkpoint carries none.
    """
    from core.predict import load_labels

    if args.labels is None and args.labels_file is None:
        if loaded.class_names:
            return list(loaded.class_names)
        raise ValueError('pass --labels "a,b,c" or --labels-file FILE (the checkpoint carries no class list)')
    return load_labels(args.labels, args.labels_file)


def write_results(results, path: str | os.PathLike) -> Path:
    """Per-video top-k results as CSV (``video,rank,label,prob,error``; one row per label) or JSON."""
    from core.io import atomic_write_json, atomic_write_text

    path = Path(path)
    if path.suffix == ".json":
        return atomic_write_json(path, [r.as_dict() for r in results], indent=2)
    if path.suffix != ".csv":
        raise ValueError(f"--output {path}: use a .csv or .json file name")
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["video", "rank", "label", "prob", "error"])
    for r in results:
        if r.error is not None:
            writer.writerow([r.video, "", "", "", r.error])
        for rank, (label, prob) in enumerate(zip(r.labels, r.probs), 1):
            writer.writerow([r.video, rank, label, f"{prob:.6f}", ""])
    return atomic_write_text(path, buffer.getvalue())


def _device(args: argparse.Namespace) -> str:
    return args.device or ("cuda" if torch.cuda.is_available() else "cpu")


def features_and_search(args: argparse.Namespace, loaded, videos: Sequence[Path], searched_file: Path | None,
                        views: tuple[int, int]) -> int:
    """``--features`` (export) and/or ``--query`` (rank by text); returns the exit status."""
    from core.features import embed_videos, load_features, save_features
    from core.search import rank_features, text_embeddings

    if searched_file is not None:
        features = load_features(searched_file)
        if features.method is not None and features.method != loaded.method:
            print(f"note: {searched_file} holds {features.method} features; the query is embedded by "
                  f"{loaded.method}", file=sys.stderr)
    else:
        if not videos:
            print("error: no video files found", file=sys.stderr)
            return 2
        features = embed_videos(loaded, videos, frames=args.frames, views=views, device=_device(args),
                                progress=len(videos) > 1)
        if not features.names:
            print(f"error: none of the {len(videos)} videos could be decoded", file=sys.stderr)
            return 1
    if args.features:
        out = save_features(args.features, features)
        print(f"features: {len(features.names)} videos x {features.embeddings.shape[1]} -> {out}", file=sys.stderr)
    if args.query:
        matches = rank_features(features.names, features.embeddings,
                                text_embeddings(loaded.model.to("cpu"), [args.query])[0], top_k=args.top_k)
        if args.json:
            print(json.dumps({"query": args.query, "results": [{"video": m.video, "score": round(m.score, 6)}
                                                               for m in matches]}, indent=2))
        else:
            for m in matches:
                print(f"{m.score:+.4f}  {m.video}")
        if args.output:
            from core.io import atomic_write_json

            atomic_write_json(args.output, {"query": args.query, "results": [m.__dict__ for m in matches]}, indent=2)
    return 0


def timeline(args: argparse.Namespace, loaded, videos: Sequence[Path], labels: list[str],
             descriptions: dict[str, str] | None, decoder: str = "decord") -> int:
    """``--timeline FILE.json``: one untrimmed video -> FILE.json + FILE.png, read with backend ``decoder``
    (resolved ``--decoder``); returns the exit status."""
    from core.data.decoding import DecodeError
    from core.timeline import video_timeline, write_timeline

    if len(videos) != 1:
        raise ValueError(f"--timeline takes one video; got {len(videos)}")
    try:
        result = video_timeline(loaded, videos[0], labels, window=args.window, stride=args.stride,
                                top_k=args.top_k, frames=args.frames, device=_device(args), descriptions=descriptions,
                                decoder=decoder)
    except DecodeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    json_path, png_path = write_timeline(result, args.timeline)
    if args.json:
        print(json.dumps({k: result[k] for k in ("video", "duration", "segments")}, indent=2))
    else:
        for seg in result["segments"]:
            print(f"{seg['start']:8.2f}-{seg['end']:8.2f} s  {seg['label']}")
    print(f"timeline: {json_path} and {png_path} ({len(result['windows'])} windows)", file=sys.stderr)
    return 0
