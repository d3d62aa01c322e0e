"""Long, untrimmed videos: slide the model over time and write a timeline of the top actions per window.

    python -m core.predict match.mp4 --checkpoint runs/vifi --timeline timeline.json --window 2 --stride 1

Windows of ``window`` seconds start every ``stride`` seconds (the last one ends at the video's end; a video
shorter than one window gives one window over all of it). Each window gives one clip of the model's frame
count at segment centres inside it, transformed as ``core.predict`` does (centre crop), classified against the
labels; the probabilities are the softmax over the labels. The video is read with the backend ``--decoder`` chose
(``core.data.decoders``: decord by default, pyav, torchcodec).

``timeline.json`` holds the video's fps and duration, the settings, the labels, every window's start/end and
top-k labels with probabilities, the full probability matrix (windows x labels) and ``segments``: runs of
consecutive windows sharing their top-1 label, merged. ``timeline.png`` (beside it) plots the probabilities of
the labels that are top-1 somewhere over time (points at window centres; a strip along the top colours each window
by its top-1 label).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["plot_timeline", "video_timeline", "window_starts", "write_timeline"]


def window_starts(duration: float, window: float, stride: float) -> list[float]:
    """Start times (s) of the windows over a ``duration`` s video; the last window ends at the video's end.

    Raises:
        ValueError: a non-positive window or stride.
    """
    if window <= 0 or stride <= 0:
        raise ValueError(f"--window and --stride must be positive seconds; got {window} and {stride}")
    if duration <= window:
        return [0.0]
    count = int(np.floor((duration - window) / stride + 1e-9)) + 1
    starts = [round(i * stride, 6) for i in range(count)]
    if starts[-1] + window < duration - 1e-6:  # cover the tail
        starts.append(round(duration - window, 6))
    return starts


def video_timeline(loaded, path: str | os.PathLike, labels: Sequence[str], *, window: float, stride: float,
                   top_k: int = 3, frames: int | None = None, device: str = "cpu",
                   descriptions: dict[str, str] | None = None, batch_size: int = 8,
                   decoder: str = "decord") -> dict[str, Any]:
    """The timeline of ``path`` (see the module docstring) as a JSON-ready dict.

    ``decoder`` is the video backend (``decord``, ``pyav``, ``torchcodec``: ``core.data.decoders``, resolved by the
    caller with ``resolve_decoder``, as ``--decoder`` of ``core.predict``); the video is opened once for all windows.

    Raises:
        core.data.decoding.DecodeError: the video cannot be opened or decoded.
        core.data.decoders.DecoderUnavailable: the backend cannot run here.
        ValueError: bad window/stride or labels.
    """
    from core.data.decoders import open_video
    from core.data.decoding import DecodeError
    from core.features import frames_for

    model = loaded.model.to(device).eval()
    num_frames = frames_for(loaded, frames)
    try:
        reader = open_video(str(path), decoder)
    except DecodeError as error:
        raise DecodeError(f"{path}: {error}") from None
    try:
        return _timeline(model, reader, path, loaded.method, labels, window=window, stride=stride, top_k=top_k,
                         num_frames=num_frames, device=device, descriptions=descriptions, batch_size=batch_size)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:  # PyAV: free the decoder now
            close()


def _timeline(model, reader, path, method: str, labels: Sequence[str], *, window: float, stride: float, top_k: int,
              num_frames: int, device: str, descriptions: dict[str, str] | None, batch_size: int) -> dict[str, Any]:
    from core.data.decoding import DecodeError
    from core.data.sampling import segment_center
    from core.data.transforms import EvalTransform
    from core.eval.sources import input_size_of

    total = len(reader)
    fps = float(reader.fps) or 25.0
    if total <= 0:
        raise DecodeError(f"{path}: no decodable frames")
    duration = total / fps
    starts = window_starts(duration, window, stride)
    texts = _class_texts(model, labels, descriptions)
    transform = EvalTransform(input_size_of(model), tuple(model.input_mean), tuple(model.input_std), num_crops=1)
    windows: list[dict[str, Any]] = []
    probs_rows: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            with torch.inference_mode():
                logits = model.classify(torch.stack(batch).to(device), texts).float().cpu()
            probs_rows.extend(logits.softmax(-1))
            batch.clear()

    for start in starts:
        end = min(start + window, duration)
        first = min(int(round(start * fps)), total - 1)
        last = max(first + 1, min(int(round(end * fps)), total))
        index = first + segment_center(last - first, num_frames)
        frames_u8 = torch.from_numpy(np.ascontiguousarray(reader.get_batch(np.clip(index, 0, total - 1).tolist())))
        batch.append(transform(frames_u8)[0])  # (T, 3, S, S)
        windows.append({"start": round(start, 3), "end": round(end, 3)})
        if len(batch) == batch_size:
            flush()
    flush()
    probs = torch.stack(probs_rows)  # (W, C)
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    k = min(top_k, len(labels))
    for row, item in zip(probs, windows):
        top = torch.topk(row, k)
        item["top"] = [{"label": labels[i], "prob": round(float(p), 6)} for p, i in
                       zip(top.values.tolist(), top.indices.tolist())]
    return {"video": str(path), "method": method, "fps": round(fps, 3), "duration": round(duration, 3),
            "window": window, "stride": stride, "frames": num_frames, "labels": list(labels), "windows": windows,
            "segments": _segments(windows), "probs": [[round(float(p), 6) for p in row] for row in probs]}


def _class_texts(model, labels: Sequence[str], descriptions: dict[str, str] | None) -> list[str]:
    try:
        return model.class_texts(list(labels), descriptions)
    except ValueError:
        if descriptions is not None:
            raise
        print(f"note: {type(model).__name__} expects class descriptions; using the labels themselves",
              file=sys.stderr)
        return model.class_texts(list(labels), {name: name for name in labels})


def _segments(windows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive windows with the same top-1 label merged into one segment."""
    out: list[dict[str, Any]] = []
    for item in windows:
        label = item["top"][0]["label"]
        if out and out[-1]["label"] == label and item["start"] <= out[-1]["end"]:
            out[-1]["end"] = item["end"]
            out[-1]["windows"] += 1
        else:
            out.append({"label": label, "start": item["start"], "end": item["end"], "windows": 1})
    return out


