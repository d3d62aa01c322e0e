"""How a model is tested: frames, views, frame sampler, view aggregation, class text, per protocol.

Where each value comes from, in one order of precedence (the report names the origin of every value):

1. the command line (``--frames``, ``--views``, ``--sampling``, ``--aggregation``, ``--text``);
2. for the frame count only: the model itself when its weights fix it (``VideoModel.num_frames``;
   a ``--frames`` that disagrees is an error);
3. a run of ``core.train``: its frame count (``num_frames``, stored once in ``model.pt``) always; and, on
   the data it validated on (the embedded synthetic splits, or exactly its ``data.val_shards``), the test
   settings its own validation and ``summary.json`` used (``data.test_views``, ``data.test_sampling``, the
   seed of random views ``train.seed``), so a run gets the same number in ``summary.json``, every protocol
   and ``compare`` (:meth:`RunTestSettings.covers`; on other data the method's final-test settings (4)
   apply, e.g. TC-CLIP's 2x1 zero-shot test of a run that validated on one view);
4. the method's own test settings for the protocol, shipped as data in its package
   (``<config_package>/evaluation.yaml``, read through ``core.Method.evaluation_settings()``);
5. core's defaults (:data:`DEFAULT_SETTINGS`, frames :data:`DEFAULT_NUM_FRAMES`) for a method that ships none.

The view aggregation, the class-text mode, the reported checkpoint and the WiSE-FT row always come from
(4)/(5) unless the command line says otherwise.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from core.eval.metrics import AGGREGATIONS

__all__ = ["DEFAULT_NUM_FRAMES", "DEFAULT_SETTINGS", "PROTOCOLS", "TEXT_MODES", "EvalSettings", "RunTestSettings",
           "method_settings", "parse_views", "resolve_eval_dtype", "resolve_num_frames", "resolve_settings"]

PROTOCOLS = ("zero-shot", "few-shot", "base-to-novel", "fully-supervised")
TEXT_MODES = ("names", "descriptions", "rephrased")

#: The frame count when nothing else fixes one (no weights, no run, no method setting).
DEFAULT_NUM_FRAMES = 8

#: Test settings of a method that ships no ``evaluation.yaml`` (a user's plugin).
DEFAULT_SETTINGS: dict[str, Any] = {
    "aggregation": "softmax_sum",
    "text": "names",
    "zero-shot": {"frames": DEFAULT_NUM_FRAMES, "views": [1, 1], "sampling": "segment_center", "report": "final"},
    "few-shot": {"frames": DEFAULT_NUM_FRAMES, "views": [1, 1], "sampling": "segment_center", "report": "final"},
    "base-to-novel": {"frames": DEFAULT_NUM_FRAMES, "views": [1, 1], "sampling": "segment_center", "report": "final"},
    "fully-supervised": {"frames": DEFAULT_NUM_FRAMES, "views": [4, 3], "sampling": "segment", "report": "final"},
}


def parse_views(value: str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``"4x3"`` (or ``4×3``, ``(4, 3)``) -> (temporal clips, spatial crops); crops must be 1 or 3.

    Raises:
        ValueError: anything else, with the expected form.
    """
    if isinstance(value, (tuple, list)):
        parts = [str(v) for v in value]
    else:
        parts = str(value).lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"views must look like 4x3 (temporal clips x spatial crops); got {value!r}")
    clips, crops = int(parts[0]), int(parts[1])
    if clips < 1 or crops not in (1, 3):
        raise ValueError(f"views must be <clips >= 1>x<crops 1 or 3>; got {value!r}")
    return clips, crops


def resolve_num_frames(*, fixed: int | None = None, requested: int | None = None, stored: int | None = None,
                       method_default: int | None = None) -> tuple[int, str]:
    """The frames per clip a model is tested with, and where the count came from.

    Precedence: ``fixed`` (the model's weights fix it: ``VideoModel.num_frames``) > ``requested`` (the
    command line) > ``stored`` (the run's ``model.pt``) > ``method_default`` (the method's test settings)
    > :data:`DEFAULT_NUM_FRAMES`.

    Raises:
        ValueError: ``requested`` differs from a ``fixed`` count.
    """
    if fixed is not None:
        if requested is not None and int(requested) != int(fixed):
            raise ValueError(f"this model takes {fixed} frames per clip (fixed by its weights); got --frames "
                             f"{requested}: drop --frames or pass {fixed}")
        return int(fixed), "model (fixed by its weights)"
    for value, origin in ((requested, "command line"), (stored, "the run (model.pt)"),
                          (method_default, "the method's evaluation.yaml")):
        if value is not None:
            return int(value), origin
    return DEFAULT_NUM_FRAMES, "core default"


