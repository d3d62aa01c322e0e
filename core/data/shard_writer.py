"""Turn a folder of videos plus an annotation list into WebDataset shards (``chronoclip-shards``).

Usage::

    chronoclip-shards --root /data/ucf101/videos --list ucf_splits/val1.txt \\
        --classes ucf101 --out shards/ucf101/val1 --shard-size 1GB --workers 8

    python -m core.data.shard_writer --help

Annotation formats (``--list-format``, detected from the file when ``auto``):

* ``path-label``: ``<relative/path.ext> <label>`` per line (TC-CLIP, ILA, mmaction). ``<label>`` is a
  class id or, with ``--classes``, a class name. The path may contain spaces (the label is the last
  field).
* ``t2l``: ``<frames_dir> <num_frames> <label>`` (T2L). The directory is an absolute path on the
  authors' machine; the video is found under ``--root`` by its basename without video extension.
* ``kinetics-csv``: the official Kinetics CSV ``label,youtube_id,time_start,time_end,split``; videos are
  found under ``--root`` by ``<youtube_id>_<start:06d>_<end:06d>``; labels are class names.
* ``folders`` (no ``--list``): ``<root>/<class name>/<video>``; classes are the sorted folder names
  unless ``--classes`` gives the order. Videos directly under ``--root`` have no class: they are listed
  as skipped with that reason.

``--classes`` is a CSV ``id,name``, a text file with one name per line, or a list of the catalog:
``<dataset>[:<list>]``, e.g. ``kinetics400``, ``ucf101:novel``, ``kinetics600:zs_split1``.

Guarantees: samples keep the list order, and shard ``i`` always holds the same samples (the plan,
by source size, is stored in ``plan.json``), so a run can be interrupted and restarted: finished
shards are skipped; temporary files of a killed run are removed, and a lock keeps two runs out of one
``--out``. Every input that cannot be read or validated is left out and listed with its reason in
``manifest.json`` (``skipped``) and ``skipped.txt``. A reader process that dies (killed, out of memory, a
decoder crash) does not stop the run: the videos it had not finished are retried once, each alone in a
fresh process, and one whose process dies again is skipped with that reason. Frame counts are validated
(see ``core.data.decoding``). With ``--reencode`` each video is decoded and encoded again (H.264 mp4,
optional ``--short-side``/``--fps``/``--keyint``) for faster random access; the size target then
applies to the source files; a re-encoded video with fewer than 90 % of the frames its source header
claims (a file cut short) is kept, warned about and listed in ``manifest.json`` (``short_videos``).
All files are written atomically with the usual permissions (0644 under umask 022).

Bad input (missing ``--root``, malformed ``--list`` lines, unknown ``--classes``, an ``--out`` that cannot
be created, out-of-range values) ends with one line on stderr and exit code 2; ``--debug`` shows the
traceback.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.cli import ArgumentParser, UserError, check_range, one_line, run_cli
from core.data.decoders import resolve_decoder
from core.data.shards import (
    MANIFEST,
    VIDEO_EXTENSIONS,
    ShardTarWriter,
    atomic_write_bytes,
    atomic_write_json,
    build_manifest,
    sanitize_key,
)

__all__ = ["ShardOptions", "WriteReport", "main", "read_annotation", "read_class_list", "write_shards"]

logger = logging.getLogger(__name__)

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def parse_size(text: str) -> int:
    """``"1GB"``, ``"500MiB"``, ``"1e9"`` -> bytes."""
    match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([A-Za-z]*)\s*", str(text))
    if not match or match.group(2).upper() not in _SIZE_UNITS:
        raise ValueError(f"cannot parse size {text!r}; write e.g. 1GB, 500MB or 2GiB")
    try:
        return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()])
    except (ValueError, OverflowError):
        raise ValueError(f"cannot parse size {text!r}; write e.g. 1GB, 500MB or 2GiB") from None


# ---------------------------------------------------------------------------------------------------------------
# Inputs: class lists and annotation files.


def read_class_list(source: str | os.PathLike) -> list[str]:
    """Class names in id order: a CSV ``id,name`` file, a one-name-per-line text file, a JSON list, or a catalog
    list ``<dataset>[:<list>]`` (``ucf101``, ``ucf101:novel``, ``kinetics600:zs_split1``); see
    :func:`core.io.read_class_list`."""
    from core.io import read_class_list as read

    return read(source)


@dataclass(frozen=True)
class Entry:
    """One annotated video: where to find it and its label (an id, or a name to look up)."""

    source: str  # path relative to --root
    label: int | None
    label_name: str | None = None
    error: str | None = None  # known to be unusable (reported as skipped with this reason)


def _index_by_stem(root: Path) -> dict[str, str]:
    index: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS:
            index.setdefault(path.stem, path.relative_to(root).as_posix())
    return index


def _read_list(path: Path) -> str:
    try:
        data = path.read_bytes()
        return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("utf-8-sig")
    except (OSError, EOFError) as error:  # unreadable, or a broken .gz
        raise ValueError(f"cannot read annotation file {path} ({one_line(error)}); check the file") from None
    except UnicodeDecodeError:
        raise ValueError(f"annotation file {path} is not UTF-8 text; pass the annotation list (one video per "
                         f"line), not a video or an archive") from None


def _detect_format(path: Path) -> str:
    lines = [line for line in _read_list(path).splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"annotation file {path} is empty")
    head = lines[0].replace(" ", "").lower()
    if head.startswith("label,youtube_id"):
        return "kinetics-csv"
    fields = lines[0].split()
    if len(fields) >= 3 and fields[-1].lstrip("-").isdigit() and fields[-2].isdigit():
        return "t2l"
    return "path-label"


def read_annotation(path: str | os.PathLike, root: str | os.PathLike, list_format: str = "auto") -> list[Entry]:
    """Entries of an annotation file (formats in the module docstring; plain or ``.gz``), in file order."""
    path, root = Path(path), Path(root)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {path} does not exist (or is not a file); check --list")
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a directory; pass the folder the listed paths are relative to")
    list_format = _detect_format(path) if list_format == "auto" else list_format
    text = _read_list(path)
    entries: list[Entry] = []
    if list_format == "kinetics-csv":
        index = _index_by_stem(root)
        reader = csv.DictReader(text.splitlines())
        missing = {"label", "youtube_id", "time_start", "time_end"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: the Kinetics CSV lacks column(s) {', '.join(sorted(missing))}; expected the "
                             f"official header label,youtube_id,time_start,time_end,split")
        for number, row in enumerate(reader, start=2):
            try:
                start, end = int(float(row["time_start"])), int(float(row["time_end"]))
            except (TypeError, ValueError):
                raise ValueError(f"{path}: line {number}: time_start/time_end must be numbers, got "
                                 f"{row['time_start']!r}, {row['time_end']!r}") from None
            stem = f"{row['youtube_id']}_{start:06d}_{end:06d}"
            entries.append(Entry(index.get(stem, stem), None, row["label"]))
        return entries
    if list_format == "t2l":
        index = _index_by_stem(root)
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.rsplit(maxsplit=2)
            if len(parts) != 3 or not parts[1].isdigit() or not parts[2].lstrip("-").isdigit():
                raise ValueError(f"{path}: line {number} {line.strip()!r} is not '<frames_dir> <num_frames> <label>' "
                                 f"(T2L format); fix the line or pass --list-format")
            directory, _, label = parts
            stem = Path(directory.rstrip("/")).name
            stem = stem.rsplit(".", 1)[0] if stem.rsplit(".", 1)[-1].lower() in VIDEO_EXTENSIONS else stem
            entries.append(Entry(index.get(stem, stem), int(label)))
        return entries
    if list_format != "path-label":
        raise ValueError(f"unknown list format {list_format!r}; choose auto, path-label, t2l or kinetics-csv")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)
        if len(parts) != 2:
            raise ValueError(f"{path}: line {number} {line.strip()!r} is not '<relative/path> <label>'; fix the line")
        source, label = parts
        entries.append(Entry(source, int(label)) if label.lstrip("-").isdigit() else Entry(source, None, label))
    return entries


def folder_entries(root: str | os.PathLike, classes: list[str] | None) -> tuple[list[Entry], list[str]]:
    """Entries of a ``<root>/<class>/<video>`` tree, sorted by class then path; and the class list.

    Videos directly under ``root`` cannot be labelled: they become entries with ``error`` set, so the writer
    lists them as skipped with the reason instead of ignoring them silently.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"--root {root} is not a directory; pass the folder holding <class>/<video> folders")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir())
    classes = classes or folders
    entries = []
    # a video directly under --root has no class folder, hence no label: listed as skipped with the reason
    for path in sorted(root.iterdir()):
        if path.is_file() and path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS:
            entries.append(Entry(path.name, None, None, f"at the top level of --root, outside any class folder: no "
                                                        f"label (move it into {root}/<class name>/)"))
    for name in folders:
        for path in sorted((root / name).rglob("*")):
            if path.is_file() and path.suffix.lower().lstrip(".") in VIDEO_EXTENSIONS:
                entries.append(Entry(path.relative_to(root).as_posix(), None, name))
    return entries, classes


