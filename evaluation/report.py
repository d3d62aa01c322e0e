"""Reports: JSON (everything) and markdown tables laid out like the papers' tables.

Table layouts follow TC-CLIP's (ECCV 2024) tables, which T2L's share:

* zero-shot (TC-CLIP Table 2): ``Method | WE | <target> ... | <target> (top-5) ... | All (top-1)``,
  cells ``mean ± std`` over the splits;
* few-shot (Table 3): ``Method | K=2 | K=4 | K=8 | K=16`` per dataset;
* base-to-novel (Table 4, T2L Table 2): ``Method | Base | Novel | HM`` per dataset;
* fully supervised (Table 5): ``Method | Frames | Views | Top-1 | Top-5 | GFLOPs | clips/s``;
* compare: one row per method with accuracy and efficiency side by side.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from core.io import atomic_write_text

__all__ = ["fmt", "fmt_mean_std", "markdown_table", "write_json", "write_text"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null says "not available"
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically (``core.io``); NaN becomes null."""
    return atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically (``core.io``)."""
    return atomic_write_text(path, text)


def fmt(value: float | None, digits: int = 1) -> str:
    """A percentage or figure with ``digits`` decimals; ``–`` when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def fmt_mean_std(mean: float | None, std: float | None, n: int, digits: int = 1) -> str:
    """``mean ± std`` when averaged over several splits, else just the value."""
    if n <= 1 or std is None:
        return fmt(mean, digits)
    return f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def fmt_count(value: int | None) -> str:
    """Parameter counts the way the papers print them (``5.2M``, ``149.6M``, ``87K``)."""
    if value is None:
        return "–"
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}K"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, align: Sequence[str] | None = None) -> str:
    """A GitHub markdown table; ``align`` per column: ``l``, ``r`` or ``c`` (default: first left, rest right)."""
    align = align or ["l"] + ["r"] * (len(header) - 1)
    marks = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(str(h) for h in header) + " |",
             "|" + "|".join(marks[a] for a in align) + "|"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {list(row)} has {len(row)} cells; the header has {len(header)}")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# Protocol tables


def _row_name(method: str, entry: Any) -> str:
    return f"{method} ({entry.label})" if entry.label else method


def _ms(cell: Mapping[str, Any]) -> str:
    return fmt_mean_std(cell["mean"], cell["std"], cell["n"])


def zero_shot_table(method: str, entries: Sequence[Any], summary: Mapping[str, Any]) -> str:
    """TC-CLIP Table 2 layout: ``Method | WE | <target> ... | <target> (top-5) ... | All (top-1)``."""
    groups = list(next(iter(summary.values()))["targets"]) if summary else []
    header = ["Method", "WE", *groups, *[f"{g} (top-5)" for g in groups], "All (top-1)"]
    rows = []
    for entry in entries:
        row = summary[entry.label]
        we = f"✓ (α={entry.settings.wise_ft})" if entry.variant == "WE" else "✗"
        rows.append([_row_name(method, entry), we, *[_ms(row["targets"][g]["top1"]) for g in groups],
                     *[_ms(row["targets"][g]["top5"]) for g in groups], fmt(row["all_top1"])])
    return markdown_table(header, rows, align=["l", "c"] + ["r"] * (len(header) - 2))


def few_shot_table(method: str, entries: Sequence[Any], summary: Mapping[str, Any], group: str) -> str:
    """TC-CLIP Table 3 layout: one row per variant, one column per K (top-1)."""
    variants: dict[str, dict[str, float]] = {}
    shots: list[str] = []
    for entry in entries:
        key = entry.key or "-"
        if key not in shots:
            shots.append(key)
        variants.setdefault(entry.variant, {})[key] = summary[entry.label]["top1"]
    header = ["Method", *[f"{group} K={k}" if k != "-" else group for k in shots]]
    rows = [[f"{method} ({variant})", *[fmt(values.get(k)) for k in shots]] for variant, values in variants.items()]
    return markdown_table(header, rows)


def base_to_novel_table(method: str, summary: Mapping[str, Any], dataset: str) -> str:
    """TC-CLIP Table 4 / T2L Table 2 layout: ``Method | Base | Novel | HM`` (averaged over the splits)."""
    header = ["Method", f"{dataset} Base", f"{dataset} Novel", f"{dataset} HM"]
    rows = [[f"{method} ({variant})", _ms(avg["base"]), _ms(avg["novel"]), fmt(avg["hm"])]
            for variant, avg in summary["average"].items()]
    detail_header = ["Split", "Variant", "Base", "Novel", "HM"]
    detail = [[row["split"] or "-", row["variant"], fmt(row["base"]), fmt(row["novel"]), fmt(row["hm"])]
              for row in summary["per_split"].values()]
    return markdown_table(header, rows) + "\nPer split (HM of each split; the table's HM is that of the averages):\n\n" + \
        markdown_table(detail_header, detail)


def fully_supervised_table(method: str, entries: Sequence[Any], summary: Mapping[str, Any],
                           profile: Mapping[str, Any] | None = None) -> str:
    """TC-CLIP Table 5 layout: ``Method | Frames | Views | Top-1 | Top-5 | GFLOPs | clips/s``."""
    header = ["Method", "Frames", "Views", "Top-1", "Top-5", "GFLOPs (per view × views)", "clips/s per view"]
    rows = []
    for entry in entries:
        row = summary[entry.label]
        gflops = throughput = "–"
        if profile:
            views = entry.settings.clips * entry.settings.crops
            gflops = f"{profile['gflops']:.1f} × {views}"
            throughput = f"{profile['clips_per_s']:.1f}"
        rows.append([_row_name(method, entry), row["frames"], row["views"].replace("x", "×"), fmt(row["top1"]),
                     fmt(row["top5"]), gflops, throughput])
    return markdown_table(header, rows)


def details_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """Every (model, split) evaluation with its size and all metrics."""
    header = ["Model", "Set", "Classes", "Videos", "Skipped", "Top-1", "Top-5", "Mean-class top-1",
              "Reversal pairs", "Class text"]
    rows = []
    for label, per_set in results.items():
        for name, r in per_set.items():
            rows.append([label, name, r.num_classes, r.num_videos, r.skipped, fmt(r.top1, 2), fmt(r.top5, 2),
                         fmt(r.mean_class_top1, 2), fmt(r.reversal_pair_accuracy, 1), r.text])
    return markdown_table(header, rows, align=["l", "l"] + ["r"] * 7 + ["l"])
