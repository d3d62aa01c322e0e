"""PNG plots of evaluation results (matplotlib, headless Agg backend).

* :func:`plot_confusion_matrix`: row-normalised confusion matrix of one evaluation;
* :func:`plot_per_class_accuracy`: top-1 per class, sorted, with the mean;
* :func:`plot_tradeoff`: accuracy against GFLOPs per view or clips/s across methods.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display on training nodes or CI

import matplotlib.pyplot as plt  # noqa: E402
from torch import Tensor  # noqa: E402

__all__ = ["plot_confusion_matrix", "plot_per_class_accuracy", "plot_tradeoff"]


def _save(fig, path: str | os.PathLike) -> Path:
    from core.io import atomic_write

    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=120, bbox_inches="tight"))
    finally:
        plt.close(fig)


def _short(name: str, width: int = 28) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def plot_confusion_matrix(matrix: Tensor, class_names: Sequence[str], path: str | os.PathLike, *,
                          title: str = "") -> Path:
    """Save the row-normalised confusion matrix (rows = true class) as a PNG.

    Class labels are drawn only up to 60 classes; larger matrices show the colours alone.
    """
    counts = matrix.double()
    rows = counts.sum(dim=1, keepdim=True).clamp(min=1)
    norm = (counts / rows).numpy()
    n = len(class_names)
    side = min(max(4.0, 0.28 * n + 2), 24.0)
    fig, ax = plt.subplots(figsize=(side, side))
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if n <= 60:
        labels = [_short(c) for c in class_names]
        ax.set_xticks(range(n), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(n), labels, fontsize=7)
        if n <= 20:
            for i in range(n):
                for j in range(n):
                    if counts[i, j] > 0:
                        ax.text(j, i, int(counts[i, j]), ha="center", va="center", fontsize=6,
                                color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or "confusion matrix")
    return _save(fig, path)


def plot_per_class_accuracy(accuracy: Tensor, class_names: Sequence[str], path: str | os.PathLike, *,
                            title: str = "", highlight: Sequence[int] = ()) -> Path:
    """Save a bar chart of per-class top-1 (percent), sorted descending; ``highlight`` ids drawn in orange."""
    present = [(float(a), i) for i, a in enumerate(accuracy.tolist()) if a == a]  # drop NaN (no sample)
    present.sort(reverse=True)
    n = len(present)
    fig, ax = plt.subplots(figsize=(max(6.0, min(0.22 * n + 2, 40.0)), 4.5))
    marked = set(highlight)
    colors = ["tab:orange" if i in marked else "tab:blue" for _, i in present]
    ax.bar(range(n), [a for a, _ in present], color=colors)
    mean = sum(a for a, _ in present) / n if n else float("nan")
    ax.axhline(mean, color="black", linestyle="--", linewidth=1, label=f"mean {mean:.1f}%")
    if n <= 80:
        ax.set_xticks(range(n), [_short(class_names[i]) for _, i in present], rotation=90, fontsize=7)
    ax.set_ylim(0, 100)
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(title or "per-class accuracy")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_tradeoff(points: Sequence[dict], x: str, path: str | os.PathLike, *, y: str = "top1",
                  xlabel: str = "", ylabel: str = "top-1 accuracy (%)", title: str = "",
                  log_x: bool = False, ties: Sequence[tuple[str, str]] = ()) -> Path:
    """Save a scatter of ``y`` against ``x`` with one labelled point per method and its spread.

    Args:
        points: dicts holding ``name``, ``x`` and ``y`` keys (missing or NaN values are left out); an optional
            ``<key>_err`` = ``(low, high)`` is drawn as an error bar on that axis (e.g. the 95 % interval of
            an accuracy, the IQR of clips/s), so noise is not read as a ranking.
        x, y: keys to plot, e.g. ``gflops`` or ``clips_per_s`` against ``top1``.
        ties: pairs of names whose ``x`` values lie within each other's spread; they are joined by a dotted
            line and listed under the plot as "not distinguishable".
    """
    fig, ax = plt.subplots(figsize=(6.0, 4.5))
    drawn = {}
    for point in points:
        px, py = point.get(x), point.get(y)
        if px is None or py is None or px != px or py != py:
            continue
        xerr, yerr = _bar(px, point.get(f"{x}_err")), _bar(py, point.get(f"{y}_err"))
        ax.errorbar([px], [py], xerr=xerr, yerr=yerr, fmt="o", markersize=6, capsize=3)
        ax.annotate(point["name"], (px, py), textcoords="offset points", xytext=(5, 4), fontsize=8)
        drawn[point["name"]] = (px, py)
    shown = [(a, b) for a, b in ties if a in drawn and b in drawn]
    for a, b in shown:
        ax.plot([drawn[a][0], drawn[b][0]], [drawn[a][1], drawn[b][1]], linestyle=":", color="grey", linewidth=1)
    if shown:
        fig.text(0.01, -0.02, "within the spread (dotted, not a ranking): " + ", ".join(f"{a} ~ {b}" for a, b in shown),
                 fontsize=7, ha="left", va="top")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def _bar(value: float, span: Sequence[float] | None) -> list[list[float]] | None:
    """matplotlib's asymmetric error ``[[below], [above]]`` for ``value`` in ``span = (low, high)``; None if unknown."""
    if span is None:
        return None
    low, high = span
    if low != low or high != high:
        return None
    return [[max(value - low, 0.0)], [max(high - value, 0.0)]]