@dataclass(frozen=True)
class RunTestSettings:
    """How a ``core.train`` run tests itself (its validation and ``summary.json``)."""

    frames: int | None = None
    views: tuple[int, int] | None = None
    sampling: str | None = None
    seed: int | None = None
    batch_size: int | None = None
    precision: str | None = None
    zero_stage: int | None = None
    #: what the run validated on: ``("synthetic",)`` (the embedded data) or its ``data.val_shards``
    validated_on: tuple[str, ...] = ()

    def frames_only(self) -> RunTestSettings:
        """What still applies on data the run did not validate on: its frame count and precision."""
        return RunTestSettings(frames=self.frames, precision=self.precision, zero_stage=self.zero_stage)

    def covers(self, eval_sets: Sequence[Any]) -> bool:
        """Whether every set (``core.eval.sets.EvalSet``) is data this run validated on: the embedded synthetic
        splits for a run on the synthetic data, or exactly its ``data.val_shards``."""
        if not eval_sets or not self.validated_on:
            return False
        if self.validated_on == ("synthetic",):
            return all(s.dataset == "synthetic" for s in eval_sets)
        return all(str(s.shards) in self.validated_on for s in eval_sets)

    @classmethod
    def from_run(cls, info: Mapping[str, Any]) -> RunTestSettings:
        """From the metadata of a run's ``model.pt`` (``core.runs.load_run_model``'s ``info``)."""
        config = info.get("config") or {}
        data, train = config.get("data") or {}, config.get("train") or {}
        frames = info.get("num_frames", data.get("num_frames"))
        views = data.get("test_views")
        if data.get("train_shards") is None and data.get("val_shards") is None:
            validated_on: tuple[str, ...] = ("synthetic",) if "train_shards" in data else ()
        else:
            shards = data.get("val_shards")
            validated_on = tuple(str(s) for s in shards) if isinstance(shards, (list, tuple)) else \
                ((str(shards),) if shards is not None else ())
        return cls(frames=int(frames) if frames is not None else None,
                   views=parse_views(views) if views is not None else None, sampling=data.get("test_sampling"),
                   seed=train.get("seed"), batch_size=(config.get("eval") or {}).get("batch_size"),
                   precision=train.get("precision"), zero_stage=train.get("zero_stage"), validated_on=validated_on)


def method_settings(method: str) -> tuple[dict[str, Any], str]:
    """The test settings table of ``method`` and its origin (the method's ``evaluation.yaml`` or core's default).

    Raises:
        ValueError: a malformed ``evaluation.yaml`` (missing protocol, unknown aggregation or text mode).
    """
    from core.method import load_method

    plugin = load_method(method)
    table = plugin.evaluation_settings()
    if table is None:
        return copy.deepcopy(DEFAULT_SETTINGS), "core default settings"
    origin = f"{plugin.config_package}/evaluation.yaml"
    missing = [p for p in PROTOCOLS if p not in table] + [k for k in ("aggregation", "text") if k not in table]
    if missing:
        raise ValueError(f"{origin} lacks {missing}; see docs/evaluation.md for the format")
    if table["aggregation"] not in AGGREGATIONS or table["text"] not in TEXT_MODES:
        raise ValueError(f"{origin}: aggregation must be one of {sorted(AGGREGATIONS)} and text one of {TEXT_MODES}")
    return table, origin


def resolve_eval_dtype(name: str, device: str | torch.device, run: RunTestSettings | None = None) -> torch.dtype:
    """The dtype evaluation runs in for ``--dtype name`` (``auto``, ``fp32``, ``bf16``) on ``device``.

    ``auto`` for a model from a run is the precision the run's own validation uses on that device (the
    trainer's rule, ``core.training.optim.resolve_precision`` of its ``train.precision``: for ``auto``, bf16 on
    a CUDA device with bf16 or a CPU with AMX / AVX512-BF16 unless ZeRO stage 0, else fp32; an fp16 run
    tests in fp32 off CUDA), so ``summary.json`` and a later evaluation agree; for any other model it is
    ``core.precision.resolve_dtype`` (bf16 on a CUDA device with bf16 or a CPU with bf16 instructions, else
    fp32). fp32 on CUDA allows TF32.
    """
    from core.precision import allow_tf32, resolve_dtype
    from core.training.optim import resolve_precision

    device = torch.device(device)
    if str(name).lower() == "auto" and run is not None and run.precision is not None:
        precision = str(run.precision).lower()
        if precision == "fp16" and device.type != "cuda":
            precision = "fp32"
        zero_stage = 1 if run.zero_stage is None else int(run.zero_stage)
        precision = resolve_precision(precision, device.type, zero_stage)
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    else:
        dtype = resolve_dtype(name, device)
    if dtype == torch.float32 and device.type == "cuda":
        allow_tf32(True)
    return dtype


