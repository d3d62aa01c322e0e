"""The streaming reader: WebDataset pipeline stages from shard URLs to batches of clips.

The pipeline is a visible list of stages (:func:`build_pipeline`)::

    EpochShards      shard URLs; training: a new seeded permutation per (epoch, round), endlessly
    SplitByNode      keep the shards of this rank      (shard i -> rank i % world_size)
    SplitByWorker    keep the shards of this worker    (i // world_size -> worker % num_workers)
    tarfile_to_samples   WebDataset tar reading (local paths, brace patterns, ``pipe:`` commands)
    SplitSamples     only when there are fewer shards than rank x worker slots: every slot reads all
                     shards and keeps sample j when j % slots == slot
    Shuffle          training only: seeded sample-shuffle buffer
    DecodeClips      decode the sampled frames (decord, PyAV or torchcodec: ``core.data.decoders``) +
                     transform; corrupt samples are skipped
    Batch            collate to {"video", "label", "key"}
    TakeBatches      training only: exactly the worker's share of the fixed batches per epoch

Every stage is a module-level class (not a lambda) because DataLoader workers receive the pipeline
by pickling. Randomness is a pure function of (seed, epoch, rank, worker, sample key), so a run is
reproducible; the epoch lives in a :class:`SharedEpoch` that workers read when they start.

Corrupt data never crashes and is never silent: a tar that cannot be read and a sample that cannot
be decoded are skipped, counted in :class:`PipelineStats` (shared with the workers) and logged with
the shard URL or sample key, rate-limited. No sample is ever replaced by zeros.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import webdataset as wds

from core.data.decoders import DEFAULT_DECODER
from core.data.decoding import DEFAULT_TIMEOUT, DecodeError, DecodeTimeout, read_frames
from core.data.sampling import sample_views
from core.data.shards import VIDEO_EXTENSIONS, read_manifest
from core.data.transforms import EvalTransform, TrainTransform

__all__ = [
    "Batch",
    "DecodeClips",
    "EpochShards",
    "PipelineStats",
    "SharedEpoch",
    "Shuffle",
    "SplitByNode",
    "SplitByWorker",
    "SplitSamples",
    "TakeBatches",
    "build_pipeline",
    "expand_shards",
    "shard_sizes",
]

logger = logging.getLogger(__name__)


def expand_shards(shards: str | os.PathLike | Sequence[str | os.PathLike]) -> list[str]:
    """Shard URLs from a pattern or list: ``::``-separated patterns, brace expansion (``a-{000..009}.tar``),
    a local directory (all its ``*.tar``), or ``pipe:`` commands (e.g. ``pipe:aws s3 cp s3://b/a.tar -``).

    Raises:
        FileNotFoundError: a local shard (not ``pipe:`` or a URL scheme) does not exist.
    """
    items = [shards] if isinstance(shards, (str, os.PathLike)) else list(shards)
    urls: list[str] = []
    for item in items:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).glob("*.tar"))
            if not found:
                raise FileNotFoundError(f"no .tar shards in directory {item}")
            urls.extend(found)
            continue
        urls.extend(wds.shardlists.expand_urls(item))
    for url in urls:
        if "://" not in url and not url.startswith("pipe:") and not os.path.isfile(url):
            raise FileNotFoundError(f"shard {url} does not exist (check the path or brace pattern)")
    if not urls:
        raise ValueError(f"no shards in {shards!r}")
    return urls


def shard_sizes(urls: Sequence[str]) -> list[int] | None:
    """Samples per shard from the ``manifest.json`` beside local shards; None if any is unknown."""
    manifests: dict[str, dict[str, int]] = {}
    sizes = []
    for url in urls:
        if "://" in url or url.startswith("pipe:"):
            return None
        directory = os.path.dirname(os.path.abspath(url))
        if directory not in manifests:
            manifest = read_manifest(directory)
            manifests[directory] = {s["name"]: s["samples"] for s in manifest["shards"]} if manifest else {}
        size = manifests[directory].get(os.path.basename(url))
        if size is None:
            return None
        sizes.append(size)
    return sizes


# ---------------------------------------------------------------------------------------------------------------
# Shared state between the main process and the DataLoader workers.


class SharedEpoch:
    """The current epoch, readable by workers started after :meth:`set` (a ``multiprocessing.Value``)."""

    def __init__(self, epoch: int = 0):
        self.value = multiprocessing.Value("i", epoch)

    def set(self, epoch: int) -> None:
        self.value.value = epoch

    def get(self) -> int:
        return self.value.value


class PipelineStats:
    """Counters summed over the main process and all workers (shared memory)."""

    FIELDS = ("clips", "skipped_decode", "skipped_timeout", "skipped_read", "suspect_duplicates")

    def __init__(self):
        self._counts = multiprocessing.Array("q", len(self.FIELDS))

    def add(self, field: str, n: int = 1) -> None:
        with self._counts.get_lock():
            self._counts[self.FIELDS.index(field)] += n

    def snapshot(self) -> dict[str, int]:
        with self._counts.get_lock():
            return dict(zip(self.FIELDS, self._counts[:]))

    def reset(self) -> None:
        with self._counts.get_lock():
            for i in range(len(self.FIELDS)):
                self._counts[i] = 0


class _Progress:
    """Clips decoded by this process; lets an endless shard stream notice that its shards yield nothing."""

    def __init__(self) -> None:
        self.clips = 0


class _RateLimitedLog:
    """Per-process warning log: the first ``burst`` messages, then at most one every ``interval`` seconds."""

    def __init__(self, burst: int = 5, interval: float = 30.0):
        self.burst, self.interval = burst, interval
        self.emitted, self.suppressed, self.last = 0, 0, 0.0

    def warn(self, message: str, *args: Any) -> None:
        now = time.monotonic()
        if self.emitted < self.burst or now - self.last >= self.interval:
            if self.suppressed:
                message += f" (+{self.suppressed} similar messages suppressed)"
            logger.warning(message, *args)
            self.emitted, self.suppressed, self.last = self.emitted + 1, 0, now
        else:
            self.suppressed += 1


_LOG = _RateLimitedLog()


def _worker() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


# ---------------------------------------------------------------------------------------------------------------
# Stages (each a picklable callable: iterator in, iterator out; the first one is iterable).


@dataclass
class EpochShards:
    """Shard URLs as ``{"url", "index"}``; ``index`` is the position in the current round.

    Evaluation (``repeat=False``): the URLs once, in order. Training: round ``r`` of epoch ``e`` is a
    permutation seeded by ``(seed, e, r)`` (identical on every rank, so the split below is disjoint),
    and rounds repeat forever; :class:`TakeBatches` ends the epoch.
    """

    urls: list[str]
    seed: int
    epoch: SharedEpoch
    repeat: bool
    progress: _Progress | None = None  # shared with DecodeClips (one pickle: the reference survives)
    patience: int = 8

    def __call__(self) -> Iterator[dict[str, Any]]:  # DataPipeline calls its first stage without arguments
        return iter(self)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if not self.repeat:
            yield from ({"url": url, "index": i} for i, url in enumerate(self.urls))
            return
        seen, idle = -1, 0
        for round_ in range(2**62):
            if self.progress is not None:
                # samples can wait in the shuffle buffer for a few rounds; `patience` rounds without a single
                # decoded clip means this worker's shards hold nothing decodable: fail instead of spinning forever
                idle = idle + 1 if self.progress.clips == seen else 0
                if idle > self.patience:
                    raise RuntimeError(f"{idle} passes over this worker's shards gave no decodable clip "
                                       f"({len(self.urls)} shards, e.g. {self.urls[0]}); check the shards")
                seen = self.progress.clips
            order = np.random.default_rng([self.seed, self.epoch.get(), round_]).permutation(len(self.urls))
            yield from ({"url": self.urls[j], "index": i, "round": round_} for i, j in enumerate(order))


@dataclass
class SplitByNode:
    """Keep shard ``index % world_size == rank`` (a no-op when samples are split instead)."""

    rank: int
    world_size: int
    enabled: bool = True

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        for item in src:
            if not self.enabled or item["index"] % self.world_size == self.rank:
                yield item


@dataclass
class SplitByWorker:
    """Among this rank's shards, keep ``(index // world_size) % num_workers == worker``."""

    world_size: int
    enabled: bool = True

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        worker, num_workers = _worker()
        for item in src:
            if not self.enabled or (item["index"] // self.world_size) % num_workers == worker:
                yield item


@dataclass
class SplitSamples:
    """Sample-level split for few shards: slot ``rank * workers + worker`` keeps sample ``j % slots == slot``.

    Every slot reads the same shards in the same order, so the running index ``j`` agrees across slots.
    """

    rank: int
    world_size: int
    enabled: bool

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        worker, num_workers = _worker()
        slots, slot = self.world_size * num_workers, self.rank * num_workers + worker
        for j, sample in enumerate(src):
            if not self.enabled or j % slots == slot:
                yield sample


class ReadErrorHandler:
    """WebDataset exception handler: count, log (rate-limited) with the shard URL, and continue."""

    def __init__(self, stats: PipelineStats):
        self.stats = stats

    def __call__(self, error: Exception) -> bool:
        self.stats.add("skipped_read")
        _LOG.warn("skipping unreadable shard data: %s", " ".join(str(a) for a in error.args)[:300])
        return True


@dataclass
class Shuffle:
    """Seeded shuffle buffer (training): fills to ``bufsize`` samples, then yields a random one per new sample.

    It holds encoded samples (video bytes, before decoding), so memory is ``bufsize`` x the mean file size.
    """

    bufsize: int
    seed: int
    epoch: SharedEpoch
    rank: int

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        worker, _ = _worker()
        rng = np.random.default_rng([self.seed, self.epoch.get(), self.rank, worker, 1])
        buffer: list[dict] = []
        for sample in src:
            buffer.append(sample)
            if len(buffer) >= self.bufsize:
                j = int(rng.integers(len(buffer)))
                buffer[j], buffer[-1] = buffer[-1], buffer[j]
                yield buffer.pop()
        rng.shuffle(buffer)
        yield from buffer


@dataclass
class DecodeClips:
    """Sample dict -> ``{"video", "label", "key"}``: sample frame indices, decode them, transform.

    ``video`` is (T, 3, S, S), or (V, T, 3, S, S) with ``V = clips * crops`` views in crop-major order
    (view ``c * clips + k`` is crop ``c`` of temporal clip ``k``, as ILA orders them) when ``V > 1``.
    A sample without video or label, or whose video cannot be decoded in time, is skipped and counted.
    ``decoder`` is a backend name already resolved by the caller (``core.data.decoders.resolve_decoder``); each
    worker opens its own reader per sample, so no reader ever crosses a process boundary.
    """

    num_frames: int
    sampling: str
    clips: int
    transform: TrainTransform | EvalTransform
    seed: int
    epoch: SharedEpoch
    stats: PipelineStats
    timeout: float | None = DEFAULT_TIMEOUT
    duplicate_warning: float = 0.5  # warn when more than this fraction of the clip's frames are repeats
    progress: _Progress | None = None
    decoder: str = DEFAULT_DECODER

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        for sample in src:
            out = self.decode(sample)
            if out is not None:
                self.stats.add("clips")
                if self.progress is not None:
                    self.progress.clips += 1
                yield out

    def _rng(self, key: str) -> np.random.Generator:
        train = isinstance(self.transform, TrainTransform)
        # the sample key, not the worker, seeds the clip: the same clip whichever worker reads it
        parts = [self.seed, self.epoch.get() if train else 0, zlib.crc32(key.encode())]
        return np.random.default_rng(parts)

    def decode(self, sample: dict) -> dict | None:
        key = sample.get("__key__", "?")
        where = f"{key} ({sample.get('__url__', '?')})"
        try:
            meta = json.loads(sample["json"]) if "json" in sample else {}
            label = meta.get("label", int(sample["cls"]) if "cls" in sample else None)
            ext = next((e for e in VIDEO_EXTENSIONS if e in sample), None)
            if ext is None or label is None:
                raise DecodeError(f"no {'video member' if ext is None else 'label'} in the sample")
            rng = self._rng(key)
            clips = self._clip_indices(rng)
            decoded = read_frames(sample[ext], clips, num_frames=meta.get("num_frames"), timeout=self.timeout,
                                  decoder=self.decoder)
        except DecodeTimeout as error:
            self.stats.add("skipped_timeout")
            self.stats.add("skipped_decode")
            _LOG.warn("skipping sample %s: %s", where, error)
            return None
        except (DecodeError, ValueError, KeyError) as error:
            self.stats.add("skipped_decode")
            _LOG.warn("skipping sample %s: %s", where, error)
            return None
        frames = decoded.frames  # (clips, T, H, W, 3)
        if decoded.duplicates > self.duplicate_warning * frames.shape[0] * frames.shape[1]:
            self.stats.add("suspect_duplicates")
            _LOG.warn("sample %s: %d of its decoded frames repeat the previous one (static video or "
                      "undecodable frames returned as duplicates by %s)", where, decoded.duplicates, self.decoder)
        return {"video": self._transform(frames, rng), "label": int(label), "key": key}

    def _clip_indices(self, rng: np.random.Generator):
        def indices(available: int) -> np.ndarray:  # (clips, T), computed once the decoder knows the frame count
            return sample_views(self.sampling, available, self.num_frames, self.clips, rng)

        return indices

    def _transform(self, frames: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        if isinstance(self.transform, TrainTransform):
            return self.transform(frames[0], rng)
        views = torch.stack([self.transform(clip) for clip in frames])  # (clips, crops, T, 3, S, S)
        views = views.transpose(0, 1).flatten(0, 1)  # crop-major
        return views[0] if views.shape[0] == 1 else views


class Batch:
    """Collate samples into ``{"video": (B, ...), "label": (B,) long, "key": list[str]}``; keeps the last partial
    batch unless ``drop_last``."""

    def __init__(self, batch_size: int, drop_last: bool = False):
        self.batch_size, self.drop_last = batch_size, drop_last

    @staticmethod
    def collate(samples: list[dict]) -> dict[str, Any]:
        return {"video": torch.stack([s["video"] for s in samples]),
                "label": torch.tensor([s["label"] for s in samples], dtype=torch.long),
                "key": [s["key"] for s in samples]}

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        pending: list[dict] = []
        for sample in src:
            pending.append(sample)
            if len(pending) == self.batch_size:
                yield self.collate(pending)
                pending = []
        if pending and not self.drop_last:
            yield self.collate(pending)


@dataclass
class TakeBatches:
    """End a worker's (endless) training stream after its share of ``batches`` per rank.

    Worker ``w`` of ``W`` yields ``batches // W + (w < batches % W)``, so the DataLoader yields
    exactly ``batches`` on every rank, however uneven the shards.
    """

    batches: int

    def __call__(self, src: Iterable[dict]) -> Iterator[dict]:
        worker, num_workers = _worker()
        share = self.batches // num_workers + (1 if worker < self.batches % num_workers else 0)
        if share == 0:
            return
        for i, batch in enumerate(src):
            yield batch
            if i + 1 >= share:
                return


def build_pipeline(
    urls: list[str], *, train: bool, decode: DecodeClips, batch_size: int, rank: int, world_size: int,
    num_workers: int, seed: int, epoch: SharedEpoch, stats: PipelineStats, epoch_batches: int | None,
    shuffle_buffer: int = 64,
) -> wds.DataPipeline:
    """Assemble the stages listed in the module docstring into a ``webdataset.DataPipeline``."""
    slots = world_size * max(num_workers, 1)
    split_samples = len(urls) < slots
    if split_samples:
        logger.info("%d shards < %d rank x worker slots: splitting by sample (every slot reads every shard)",
                    len(urls), slots)
    progress = decode.progress = _Progress()
    stages: list[Any] = [
        EpochShards(urls, seed, epoch, repeat=train, progress=progress, patience=shuffle_buffer + 2),
        SplitByNode(rank, world_size, enabled=not split_samples),
        SplitByWorker(world_size, enabled=not split_samples),
        wds.tarfile_to_samples(handler=ReadErrorHandler(stats)),
        SplitSamples(rank, world_size, enabled=split_samples),
    ]
    if train:
        stages.append(Shuffle(shuffle_buffer, seed, epoch, rank))
    stages += [decode, Batch(batch_size, drop_last=train)]
    if train:
        if not epoch_batches:
            raise ValueError("training needs epoch_batches (batches per rank per epoch) when the dataset size is "
                             "unknown (no manifest.json beside the shards)")
        stages.append(TakeBatches(epoch_batches))
    return wds.DataPipeline(*stages)