# ---------------------------------------------------------------------------------------------------------------
# Planning and writing.


@dataclass(frozen=True)
class ShardOptions:
    """How to write the shards (recorded in the manifest and the plan)."""

    shard_size: int = 10**9  # target bytes of video per shard (source bytes when re-encoding)
    max_per_shard: int = 100_000  # and at most this many samples
    prefix: str = "shard"
    reencode: bool = False
    short_side: int | None = None
    fps: float | None = None
    keyint: int | None = None
    timeout: float = 60.0  # seconds per decoding call while validating
    decoder: str = "decord"  # backend that must read every validated frame (core.data.decoders); not in the plan


@dataclass
class WriteReport:
    """What :func:`write_shards` did."""

    out: Path
    num_samples: int
    num_shards: int
    written_shards: int  # shards (re)written by this run; the rest were already finished
    skipped: list[dict[str, str]] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    short: list[dict[str, Any]] = field(default_factory=list)  # re-encoded with fewer frames than claimed


@dataclass(frozen=True)
class _Task:
    shard: int
    position: int
    key: str
    source: str
    label: int | None
    class_name: str | None
    error: str | None  # known before reading (unknown class, missing file)


def _resolve(entries: Sequence[Entry], root: Path, classes: list[str] | None) -> list[_Task]:
    lookup = {name: i for i, name in enumerate(classes or [])}
    keys: Counter[str] = Counter()
    tasks = []
    for position, entry in enumerate(entries):
        label, name, error = entry.label, entry.label_name, entry.error
        if error is None and label is None and name is not None:
            label = lookup.get(name, lookup.get(name.replace("_", " ")))
            if label is None:
                error = f"unknown class name {name!r} (not in the class list)"
        if error is None and label is not None and classes is not None:
            if not 0 <= label < len(classes):
                error = f"label {label} out of range for {len(classes)} classes"
            else:
                name = classes[label]
        if error is None and not (root / entry.source).is_file():
            error = "file not found"
        key = sanitize_key(entry.source)
        keys[key] += 1
        if keys[key] > 1:  # the same file listed twice, or two paths that sanitise alike
            key = f"{key}_{keys[key] - 1}"
        tasks.append(_Task(-1, position, key, entry.source, label, name, error))
    return tasks