def plot_timeline(timeline: dict[str, Any], path: str | os.PathLike, max_labels: int = 10) -> Path:
    """A PNG of the probability over time of the labels that are top-1 in some window (at most ``max_labels``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    probs = np.asarray(timeline["probs"], dtype=float)  # (W, C)
    labels = timeline["labels"]
    winners = list(dict.fromkeys(int(i) for i in probs.argmax(1)))
    extra = [int(i) for i in np.argsort(-probs.max(0)) if int(i) not in winners]
    shown = (winners + extra)[:max_labels]
    centres = [(w["start"] + w["end"]) / 2 for w in timeline["windows"]]
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.25 * len(centres) + 4)), 3.5))
    for i in shown:
        ax.plot(centres, probs[:, i], marker="o", markersize=3, label=labels[i])
    colors = {i: line.get_color() for i, line in zip(shown, ax.get_lines())}
    for item, row in zip(timeline["windows"], probs):  # top-1 of each window as a strip along the top
        top = int(row.argmax())
        ax.hlines(1.02, item["start"], item["end"], colors=colors.get(top, "0.5"), linewidth=4,
                  transform=ax.get_xaxis_transform(), clip_on=False)
    ax.set_xlim(0, timeline["duration"])
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability")
    ax.set_title(f"{Path(timeline['video']).name}: window {timeline['window']} s, stride {timeline['stride']} s", pad=12)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_timeline(timeline: dict[str, Any], json_path: str | os.PathLike) -> tuple[Path, Path]:
    """``json_path`` and the PNG beside it (same stem); returns both paths."""
    from core.io import atomic_write_json

    json_path = Path(json_path)
    if json_path.suffix != ".json":
        raise ValueError(f"--timeline {json_path}: give a .json file name (the .png is written beside it)")
    atomic_write_json(json_path, timeline)
    return json_path, plot_timeline(timeline, json_path.with_suffix(".png"))
