"""``python -m core.predict``: what action is in my video, among my labels?

    python -m core.predict clip.mp4 --labels "juggling balls,riding a bike,playing guitar" \\
        --method tcclip --checkpoint zero_shot_k400.pth --clip ViT-B-16.pt
    python -m core.predict videos/ --labels-file labels.txt --checkpoint runs/vifi --top-k 3 --json
    python -m core.predict clip.mp4 --labels "a,b" --method clip --checkpoint openai          # zero-shot CLIP

``--checkpoint`` is a ``core.train`` run directory or its ``model.pt`` (method, frame count and class list come
from the run: ``--method`` and ``--labels`` are optional), a released checkpoint's name (``python -m core.train
--list-weights``), for ``--method clip`` a CLIP weights file or an open_clip tag (``openai``: zero-shot CLIP),
otherwise the authors' released file of ``--method`` (converted by the method's ``load_official``; ``--clip`` is
passed to converters that need OpenAI's CLIP, e.g. TC-CLIP).

Beyond top-k labels (``--output results.csv`` / ``.json`` writes them per video)::

    python -m core.predict videos/ --checkpoint runs/vifi --features feats.npz          # video embeddings
    python -m core.predict videos/ --checkpoint runs/vifi --query "a person juggling"   # text-to-video search
    python -m core.predict feats.npz --checkpoint runs/vifi --query "a person juggling"  # ... over exported ones
    python -m core.predict match.mp4 --checkpoint runs/vifi --timeline t.json --window 2 --stride 1  # long video

Any file the decoder can read works (mp4, avi, mkv, webm, mov, ...; ``--decoder`` decord, the default, pyav or
torchcodec: ``core.data.decoders``); a folder is searched recursively for
video files and processed with a progress bar. A file that cannot be decoded is reported on stderr and
skipped; the exit status is 1 only when no video could be classified. Bad input (a missing file, a checkpoint
that is not one, an out-of-range value) is one line on stderr naming the problem and the fix, exit status 2
(``--debug`` shows the traceback).

Each video gives one clip of the model's frame count at segment centres (``--views 4x3`` for the
multi-view test), resized/cropped and normalised as the method's evaluation does; the probabilities are
the softmax over the given labels (averaged over views).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["Prediction", "classify_videos", "find_videos", "load_labels", "load_predictor", "main", "read_clip"]

# Extensions a folder is searched for (explicit file arguments are tried whatever their extension).
VIDEO_SUFFIXES = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts",
                  ".ogv", ".gif"}


@dataclass
class Prediction:
    """Top-k result for one video (``error`` set, ``labels`` empty, when it could not be classified)."""

    video: str
    labels: list[str] = field(default_factory=list)
    probs: list[float] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"video": self.video, "error": self.error}
        return {"video": self.video, "predictions": [{"label": lab, "prob": p} for lab, p in zip(self.labels, self.probs)]}


def load_labels(labels: str | None = None, labels_file: str | os.PathLike | None = None) -> list[str]:
    """Labels from a comma-separated string or a file (``core.io.read_class_list``: one per line, an ``id,name``
    CSV, a JSON list, or a catalog reference such as ``ucf101``).

    Raises:
        ValueError: neither or both given, fewer than 2 labels, or duplicates.
        FileNotFoundError: the file does not exist.
    """
    if (labels is None) == (labels_file is None):
        raise ValueError('pass exactly one of --labels "a,b,c" or --labels-file FILE')
    if labels is not None:
        names = [x.strip() for x in labels.split(",") if x.strip()]
    else:
        from core.io import read_class_list

        names = read_class_list(labels_file)
    if len(names) < 2:
        raise ValueError(f"need at least 2 labels to choose between; got {names}")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate labels {dupes}")
    return names


def find_videos(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Expand the arguments: files as given, folders searched recursively for video extensions (sorted).

    Raises:
        FileNotFoundError: an argument that does not exist.
    """
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES))
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{str(path)!r} is neither a video file nor a folder")
    return out