def _plan(tasks: list[_Task], root: Path, options: ShardOptions) -> list[list[_Task]]:
    shards: list[list[_Task]] = [[]]
    size = 0
    for task in tasks:
        nbytes = (root / task.source).stat().st_size if task.error is None else 0
        if shards[-1] and (size + nbytes > options.shard_size or len(shards[-1]) >= options.max_per_shard):
            shards.append([])
            size = 0
        shards[-1].append(task)
        size += nbytes
    return [[_Task(i, t.position, t.key, t.source, t.label, t.class_name, t.error) for t in s]
            for i, s in enumerate(shards)]


def _plan_digest(plan: list[list[_Task]], options: ShardOptions) -> str:
    # the decoder only validates (readers cap at their own frame count): shards are the same whichever checked them
    settings = {k: v for k, v in asdict(options).items() if k != "decoder"}
    payload = json.dumps([[asdict(t) for t in s] for s in plan] + [settings], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _process(task: _Task, root: str, options: ShardOptions) -> tuple[_Task, bytes | None, dict | str]:
    """Worker: read, optionally re-encode, and validate one video -> (task, bytes, meta) or (task, None, reason)."""
    from core.data.decoding import DecodeError, probe_video
    from core.data.encoding import reencode_video

    if task.error:
        return task, None, task.error
    path = Path(root) / task.source
    try:
        data = path.read_bytes()
        if not data:
            return task, None, "empty file"
        ext = path.suffix.lower().lstrip(".") or "mp4"
        claimed = None
        if options.reencode:
            claimed = _claimed_frames(data, options.fps)
            data = reencode_video(data, short_side=options.short_side, fps=options.fps, keyint=options.keyint)
            ext = "mp4"
        info = probe_video(data, timeout=options.timeout, decoder=options.decoder)
    except DecodeError as error:
        return task, None, str(error)
    except Exception as error:  # PyAV raises many types on broken input; report, never crash the run
        return task, None, f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}"
    meta = {"label": task.label, "class_name": task.class_name, "source": task.source, "ext": ext,
            "num_frames": info.num_frames, "reported_frames": info.reported_frames, "fps": round(info.fps, 4),
            "width": info.width, "height": info.height, "corrupt_packets": info.corrupt_packets}
    if claimed is not None and info.num_frames < SHORT_FRACTION * claimed:
        # e.g. a file cut in half: the decoder stops early and the re-encoded copy silently holds fewer frames
        meta["claimed_frames"] = claimed
    return task, data, meta


