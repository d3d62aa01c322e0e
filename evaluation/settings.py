"""Per-method, per-protocol test settings (``settings.yaml``) and their resolution for one model.

The table is data (package file ``evaluation/settings.yaml``); :func:`resolve_settings` combines it with
what the model fixes (its frame count) and with the user's overrides, and records where every value
came from so the report can name it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

from evaluation.metrics import AGGREGATIONS

__all__ = ["PROTOCOLS", "EvalSettings", "method_table", "resolve_settings"]

PROTOCOLS = ("zero-shot", "few-shot", "base-to-novel", "fully-supervised")
TEXT_MODES = ("names", "descriptions", "rephrased")


@cache
def _table() -> dict[str, Any]:
    return yaml.safe_load((resources.files("evaluation") / "settings.yaml").read_text())


def method_table(method: str) -> dict[str, Any]:
    """The settings block of ``method`` (the ``default`` block for methods the table does not know)."""
    table = _table()
    return table.get(method, table["default"])


@dataclass
class EvalSettings:
    """How one model is tested under one protocol.

    Attributes:
        frames: frames per clip.
        clips, crops: temporal clips x spatial crops per video.
        sampling: frame sampler of the clips (``core.data.sampling``).
        aggregation: view aggregation (``evaluation.metrics.AGGREGATIONS``).
        text: class-text mode: ``names``, ``descriptions`` (T2L's LLM descriptions) or ``rephrased``
            (TC-CLIP's LLM-rephrased names).
        report: which number the paper reports: ``final`` or ``best``.
        wise_ft: WiSE-FT alpha (weight of the fine-tuned model), or ``None`` for no ensembling.
        origin: setting name -> where its value came from (``model``, ``settings.yaml``, ``command line``).
    """

    frames: int
    clips: int
    crops: int
    sampling: str
    aggregation: str
    text: str
    report: str
    wise_ft: float | None = None
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def views(self) -> int:
        return self.clips * self.crops

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for the report header."""
        wise = f", WiSE-FT alpha {self.wise_ft}" if self.wise_ft is not None else ""
        return (f"{self.frames} frames, {self.clips}x{self.crops} views ({self.sampling} sampling), "
                f"{AGGREGATIONS[self.aggregation]}, class text: {self.text}{wise}")


def resolve_settings(method: str, protocol: str, *, model_frames: int | None = None,
                     trained_frames: int | None = None, overrides: Mapping[str, Any] | None = None) -> EvalSettings:
    """Settings of ``method`` under ``protocol``: table values, then the frame count the model was trained with or
    fixes, then overrides.

    Args:
        method: installed method name.
        protocol: one of :data:`PROTOCOLS`.
        model_frames: the model's fixed ``num_frames`` (``None`` when any count works).
        trained_frames: frames per clip of the run that trained it (``data.num_frames``), used when the model
            does not fix the count.
        overrides: non-``None`` values from the command line: ``frames``, ``views`` ((clips, crops)),
            ``sampling``, ``aggregation``, ``text``, ``report``, ``wise_ft``.

    Raises:
        ValueError: unknown protocol, aggregation or text mode, or a frame override the model cannot take.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    block = method_table(method)
    entry = dict(block[protocol])
    origin = {k: f"settings.yaml[{method if method in _table() else 'default'}]" for k in
              ("frames", "views", "sampling", "aggregation", "text", "report", "wise_ft")}
    values: dict[str, Any] = {
        "frames": int(entry["frames"]), "views": tuple(entry["views"]), "sampling": entry["sampling"],
        "aggregation": block["aggregation"], "text": block["text"], "report": entry.get("report", "final"),
        "wise_ft": entry.get("wise_ft"),
    }
    if model_frames is not None:
        values["frames"] = int(model_frames)
        origin["frames"] = "model (fixed by its weights)"
    elif trained_frames is not None:
        values["frames"] = int(trained_frames)
        origin["frames"] = "the training run's data.num_frames"
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in values:
            raise ValueError(f"unknown setting {key!r}; valid: {sorted(values)}")
        if key == "frames" and model_frames is not None and int(value) != int(model_frames):
            raise ValueError(f"this model takes {model_frames} frames per clip (fixed by its weights); got "
                             f"--frames {value}")
        values[key] = tuple(value) if key == "views" else value
        origin[key] = "command line"
    if values["aggregation"] not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {values['aggregation']!r}; choose one of {sorted(AGGREGATIONS)}")
    if values["text"] not in TEXT_MODES:
        raise ValueError(f"unknown class-text mode {values['text']!r}; choose one of {TEXT_MODES}")
    if values["report"] not in ("final", "best"):
        raise ValueError(f"report must be 'final' or 'best'; got {values['report']!r}")
    clips, crops = values.pop("views")
    if values["wise_ft"] is None:
        origin.pop("wise_ft")
    return EvalSettings(clips=int(clips), crops=int(crops), origin=origin, **values)