def read_clip(path: str | os.PathLike, *, num_frames: int, input_size: int, mean: Sequence[float],
              std: Sequence[float], clips: int = 1, crops: int = 1, sampling: str = "segment_center",
              seed: int = 0, timeout: float | None = 60.0, decoder: str = "decord") -> torch.Tensor:
    """Decode, sample and transform one video file into ``(V, T, 3, S, S)`` normalised views (crop-major).

    Raises:
        core.data.decoding.DecodeError: the file cannot be decoded (or decoding exceeds ``timeout`` s).
    """
    from core.data.decoding import read_frames
    from core.data.sampling import get_sampler, is_random, sample_views
    from core.data.transforms import EvalTransform

    def indices(available: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if clips == 1 and not is_random(sampling):
            return get_sampler(sampling)(available, num_frames, rng)[None]
        return sample_views(sampling, available, num_frames, clips, rng)

    frames = read_frames(str(path), indices, timeout=timeout, decoder=decoder).frames  # (clips, T, H, W, 3) uint8
    transform = EvalTransform(input_size, tuple(mean), tuple(std), num_crops=crops)
    views = torch.stack([transform(clip) for clip in frames])  # (clips, crops, T, 3, S, S)
    return views.transpose(0, 1).flatten(0, 1)


def load_predictor(method: str | None, checkpoint: str | os.PathLike | None = None, *, clip: str | None = None,
                   options: dict[str, Any] | None = None, num_frames: int | None = None,
                   clip_model: str | None = None):
    """The eval-mode model a ``--method``/``--checkpoint`` pair names (see the module docstring).

    ``load_predictor("runs/vifi")`` (one argument: the checkpoint) lets the checkpoint say its method.

    ``checkpoint``: a run directory or its ``model.pt`` (the method comes from the run), a released
    checkpoint's registry name (``python -m core.train --list-weights``; the method comes from the registry),
    an authors' file (``method`` required), or for ``method="clip"`` a CLIP weights file or an open_clip tag
    (``openai``; architecture ``clip_model``, default ViT-B-16).

    Raises:
        FileNotFoundError: neither a file, a run, nor a registry name.
        ValueError: ``method`` contradicts the checkpoint, or is needed and missing.
    """
    from core.eval.sources import load_model
    from core.weights import describe_source, looks_like_path

    if checkpoint is None:
        method, checkpoint = None, method
    text = os.fspath(checkpoint)
    if method == "clip" and not looks_like_path(text) and not _registry_name(text):
        return load_model(method="clip", pretrained=text, clip_model=clip_model or "ViT-B-16",
                          num_frames=num_frames, options=options)
    kind, said = describe_source(text)
    if said is not None and method is not None and said != method:
        raise ValueError(f"{text} holds a {said!r} model, not {method!r}; pass --method {said} (or omit --method)")
    if kind == "run":
        return load_model(run=Path(text))
    if method == "clip":
        return load_model(method="clip", pretrained=text, clip_model=clip_model, num_frames=num_frames or 8,
                          options=options)
    if method is None and said is None:
        raise ValueError(f"cannot tell which method wrote {text}: pass --method (clip for a CLIP weights file, or "
                         f"the method whose authors released it, e.g. tcclip)")
    return load_model(official=text, method=method or said, clip_file=clip, options=options)


def _registry_name(text: str) -> bool:
    from core.weights import is_weights_name

    return is_weights_name(text)


def classify_videos(loaded, videos: Sequence[Path], labels: Sequence[str], *, top_k: int = 5,
                    views: tuple[int, int] = (1, 1), frames: int | None = None, device: str = "cpu",
                    descriptions: dict[str, str] | None = None, progress: bool = False,
                    decoder: str = "decord", dtype: torch.dtype = torch.float32) -> list[Prediction]:
    """Top-k labels with probabilities for each video; undecodable videos come back with ``error`` set.

    Frames per clip: ``core.eval.settings.resolve_num_frames`` (the model's fixed count, ``frames``, the run's,
    the method's fully-supervised test setting, 8).
    """
    from tqdm import tqdm

    from core.data.decoding import DecodeError
    from core.eval.metrics import aggregate_views
    from core.eval.sources import input_size_of
    from core.features import frames_for
    from core.precision import cast_parameters

    model = cast_parameters(loaded.model, dtype, device).eval()
    num_frames = frames_for(loaded, frames)
    clips, crops = views
    sampling = "segment_center" if clips == 1 else "segment"
    run_descriptions = getattr(loaded, "descriptions", None)
    if descriptions is None and run_descriptions and all(name in run_descriptions for name in labels):
        descriptions = dict(run_descriptions)  # the labels are the run's classes: use its descriptions
    try:
        texts = model.class_texts(list(labels), descriptions)
    except ValueError:
        if descriptions is not None:
            raise
        # T2L classifies with descriptions; with plain labels the label is its own description.
        texts = model.class_texts(list(labels), {name: name for name in labels})
        print(f"note: {loaded.method} expects class descriptions; using the labels themselves "
              f"(pass --descriptions FILE for better results)", file=sys.stderr)
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    k = min(top_k, len(labels))
    out: list[Prediction] = []
    for path in tqdm(videos, desc="videos", unit="video", disable=not progress):
        try:
            clip = read_clip(path, num_frames=int(num_frames), input_size=input_size_of(model), mean=model.input_mean,
                             std=model.input_std, clips=clips, crops=crops, sampling=sampling, decoder=decoder)
        except DecodeError as error:
            print(f"skipping {path}: {error}", file=sys.stderr)
            out.append(Prediction(str(path), error=str(error)))
            continue
        with torch.inference_mode():
            logits = model.classify(clip.to(device=device, dtype=dtype), texts).float().cpu()  # (V, C)
        probs = aggregate_views(logits[None], "softmax_mean")[0]
        top = torch.topk(probs, k)
        out.append(Prediction(str(path), [labels[i] for i in top.indices.tolist()], top.values.tolist()))
    return out


def _parser() -> argparse.ArgumentParser:
    from core.cli import ArgumentParser

    parser = ArgumentParser(prog="python -m core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", help="video files or folders (for --query also a --features file)")
    parser.add_argument("--labels", help='comma-separated candidate labels, e.g. "juggling,dancing,cooking" '
                                         "(default: a run's own class list)")
    parser.add_argument("--labels-file", help="labels, one per line (or an id,name CSV, or a JSON list)")
    parser.add_argument("--method", help="installed method (clip, vifi, t2l, tcclip, ila, stan); only needed when "
                                         "the checkpoint cannot say (an authors' file, a CLIP file)")
    parser.add_argument("--checkpoint", required=True, help="run dir / model.pt, a released checkpoint's name "
                        "(--list-weights of core.train), an authors' file, or a CLIP file / open_clip tag (clip)")
    parser.add_argument("--model", dest="clip_model", help="CLIP architecture for --method clip (default ViT-B-16 "
                                                           "with a tag such as openai; inferred from a file)")
    parser.add_argument("--clip", help="OpenAI CLIP file (or tag: openai) for converters that need it (TC-CLIP)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option")
    parser.add_argument("--descriptions", help="description CSV/JSON for methods that classify with descriptions")
    parser.add_argument("--top-k", type=int, default=5, help="labels to print per video, >= 1 (default 5; at most the number of labels)")
    parser.add_argument("--views", default="1x1", help="temporal clips x spatial crops, crops 1 or 3 (default 1x1)")
    parser.add_argument("--frames", type=int, help="frames per clip for models that do not fix it (default: the run's, else the "
                        "method's fully-supervised test setting; core.eval.settings.resolve_num_frames)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto",
                        help="precision (default auto: bf16 where the hardware has it, fp32 elsewhere; fp32 on CUDA "
                             "allows TF32); the JSON output names it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--decoder", default="decord", choices=["decord", "pyav", "torchcodec"],
                        help="video decoder (default decord; pyav when decord cannot be imported)")
    parser.add_argument("--output", metavar="FILE", help="also write the per-video results to FILE (.csv or .json)")
    tools = parser.add_argument_group("features, search and long videos")
    tools.add_argument("--features", metavar="FILE", help="export the L2-normalised video embeddings with their file "
                                                         "names to FILE (.npz or .safetensors)")
    tools.add_argument("--query", help='rank the videos (or a --features file given as the input) by this text, '
                                       'e.g. "a person juggling"; prints the --top-k best')
    tools.add_argument("--timeline", metavar="FILE.json", help="long-video mode: slide the model over one untrimmed "
                       "video and write the top actions per window to FILE.json and a plot to FILE.png")
    tools.add_argument("--window", type=float, default=2.0, help="timeline window in seconds, > 0 (default 2)")
    tools.add_argument("--stride", type=float, default=1.0, help="timeline stride in seconds, > 0 (default 1)")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """Out-of-range values and unusable output names are errors before anything loads (never replaced)."""
    from core.cli import UserError, check_device, check_range

    check_range("--top-k", args.top_k, minimum=1)
    check_range("--frames", args.frames, minimum=1)
    for name, value in (("--window", args.window), ("--stride", args.stride)):
        if not value > 0:  # also NaN
            raise UserError(f"{name} must be > 0 seconds, got {value}")
    check_device("--device", args.device)
    if args.output and Path(args.output).suffix.lower() not in (".csv", ".json"):
        raise UserError(f"--output {args.output}: use a .csv or .json file name")
    from core.features import FEATURE_SUFFIXES

    if args.features and Path(args.features).suffix not in FEATURE_SUFFIXES:
        raise UserError(f"--features {args.features}: use a .npz or .safetensors file name")
    if args.timeline and (args.features or args.query):
        raise UserError("--timeline cannot be combined with --features or --query; run them separately")
    for name, value in (("--output", args.output), ("--features", args.features), ("--timeline", args.timeline)):
        if value and Path(value).is_dir():
            raise UserError(f"{name} {value} is a folder; pass a file name")


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    _check_args(args)
    from core import predict_modes
    from core.cli import UserError
    from core.data.decoders import resolve_decoder
    from core.eval.settings import parse_views
    from core.eval.sources import parse_options
    from core.eval.texts import read_description_file

    clips, crops = parse_views(args.views)
    searched_file = predict_modes.features_input(args)
    videos = [] if searched_file else find_videos(args.videos)
    if not searched_file and not videos:
        raise UserError(f"no video files found in {', '.join(args.videos)}; pass video files or folders holding "
                        f"them ({', '.join(sorted(VIDEO_SUFFIXES))})")
    if args.labels is not None or args.labels_file is not None:
        load_labels(args.labels, args.labels_file)  # bad labels fail before a model loads
    if args.descriptions and not Path(args.descriptions).is_file():
        raise UserError(f"--descriptions {args.descriptions} is not a file; pass a description CSV/JSON")
    loaded = load_predictor(args.method, args.checkpoint, clip=args.clip, options=parse_options(args.option),
                            num_frames=args.frames, clip_model=args.clip_model)
    if args.features or args.query:
        return predict_modes.features_and_search(args, loaded, videos, searched_file, (int(clips), int(crops)))
    labels = predict_modes.labels_for(args, loaded)
    descriptions = read_description_file(args.descriptions, labels) if args.descriptions else None
    decoder = resolve_decoder(args.decoder)  # an unusable backend is a clear error (or decord -> pyav)
    if args.timeline:
        return predict_modes.timeline(args, loaded, videos, labels, descriptions, decoder)
    from core.eval.settings import resolve_eval_dtype
    from core.precision import dtype_name

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = resolve_eval_dtype(args.dtype, device)
    folder = any(Path(v).is_dir() for v in args.videos)
    results = classify_videos(loaded, videos, labels, top_k=args.top_k, views=(clips, crops),
                              frames=args.frames, device=device, descriptions=descriptions,
                              progress=folder or len(videos) > 1, decoder=decoder, dtype=dtype)
    if args.output:
        print(f"results: {predict_modes.write_results(results, args.output)}", file=sys.stderr)
    if args.json:
        print(json.dumps([{**r.as_dict(), "precision": dtype_name(dtype)} for r in results], indent=2))
    else:
        for r in results:
            if r.error is not None:
                continue
            print(r.video)
            for label, prob in zip(r.labels, r.probs):
                print(f"  {prob * 100:6.2f}%  {label}")
    failed = sum(r.error is not None for r in results)
    if failed:
        print(f"{failed} of {len(results)} videos could not be decoded and were skipped", file=sys.stderr)
    return 1 if failed == len(results) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (2: bad input, one line on stderr; ``--debug``: its traceback)."""
    from core.cli import run_cli

    return run_cli(_main, argv, prog="python -m core.predict")


if __name__ == "__main__":
    sys.exit(main())
