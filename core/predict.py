"""``python -m core.predict``: what action is in my video, among my labels?

    python -m core.predict clip.mp4 --labels "juggling balls,riding a bike,playing guitar" \\
        --method tcclip --checkpoint zero_shot_k400.pth --clip ViT-B-16.pt
    python -m core.predict videos/ --labels-file labels.txt --method vifi --checkpoint runs/vifi --top-k 3 --json
    python -m core.predict clip.mp4 --labels "a,b" --method clip --checkpoint ViT-B-16.pt     # zero-shot CLIP

``--checkpoint`` is a ``core.train`` run directory or its ``model.pt``; for ``--method clip`` a CLIP weights
file (zero-shot CLIP); otherwise the authors' released checkpoint of ``--method`` (converted by the method's
``load_official``; ``--clip`` is passed to converters that need OpenAI's CLIP file, e.g. TC-CLIP).

Any file decord can read works (mp4, avi, mkv, webm, mov, ...); a folder is searched recursively for
video files and processed with a progress bar. A file that cannot be decoded is reported on stderr and
skipped; the exit status is 1 only when no video could be classified.

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
              seed: int = 0, timeout: float | None = 60.0) -> torch.Tensor:
    """Decode, sample and transform one video file into ``(V, T, 3, S, S)`` normalised views (crop-major).

    Raises:
        core.data.decoding.DecodeError: the file cannot be decoded (or decoding exceeds ``timeout`` s).
    """
    from core.data.decoding import DecodeError, run_bounded
    from core.data.sampling import get_sampler, is_random, sample_views
    from core.data.transforms import EvalTransform

    def decode() -> torch.Tensor:
        import decord

        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        except Exception as error:  # decord raises DECORDError or RuntimeError for anything it cannot open
            raise DecodeError(f"decord cannot open it: {str(error).strip().splitlines()[0][:200]}") from None
        available = len(reader)
        if available <= 0:
            raise DecodeError("no decodable frames")
        rng = np.random.default_rng(seed)
        if clips == 1 and not is_random(sampling):
            index = get_sampler(sampling)(available, num_frames, rng)[None]
        else:
            index = sample_views(sampling, available, num_frames, clips, rng)
        unique, inverse = np.unique(index, return_inverse=True)
        try:
            frames = torch.from_numpy(reader.get_batch(unique.tolist()).asnumpy())
        except Exception as error:
            raise DecodeError(f"decord failed to decode frames: {str(error).strip().splitlines()[0][:200]}") from None
        return frames[torch.from_numpy(inverse.reshape(-1))].reshape(*index.shape, *frames.shape[1:])

    frames = run_bounded(decode, timeout, f"decoding {path}")  # (clips, T, H, W, 3) uint8
    transform = EvalTransform(input_size, tuple(mean), tuple(std), num_crops=crops)
    views = torch.stack([transform(clip) for clip in frames])  # (clips, crops, T, 3, S, S)
    return views.transpose(0, 1).flatten(0, 1)


def load_predictor(method: str, checkpoint: str | os.PathLike, *, clip: str | None = None,
                   options: dict[str, Any] | None = None, num_frames: int | None = None):
    """The eval-mode model a ``--method``/``--checkpoint`` pair names (see the module docstring)."""
    from core.eval.sources import load_model
    from core.runs import is_run_model

    path = Path(checkpoint)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {str(path)!r} not found")
    if is_run_model(path):
        loaded = load_model(run=path)
        if loaded.method != method:
            raise ValueError(f"{path} holds a {loaded.method!r} model, not {method!r}; pass --method {loaded.method}")
        return loaded
    if method == "clip":
        return load_model(method="clip", pretrained=path, clip_model=None, num_frames=num_frames, options=options)
    return load_model(official=path, method=method, clip_file=clip, options=options)


def classify_videos(loaded, videos: Sequence[Path], labels: Sequence[str], *, top_k: int = 5,
                    views: tuple[int, int] = (1, 1), frames: int | None = None, device: str = "cpu",
                    descriptions: dict[str, str] | None = None, progress: bool = False,
                    dtype: torch.dtype = torch.float32) -> list[Prediction]:
    """Top-k labels with probabilities for each video; undecodable videos come back with ``error`` set.

    Frames per clip: ``core.eval.settings.resolve_num_frames`` (the model's fixed count, ``frames``, the run's,
    the method's fully-supervised test setting, 8).
    """
    from tqdm import tqdm

    from core.data.decoding import DecodeError
    from core.eval.metrics import aggregate_views
    from core.eval.settings import method_settings, resolve_num_frames
    from core.eval.sources import input_size_of

    model = loaded.model.to(device=device, dtype=dtype).eval()
    num_frames, _ = resolve_num_frames(fixed=model.num_frames, requested=frames, stored=loaded.trained_frames,
                                       method_default=method_settings(loaded.method)[0]["fully-supervised"]["frames"])
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
    k = max(1, min(top_k, len(labels)))
    out: list[Prediction] = []
    for path in tqdm(videos, desc="videos", unit="video", disable=not progress):
        try:
            clip = read_clip(path, num_frames=int(num_frames), input_size=input_size_of(model), mean=model.input_mean,
                             std=model.input_std, clips=clips, crops=crops, sampling=sampling)
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
    parser = argparse.ArgumentParser(prog="python -m core.predict", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+", help="video files or folders")
    parser.add_argument("--labels", help='comma-separated candidate labels, e.g. "juggling,dancing,cooking"')
    parser.add_argument("--labels-file", help="labels, one per line (or an id,name CSV, or a JSON list)")
    parser.add_argument("--method", required=True, help="installed method (clip, vifi, t2l, tcclip, ila, stan)")
    parser.add_argument("--checkpoint", required=True, help="run dir / model.pt, authors' checkpoint, or CLIP file")
    parser.add_argument("--clip", help="OpenAI CLIP file for converters that need it (TC-CLIP)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="method option")
    parser.add_argument("--descriptions", help="description CSV/JSON for methods that classify with descriptions")
    parser.add_argument("--top-k", type=int, default=5, help="labels to print per video (default 5)")
    parser.add_argument("--views", default="1x1", help="temporal clips x spatial crops (default 1x1)")
    parser.add_argument("--frames", type=int, help="frames per clip for models that do not fix it (default: the run's, else the "
                        "method's fully-supervised test setting; core.eval.settings.resolve_num_frames)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto",
                        help="precision (default auto: bf16 where the hardware has it, fp32 elsewhere; fp32 on CUDA "
                             "allows TF32); the JSON output names it")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    from core.eval.settings import parse_views
    from core.eval.sources import parse_options
    from core.eval.texts import read_description_file

    try:
        labels = load_labels(args.labels, args.labels_file)
        videos = find_videos(args.videos)
        clips, crops = parse_views(args.views)
        loaded = load_predictor(args.method, args.checkpoint, clip=args.clip, options=parse_options(args.option),
                                num_frames=args.frames)
        descriptions = read_description_file(args.descriptions, labels) if args.descriptions else None
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not videos:
        print("error: no video files found", file=sys.stderr)
        return 2
    from core.eval.settings import resolve_eval_dtype
    from core.precision import dtype_name

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dtype = resolve_eval_dtype(args.dtype, device)
        folder = any(Path(v).is_dir() for v in args.videos)
        results = classify_videos(loaded, videos, labels, top_k=args.top_k, views=(clips, crops),
                                  frames=args.frames, device=device, descriptions=descriptions,
                                  progress=folder or len(videos) > 1, dtype=dtype)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