@dataclass
class EvalSettings:
    """How one model is tested under one protocol.

    Attributes:
        frames: frames per clip.
        clips, crops: temporal clips x spatial crops per video.
        sampling: frame sampler of the clips (``core.data.sampling``).
        aggregation: view aggregation (``core.eval.metrics.AGGREGATIONS``).
        text: class-text mode: ``names``, ``descriptions`` (T2L's LLM descriptions) or ``rephrased``
            (TC-CLIP's LLM-rephrased names).
        report: which number the paper reports: ``final`` or ``best``.
        wise_ft: WiSE-FT alpha (weight of the fine-tuned model), or ``None`` for no ensembling.
        seed: seed of random multi-view clips (``None``: the caller's).
        origin: setting name -> where its value came from.
    """

    frames: int
    clips: int
    crops: int
    sampling: str
    aggregation: str
    text: str
    report: str = "final"
    wise_ft: float | None = None
    seed: int | None = None
    origin: dict[str, str] = field(default_factory=dict)

    @property
    def views(self) -> int:
        return self.clips * self.crops

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """One line for a report."""
        wise = f", WiSE-FT alpha {self.wise_ft}" if self.wise_ft is not None else ""
        return (f"{self.frames} frames, {self.clips}x{self.crops} views ({self.sampling} sampling), "
                f"{AGGREGATIONS[self.aggregation]}, class text: {self.text}{wise}")


def resolve_settings(method: str, protocol: str, *, model_frames: int | None = None,
                     run: RunTestSettings | None = None, overrides: Mapping[str, Any] | None = None) -> EvalSettings:
    """Settings of ``method`` under ``protocol`` (the precedence of the module docstring).

    Args:
        method: installed method name.
        protocol: one of :data:`PROTOCOLS`.
        model_frames: the model's fixed ``num_frames`` (``None`` when any count works).
        run: the test settings of the run that trained the model, when it comes from one.
        overrides: non-``None`` values from the command line: ``frames``, ``views`` ((clips, crops) or
            ``"4x3"``), ``sampling``, ``aggregation``, ``text``, ``report``, ``wise_ft``.

    Raises:
        ValueError: unknown protocol, aggregation or text mode, or a frame count the model cannot take.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    table, table_origin = method_settings(method)
    entry = dict(table[protocol])
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - {"frames", "views", "sampling", "aggregation", "text", "report", "wise_ft"}
    if unknown:
        raise ValueError(f"unknown settings {sorted(unknown)}")
    run = run or RunTestSettings()
    frames, frames_origin = resolve_num_frames(fixed=model_frames, requested=overrides.get("frames"),
                                               stored=run.frames, method_default=entry.get("frames"))
    values: dict[str, Any] = {"frames": frames}
    origin = {"frames": table_origin if frames_origin == "the method's evaluation.yaml" else frames_origin}
    for key, from_run, from_table in (("views", run.views, parse_views(entry["views"])),
                                      ("sampling", run.sampling, entry["sampling"])):
        if key in overrides:
            values[key], origin[key] = overrides[key], "command line"
        elif from_run is not None:
            values[key], origin[key] = from_run, "the run (data.test_views / data.test_sampling)"
        else:
            values[key], origin[key] = from_table, table_origin
    for key, default in (("aggregation", table["aggregation"]), ("text", table["text"]),
                         ("report", entry.get("report", "final")), ("wise_ft", entry.get("wise_ft"))):
        if key in overrides:
            values[key], origin[key] = overrides[key], "command line"
        else:
            values[key], origin[key] = default, table_origin
    if values["aggregation"] not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {values['aggregation']!r}; choose one of {sorted(AGGREGATIONS)}")
    if values["text"] not in TEXT_MODES:
        raise ValueError(f"unknown class-text mode {values['text']!r}; choose one of {TEXT_MODES}")
    if values["report"] not in ("final", "best"):
        raise ValueError(f"report must be 'final' or 'best'; got {values['report']!r}")
    clips, crops = parse_views(values.pop("views"))
    if values["wise_ft"] is None:
        origin.pop("wise_ft")
    if run.seed is not None:
        origin["seed"] = "the run (train.seed)"
    return EvalSettings(clips=clips, crops=crops, seed=run.seed, origin=origin, **values)
