"""The run directory: resolved config, metrics, DeepSpeed checkpoints, the consolidated model, the summary.

Layout::

    <run>/config.yaml           resolved config (written once; a resumed run must match it)
    <run>/metrics.jsonl         one JSON object per logged step / evaluation / event
    <run>/checkpoints/step_00000100/   DeepSpeed checkpoint (+ chronoclip.json once complete)
    <run>/checkpoints/latest    tag of the newest complete checkpoint
    <run>/model.pt              consolidated fp32 model (core.runs.load_run_model reads it without DeepSpeed)
    <run>/summary.json          final evaluation, peak memory (peak_memory_mb, memory_kind)

Every file is written atomically (``core.io``: temporary name, fsync, rename); ``latest`` moves only after the
checkpoint it names is complete on every rank, and older checkpoints are deleted only after that, so a
kill at any moment leaves the previous checkpoint usable.

``chronoclip.json``, written last and atomically, is also the checkpoint's manifest: the size and sha256 of
every file DeepSpeed wrote. On resume :meth:`CheckpointDir.newest_intact` checks the checkpoints newest
first against their manifests; a damaged one (a file deleted, truncated or changed) is reported by name
and the newest intact one is used.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core import config as cfg
from core.io import atomic_write_text

__all__ = ["CheckpointDir", "MetricsLog", "ResumeTarget", "RunDir", "default_output_dir", "file_manifest",
           "parse_resume", "resume_tag"]

COMPLETE_MARKER = "chronoclip.json"
TAG_PREFIX = "step_"
DAMAGED_PREFIX = "damaged-"

logger = logging.getLogger("core.train")


def default_output_dir(method: str) -> Path:
    """``runs/<method>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{method}-{stamp}"


@dataclass(frozen=True)
class ResumeTarget:
    """What ``--resume PATH`` names: the run directory and the checkpoint to continue from."""

    run: Path  # the run directory
    checkpoints: Path  # its checkpoints folder
    tag: str | None  # the checkpoint named, or the run's newest complete one; None: none yet


def parse_resume(path: str | os.PathLike) -> ResumeTarget:
    """Classify a ``--resume`` argument: a run directory, or one of its checkpoints (``run/checkpoints/step_N``).

    Raises:
        FileNotFoundError: neither a run directory nor a checkpoint.
        ValueError: a checkpoint that is not complete (the message names the run to resume instead).
    """
    source = Path(path)
    if (source / "checkpoints").is_dir() or (source / "config.yaml").is_file():
        return ResumeTarget(source, source / "checkpoints", resume_tag(CheckpointDir(source / "checkpoints")))
    if source.parent.name == "checkpoints" and source.is_dir():
        run, checkpoints = source.parent.parent, CheckpointDir(source.parent)
        if source.name not in checkpoints.complete_tags():
            raise ValueError(f"checkpoint {source} is incomplete (no {COMPLETE_MARKER}); resume from the run "
                             f"directory {run} to take its newest complete checkpoint")
        damage = checkpoints.damage(source.name)
        if damage is not None:
            raise ValueError(f"checkpoint {source} is damaged: {damage}. Resume from the run directory {run} to "
                             f"take its newest intact checkpoint")
        return ResumeTarget(run, source.parent, source.name)
    raise FileNotFoundError(f"--resume {source}: not a run directory or a checkpoint (run/checkpoints/step_N)")


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
        """Record that ``tag`` is complete, with its manifest, and point ``latest`` at it (rank 0, after a barrier).

        The manifest (``files``: size and sha256 of every file of the checkpoint) goes into the marker, which
        is written last and atomically: a checkpoint with a marker was complete when it was written.
        """
        info = {**dict(info), "files": file_manifest(self.path / tag)}
        atomic_write_text(self.path / tag / COMPLETE_MARKER, json.dumps(info, indent=1))
        atomic_write_text(self.path / "latest", tag + "\n")

    def marker(self, tag: str) -> dict[str, Any]:
        return json.loads((self.path / tag / COMPLETE_MARKER).read_text())

    def damage(self, tag: str) -> str | None:
        """What is wrong with checkpoint ``tag`` (None when it matches its manifest).

        A checkpoint written before manifests existed (no ``files`` in its marker) is taken as it is.
        """
        folder = self.path / tag
        try:
            info = self.marker(tag)
        except FileNotFoundError:
            return f"{folder / COMPLETE_MARKER} is missing (the checkpoint never completed or was damaged)"
        except (OSError, ValueError) as error:
            return f"{folder / COMPLETE_MARKER} is unreadable ({error})"
        files = info.get("files")
        if not isinstance(files, dict):
            return None
        for name, expected in sorted(files.items()):
            file = folder / name
            if not file.is_file():
                return f"{file} is missing"
            size = file.stat().st_size
            if size != expected.get("size"):
                return f"{file} has {size} bytes, its manifest {expected.get('size')} (truncated or changed)"
            if _sha256(file) != expected.get("sha256"):
                return f"{file} does not match the sha256 of its manifest (changed after it was written)"
        return None

    def newest_intact(self) -> tuple[str | None, list[tuple[str, str]]]:
        """The newest checkpoint that matches its manifest, and the newer ones that do not: ``[(tag, why)]``.

        Candidates are the complete checkpoints and the one the ``latest`` pointer names (even when its
        marker is gone), newest first.
        """
        candidates = set(self.complete_tags())
        pointer = self.path / "latest"
        if pointer.is_file():
            named = pointer.read_text().strip()
            if named.startswith(TAG_PREFIX) and "/" not in named:
                candidates.add(named)
        damaged = []
        for tag in sorted(candidates, reverse=True):
            problem = self.damage(tag)
            if problem is None:
                return tag, damaged
            damaged.append((tag, problem))
        return None, damaged

    def set_aside(self, tag: str) -> Path | None:
        """Rename a damaged checkpoint to ``damaged-<tag>`` (kept for inspection, ignored by resume and pruning)."""
        folder = self.path / tag
        if not folder.is_dir():
            return None
        target = self.path / f"{DAMAGED_PREFIX}{tag}"
        suffix = 1
        while target.exists():
            target = self.path / f"{DAMAGED_PREFIX}{tag}~{suffix}"
            suffix += 1
        folder.rename(target)
        return target

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


def resume_tag(checkpoints: CheckpointDir) -> str | None:
    """The checkpoint to resume from: the newest intact one (None when the run has no checkpoint yet).

    Damaged newer checkpoints are reported by name with a warning and set aside (``damaged-<tag>``).

    Raises:
        ValueError: there are checkpoints but none is intact (the message lists what is wrong with each).
    """
    tag, damaged = checkpoints.newest_intact()
    if tag is None and damaged:
        raise ValueError(f"no intact checkpoint in {checkpoints.path}: " + "; ".join(why for _, why in damaged) +
                         ". Restore the files, or start the run again in a new --output-dir")
    for bad, why in damaged:
        moved = checkpoints.set_aside(bad)
        logger.warning("checkpoint %s is damaged: %s. Resuming from the previous intact checkpoint %s%s", bad, why,
                       tag, f"; the damaged one is kept as {moved}" if moved else "")
    return tag


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_manifest(folder: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``folder`` except the marker."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != COMPLETE_MARKER}


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
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"output directory {self.path} is a file; pick a new --output-dir")
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
