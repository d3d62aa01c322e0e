"""The run directory: resolved config, metrics, DeepSpeed checkpoints, the consolidated model, the summary.

Layout::

    <run>/config.yaml           resolved config (written once; a resumed run must match it)
    <run>/metrics.jsonl         one JSON object per logged step / evaluation / event
    <run>/checkpoints/step_00000100/   DeepSpeed checkpoint (+ chronoclip.json once complete)
    <run>/checkpoints/latest    tag of the newest complete checkpoint
    <run>/model.pt              consolidated fp32 model (core.runs.load_run_model reads it without DeepSpeed)
    <run>/summary.json          final evaluation, peak memory (peak_memory_mb, memory_kind)

Every file is written to a temporary name and renamed into place; ``latest`` moves only after the
checkpoint it names is complete on every rank, and older checkpoints are deleted only after that, so a
kill at any moment leaves the previous checkpoint usable.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import yaml

from core import config as cfg

__all__ = ["CheckpointDir", "MetricsLog", "RunDir", "atomic_write_text", "atomic_torch_save", "default_output_dir"]

COMPLETE_MARKER = "chronoclip.json"
TAG_PREFIX = "step_"


def default_output_dir(method: str) -> Path:
    """``runs/<method>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{method}-{stamp}"


def _umask_mode() -> int:
    # mkstemp creates 0600 files; give the final file the permissions a plain open() would
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.chmod(tmp, _umask_mode())
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    os.chmod(tmp, _umask_mode())
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class MetricsLog:
    """Append-only JSON-lines log (rank 0 writes; other ranks hold a disabled instance)."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def write(self, row: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps(dict(row), default=float) + "\n")

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class CheckpointDir:
    """``<run>/checkpoints``: tags ``step_<N>``, the ``latest`` pointer, completeness markers, pruning."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @staticmethod
    def tag(step: int) -> str:
        return f"{TAG_PREFIX}{step:08d}"

    def complete_tags(self) -> list[str]:
        """Tags whose checkpoint finished on every rank, oldest first."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir()
                      if p.is_dir() and p.name.startswith(TAG_PREFIX) and (p / COMPLETE_MARKER).is_file())

    def latest(self) -> str | None:
        """The newest complete tag (the ``latest`` pointer, or the newest marker if the pointer is stale)."""
        pointer = self.path / "latest"
        tags = self.complete_tags()
        if pointer.is_file():
            tag = pointer.read_text().strip()
            if tag in tags:
                return tag
        return tags[-1] if tags else None

    def mark_complete(self, tag: str, info: Mapping[str, Any]) -> None:
        """Record that ``tag`` is complete and point ``latest`` at it (rank 0, after a barrier)."""
        atomic_write_text(self.path / tag / COMPLETE_MARKER, json.dumps(dict(info), indent=1))
        atomic_write_text(self.path / "latest", tag + "\n")

    def marker(self, tag: str) -> dict[str, Any]:
        return json.loads((self.path / tag / COMPLETE_MARKER).read_text())

    def prune(self, keep_last: int) -> list[str]:
        """Delete all but the newest ``keep_last`` complete checkpoints and any incomplete one older than them.

        Call on rank 0 only while no rank is writing a checkpoint. Returns the deleted tags.
        """
        tags = self.complete_tags()
        keep = set(tags[-keep_last:])
        newest = tags[-1] if tags else None
        deleted = []
        for p in sorted(self.path.iterdir()) if self.path.is_dir() else []:
            if not (p.is_dir() and p.name.startswith(TAG_PREFIX)) or p.name in keep:
                continue
            if p.name in tags or (newest is not None and p.name < newest):
                shutil.rmtree(p, ignore_errors=True)
                deleted.append(p.name)
        return deleted


class RunDir:
    """Paths of one run and the checks before it (re)starts."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.config_path = self.path / "config.yaml"
        self.metrics_path = self.path / "metrics.jsonl"
        self.model_path = self.path / "model.pt"
        self.summary_path = self.path / "summary.json"
        self.checkpoints = CheckpointDir(self.path / "checkpoints")
        self.tensorboard_path = self.path / "tensorboard"

    def saved_config(self) -> dict[str, Any] | None:
        if not self.config_path.is_file():
            return None
        return yaml.safe_load(self.config_path.read_text())

    def has_results(self) -> bool:
        """Whether the run produced anything worth keeping: a checkpoint, a model file or logged steps."""
        metrics = self.metrics_path.is_file() and self.metrics_path.stat().st_size > 0
        return bool(self.checkpoints.complete_tags()) or self.model_path.is_file() or metrics

    def check_reuse(self, config: Mapping[str, Any]) -> None:
        """Refuse a non-empty directory that is not this run (other config, or not a run at all).

        A run that stopped before producing anything (no checkpoint, model or metrics; e.g. a typo in a data
        path) may be restarted with a corrected config.

        Raises:
            ValueError: the directory holds files but no config.yaml, or results of a config whose learning
                keys differ from ``config`` (the message lists them).
        """
        if not self.path.exists() or not any(self.path.iterdir()):
            return
        saved = self.saved_config()
        if saved is None:
            raise ValueError(f"output directory {self.path} is not empty and holds no chronoclip run (config.yaml); "
                             f"pick a new --output-dir")
        diff = cfg.differences(saved, config)
        if diff and self.has_results():
            raise ValueError(
                f"{self.path} holds a run with a different config:\n  " + "\n  ".join(diff) +
                f"\nUse a new --output-dir, or continue that run with its own config: "
                f"python -m core.train --resume {self.path}")

    def write_config(self, config: Mapping[str, Any]) -> None:
        atomic_write_text(self.config_path, cfg.dump_yaml(config))