# a re-encoded video with fewer than this fraction of the frames its source header claims is reported
SHORT_FRACTION = 0.9


def _claimed_frames(data: bytes, out_fps: float | None) -> int | None:
    """Frames the source's container header claims (scaled to ``out_fps``), or None when it claims none."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as source:
            stream = source.streams.video[0]
            frames = int(stream.frames or 0)
            rate = float(stream.average_rate or stream.guessed_rate or 0)
    except Exception:  # unreadable headers: the re-encode itself reports the problem
        return None
    if frames <= 0:
        return None
    return int(frames * out_fps / rate) if out_fps and rate else frames


def _process_star(args: tuple) -> tuple:
    return _process(*args)


def _shard_name(options: ShardOptions, index: int) -> str:
    return f"{options.prefix}-{index:06d}.tar"


def write_shards(
    entries: Sequence[Entry], root: str | os.PathLike, out: str | os.PathLike, *, classes: list[str] | None = None,
    options: ShardOptions = ShardOptions(), workers: int = 0, progress: bool = True, overwrite: bool = False,
) -> WriteReport:
    """Write ``entries`` (videos under ``root``) as shards into ``out``; resumes an interrupted run.

    Args:
        entries: the annotated videos in the order they should appear.
        root: the folder the entries' paths are relative to.
        out: output directory (created).
        classes: class names in id order (stored in the manifest; needed for name labels).
        options: shard size, re-encoding, validation time bound.
        workers: processes reading and validating videos (0: in this process).
        progress: show a tqdm bar.
        overwrite: discard an existing plan made with other inputs or options instead of raising.

    Returns:
        A :class:`WriteReport`; ``report.skipped`` lists ``{"source", "reason"}`` for every input left out.
    """
    root, out = Path(root), Path(out)
    options = replace(options, decoder=resolve_decoder(options.decoder))  # here, not once per worker
    if not root.is_dir():
        raise FileNotFoundError(f"video root {root} is not a directory")
    if not entries:
        raise ValueError("no videos to write: the annotation list or folder tree is empty")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"cannot create --out {out} ({error.strerror}); choose a writable directory") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out} is not writable; choose a writable directory")
    from filelock import Timeout

    from core.io import file_lock

    try:
        with file_lock(out / ".chronoclip-shards.lock", timeout=0):
            return _write_locked(entries, root, out, classes, options, workers, progress, overwrite)
    except Timeout:
        raise ValueError(f"another chronoclip-shards run is writing into {out}; wait for it to finish or choose "
                         f"another --out") from None


def _write_locked(entries: Sequence[Entry], root: Path, out: Path, classes: list[str] | None,
                  options: ShardOptions, workers: int, progress: bool, overwrite: bool) -> WriteReport:
    # temporary files of a killed run (a half-written shard, a sidecar): no other writer holds the lock
    leftovers = sorted(out.glob(".*.tmp"))
    for stale in leftovers:
        stale.unlink(missing_ok=True)
    if leftovers:
        logger.info("removed %d temporary file(s) of an interrupted run: %s", len(leftovers),
                    ", ".join(p.name for p in leftovers[:5]))
    plan = _plan(_resolve(entries, root, classes), root, options)
    digest = _plan_digest(plan, options)
    plan_path = out / "plan.json"
    if plan_path.exists():
        previous = json.loads(plan_path.read_text()).get("digest")
        if previous != digest and not overwrite:
            raise ValueError(f"{out} holds shards of a different input list or options (plan {previous} != "
                             f"{digest}); use a new --out directory or pass --overwrite")
        if previous != digest:  # --overwrite: forget every shard of the old plan (sidecars mark shards done)
            for stale in out.glob(f"{options.prefix}-[0-9][0-9][0-9][0-9][0-9][0-9].tar*"):
                stale.unlink()
    atomic_write_json(plan_path, {"digest": digest, "num_shards": len(plan), "num_entries": len(entries)})

    todo = [s for s in plan if not _finished(out, options, s[0].shard)]
    if len(todo) < len(plan):
        logger.info("resuming: %d of %d shards already finished", len(plan) - len(todo), len(plan))
    _write_todo(todo, root, out, options, workers, progress)
    return _finish(plan, out, classes, options, written=len(todo))


def _finished(out: Path, options: ShardOptions, index: int) -> bool:
    name = _shard_name(options, index)
    return (out / name).is_file() and (out / f"{name}.json").is_file()


def _write_todo(todo: list[list[_Task]], root: Path, out: Path, options: ShardOptions, workers: int,
                progress: bool) -> None:
    from tqdm import tqdm

    jobs = [(task, str(root), options) for shard in todo for task in shard]
    remaining = {shard[0].shard: len(shard) for shard in todo}
    bar = tqdm(total=len(jobs), unit="video", disable=not progress, desc=f"shards -> {out}")
    results: Iterator = _ordered_results(jobs, workers) if workers else map(_process_star, jobs)
    writer: ShardTarWriter | None = None
    skipped: list[dict[str, str]] = []
    short: list[dict[str, Any]] = []
    try:
        for task, data, meta in results:
            if writer is None:
                writer, skipped, short = ShardTarWriter(out / _shard_name(options, task.shard)), [], []
            if data is None:
                skipped.append({"source": task.source, "reason": str(meta)})
            else:
                writer.add(task.key, meta["ext"], data, meta)
                if "claimed_frames" in meta:
                    short.append({"source": task.source, "frames": meta["num_frames"],
                                  "claimed_frames": meta["claimed_frames"]})
                    logger.warning("%s: the re-encoded video has %d frames, its source header claims %d (cut "
                                   "short or damaged?); kept, and counted in the manifest (short_videos)",
                                   task.source, meta["num_frames"], meta["claimed_frames"])
            remaining[task.shard] -= 1
            bar.update(1)
            if remaining[task.shard] == 0:
                entry = writer.commit()
                # the sidecar is written last: its presence marks the shard finished (resume skips it)
                atomic_write_json(out / f"{entry['name']}.json", {**entry, "skipped": skipped, "short": short})
                writer = None
    finally:
        bar.close()
        if writer is not None:
            writer.__exit__(None, None, None)
        if hasattr(results, "close"):
            results.close()


def _ordered_results(jobs: list[tuple], workers: int) -> Iterator[tuple]:
    """``_process`` of every job in ``workers`` processes, in job order; survives workers that die.

    When a worker dies (killed, out of memory, a decoder crash) the pool breaks and every job it had not
    finished is suspect: each is retried once, alone in a fresh process. A job whose lone process dies too
    comes back as skipped with the reason; the others come back as usual, and a new pool goes on.
    """
    from concurrent.futures import Future, ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    window = 4 * workers  # jobs in flight ahead of the one being written (bounds the bytes held in memory)
    pending: dict[int, Future] = {}
    submitted = 0
    executor = ProcessPoolExecutor(workers, mp_context=context)
    try:
        for index in range(len(jobs)):
            while submitted < len(jobs) and submitted < index + window:
                pending[submitted] = executor.submit(_process_star, jobs[submitted])
                submitted += 1
            try:
                result = pending[index].result()
            except BrokenProcessPool:
                executor.shutdown(wait=True, cancel_futures=True)
                suspects = sorted(i for i, f in pending.items()
                                  if not f.done() or f.cancelled() or f.exception() is not None)
                logger.warning("a reader process died; retrying its %d unfinished video(s) one at a time: %s",
                               len(suspects), ", ".join(jobs[i][0].source for i in suspects[:10]))
                for i in suspects:
                    pending[i] = Future()
                    pending[i].set_result(_run_alone(jobs[i], context))
                executor = ProcessPoolExecutor(workers, mp_context=context)
                result = pending[index].result()
            del pending[index]
            yield result
    finally:
        executor.shutdown(wait=False, cancel_futures=True)


def _alone(job: tuple, connection: Any) -> None:
    connection.send(_process_star(job))
    connection.close()


def _run_alone(job: tuple, context: Any) -> tuple:
    """``_process(job)`` in a process of its own: its result, or a skip naming how the process died."""
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_alone, args=(job, send), daemon=True)
    process.start()
    send.close()
    try:
        result = receive.recv()
    except EOFError:  # the process died before sending
        result = None
    finally:
        receive.close()
    process.join()
    if result is not None:
        return result
    code = process.exitcode
    how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    task = job[0]
    logger.warning("%s: the reader process died again (%s): skipped", task.source, how)
    return task, None, f"the reader process died while reading it ({how}), also when retried alone"


def _finish(plan: list[list[_Task]], out: Path, classes: list[str] | None, options: ShardOptions,
            written: int) -> WriteReport:
    shards, skipped, short = [], [], []
    for shard in plan:
        sidecar = json.loads((out / f"{_shard_name(options, shard[0].shard)}.json").read_text())
        skipped.extend(sidecar.pop("skipped"))
        short.extend(sidecar.pop("short", []))
        shards.append(sidecar)
    manifest = build_manifest(shards, classes=classes, skipped=skipped, options=asdict(options))
    manifest["short_videos"] = short  # kept, but with fewer frames than their source header claims
    atomic_write_json(out / MANIFEST, manifest)
    atomic_write_bytes(out / "skipped.txt", "".join(f"{s['source']}\t{s['reason']}\n" for s in skipped).encode())
    if skipped:
        logger.warning("skipped %d of %d videos (listed in %s):\n%s", len(skipped), sum(len(s) for s in plan),
                       out / "skipped.txt", "\n".join(f"  {s['source']}: {s['reason']}" for s in skipped[:20]))
    if short:
        logger.warning("%d re-encoded video(s) hold fewer frames than their source header claims (manifest.json "
                       "short_videos)", len(short))
    return WriteReport(out, manifest["num_samples"], len(shards), written, skipped, manifest, short)


# ---------------------------------------------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="chronoclip-shards", description=__doc__.replace("``", "`"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder the video paths are relative to")
    parser.add_argument("--list", help="annotation file; omit for a <root>/<class>/<video> folder tree")
    parser.add_argument("--list-format", default="auto", choices=["auto", "path-label", "t2l", "kinetics-csv"])
    parser.add_argument("--classes", help="class list: CSV id,name, one name per line, or a catalog list <dataset>[:<list>] "
                        "(e.g. ucf101, ucf101:base, kinetics600:zs_split1)")
    parser.add_argument("--out", required=True, help="output directory for the shards and manifest.json")
    parser.add_argument("--prefix", default="shard", help="shard file prefix (default: shard)")
    parser.add_argument("--shard-size", default="1GB", help="target video bytes per shard (default 1GB)")
    parser.add_argument("--max-per-shard", type=int, default=100_000, help="at most this many samples per shard")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="reader processes (0: inline)")
    parser.add_argument("--reencode", action="store_true", help="decode and re-encode as H.264 mp4")
    parser.add_argument("--short-side", type=int, help="with --reencode: resize the short side to this")
    parser.add_argument("--fps", type=float, help="with --reencode: output frame rate")
    parser.add_argument("--keyint", type=int, help="with --reencode: keyframe interval in frames")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per decoding call when validating")
    parser.add_argument("--decoder", default="decord", choices=["decord", "pyav", "torchcodec"],
                        help="decoder that must read every validated frame (default decord; pyav when decord "
                             "cannot be imported)")
    parser.add_argument("--overwrite", action="store_true", help="replace shards made from other inputs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    """Out-of-range values are errors, never silently replaced."""
    if not args.reencode and (args.short_side or args.fps or args.keyint):
        raise UserError("--short-side/--fps/--keyint need --reencode; add --reencode or drop them")
    check_range("--max-per-shard", args.max_per_shard, minimum=1)
    check_range("--workers", args.workers, minimum=0)
    check_range("--short-side", args.short_side, minimum=2)
    check_range("--keyint", args.keyint, minimum=1)
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    if not args.timeout > 0:
        raise UserError(f"--timeout must be > 0 seconds, got {args.timeout}")
    if not args.prefix or not re.fullmatch(r"[A-Za-z0-9_\-]+", args.prefix):
        raise UserError(f"--prefix {args.prefix!r} must be letters, digits, '_' or '-' (it names the shard files)")
    if parse_size(args.shard_size) <= 0:
        raise UserError(f"--shard-size must be > 0, got {args.shard_size!r}")


def _main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    _check_args(args)
    if not Path(args.root).is_dir():
        raise UserError(f"--root {args.root} is not a directory; pass the folder holding the videos")
    classes = read_class_list(args.classes) if args.classes else None
    if args.list:
        entries = read_annotation(args.list, args.root, args.list_format)
    else:
        entries, classes = folder_entries(args.root, classes)
    options = ShardOptions(shard_size=parse_size(args.shard_size), max_per_shard=args.max_per_shard,
                           prefix=args.prefix, reencode=args.reencode, short_side=args.short_side, fps=args.fps,
                           keyint=args.keyint, timeout=args.timeout, decoder=args.decoder)
    report = write_shards(entries, args.root, args.out, classes=classes, options=options, workers=args.workers,
                          progress=not args.no_progress, overwrite=args.overwrite)
    logger.info("%d samples in %d shards at %s (%d written now, %d skipped, %d short; report: %s)",
                report.num_samples, report.num_shards, report.out, report.written_shards, len(report.skipped),
                len(report.short), report.out / MANIFEST)
    return 0 if report.num_samples else 1


def main(argv: list[str] | None = None) -> int:
    """CLI entry point (``chronoclip-shards``); returns the exit status (0 done, 1 nothing written, 2 bad input:
    one line on stderr; ``--debug`` shows the traceback)."""
    return run_cli(_main, argv, prog="chronoclip-shards")


if __name__ == "__main__":
    sys.exit(main())
