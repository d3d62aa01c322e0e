"""``make_video_loader``: the one call the trainer and the evaluator use to stream clips from shards.

Distribution (ranks are arguments, so tests simulate them without a process group):

* **Training** reads *resampled* shards: every epoch and round gets a fresh seeded shard permutation
  (the same on every rank), split disjointly over ``world_size x num_workers`` slots, and the stream
  of each slot repeats with a new permutation when its shards run out (so the slots are disjoint
  within a round; a slot that needs more than its share, for the fixed batch count or to fill its
  shuffle buffer, continues into the next round's permutation: that is the resampling). Each rank yields exactly
  ``epoch_batches`` full batches per epoch (default: dataset size // (batch_size x world_size)), so
  no rank ever waits at a collective for a rank with bigger shards. ``set_epoch`` reshuffles.
* **Evaluation** visits every sample exactly once across all ranks: shards are dealt to
  ``(rank, worker)`` slots (shard ``i`` -> rank ``i % world``, then worker ``(i // world) % W``), or,
  when there are fewer shards than slots, every slot reads all shards and keeps sample
  ``j % slots == slot``. There is no resampling, no padding and no dropped last batch, so ranks may
  yield *different* numbers of batches: the evaluator must not run a collective per batch; it runs
  its loop locally and gathers ``(key, logits, label)`` once at the end (the keys prove coverage).
  Corrupt samples are the only ones missing, and the loader's ``stats`` counts them.

Batches are ``{"video": float (B, T, 3, S, S) or (B, V, T, 3, S, S), "label": long (B,), "key": list[str]}``.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from core.data.decoders import resolve_decoder
from core.data.reader import (
    DecodeClips,
    PipelineStats,
    SharedEpoch,
    build_pipeline,
    expand_shards,
    shard_sizes,
)
from core.data.sampling import get_sampler
from core.data.shards import read_manifest
from core.data.transforms import EvalTransform, TrainTransform, compile_color_jitter

__all__ = ["VideoLoader", "make_video_loader"]

# The worker count decides how samples are split between loader slots, and so the data order: it is a recipe
# setting, never lowered to the machine's core count (quick-start numbers reproduce across machines). Torch's
# advice to lower it is noise here; each worker decodes with one thread.
warnings.filterwarnings("ignore", message="This DataLoader will create", category=UserWarning)

logger = logging.getLogger(__name__)

_AUGMENT_KEYS = {"crop", "flip", "color_jitter", "grayscale", "random_erasing", "num_fixed_crops"}


def _worker_init(_: int) -> None:
    # one intra-op thread per worker: N workers x all-core torch ops would oversubscribe the CPU
    torch.set_num_threads(1)


class VideoLoader:
    """A ``torch.utils.data.DataLoader`` over a clip pipeline, with epoch control and skip statistics.

    Attributes:
        dataloader: the underlying DataLoader (``batch_size=None``: the pipeline batches).
        num_batches: batches this rank yields per epoch (training: exact; evaluation: an upper bound
            that is exact when no sample is corrupt; None when shard sizes are unknown).
        num_samples: samples in all shards (from the manifests), or None.
        class_names: class names from the manifest, or None.
        stats: counters of the epoch in progress (clips, skipped_decode, skipped_timeout, skipped_read,
            suspect_duplicates), summed over workers.
        last_epoch_stats: the counters of the last finished epoch.
    """

    def __init__(self, dataloader: torch.utils.data.DataLoader, *, epoch: SharedEpoch, stats: PipelineStats,
                 train: bool, num_batches: int | None, num_samples: int | None, class_names: list[str] | None):
        self.dataloader, self._epoch, self.stats, self.train = dataloader, epoch, stats, train
        self.num_batches, self.num_samples, self.class_names = num_batches, num_samples, class_names
        self.last_epoch_stats: dict[str, int] = {}

    @property
    def epoch(self) -> int:
        return self._epoch.get()

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (seeds the shard permutation, the shuffle buffer and the augmentations)."""
        self._epoch.set(epoch)

    def __len__(self) -> int:
        if self.num_batches is None:
            raise TypeError("number of batches unknown: no manifest.json beside the shards (pass epoch_batches)")
        return self.num_batches

    def __iter__(self) -> Iterator[dict[str, Any]]:
        self.stats.reset()
        yield from self.dataloader
        self.last_epoch_stats = stats = self.stats.snapshot()
        skipped = stats["skipped_decode"] + stats["skipped_read"]
        total = stats["clips"] + skipped
        message = ("%s epoch %d: %d clips; skipped %d (%.2f%%): %d undecodable samples (%d timeouts), "
                   "%d unreadable shard entries; %d clips with mostly repeated frames")
        args = ("train" if self.train else "eval", self.epoch, stats["clips"], skipped,
                100.0 * skipped / max(total, 1), stats["skipped_decode"], stats["skipped_timeout"],
                stats["skipped_read"], stats["suspect_duplicates"])
        (logger.warning if skipped else logger.info)(message, *args)


def _make_transform(train: bool, input_size: int, augment: Mapping[str, Any] | None, crops: int,
                    mean: Sequence[float], std: Sequence[float]):
    mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
    if not train:
        return EvalTransform(input_size, mean, std, num_crops=crops)
    augment = dict(augment or {})
    unknown = set(augment) - _AUGMENT_KEYS
    if unknown:
        raise ValueError(f"unknown augment keys {sorted(unknown)}; allowed: {sorted(_AUGMENT_KEYS)}")
    return TrainTransform(input_size, mean, std, **augment)


def _eval_batches(sizes: list[int], batch_size: int, rank: int, world_size: int, workers: int) -> int:
    workers = max(workers, 1)
    slots = world_size * workers
    if len(sizes) < slots:
        total = sum(sizes)
        per_slot = [total // slots + (1 if s < total % slots else 0) for s in range(slots)]
        mine = per_slot[rank * workers:(rank + 1) * workers]
    else:
        mine = [sum(n for i, n in enumerate(sizes) if i % world_size == rank and (i // world_size) % workers == w)
                for w in range(workers)]
    return sum(math.ceil(n / batch_size) for n in mine)


def make_video_loader(
    shards: str | os.PathLike | Sequence[str | os.PathLike], *, train: bool, num_frames: int, input_size: int,
    mean: Sequence[float], std: Sequence[float], batch_size: int, sampling: str | None = None,
    views: Sequence[int] = (1, 1), augment: Mapping[str, Any] | None = None, num_workers: int = 0,
    world_size: int = 1, rank: int = 0, seed: int = 0, epoch: int = 0, epoch_batches: int | None = None,
    timeout: float | None = 30.0, shuffle_buffer: int = 64, pin_memory: bool = False, decoder: str | None = None,
) -> VideoLoader:
    """A loader of clips from WebDataset video shards (see the module docstring for the distribution rules).

    Args:
        shards: shard URLs: a directory, a brace pattern (``data/train-{000000..000099}.tar``), ``::``-joined
            patterns, a list, or ``pipe:`` commands.
        train: training (resampled, shuffled, augmented, fixed batches) or evaluation (every sample once).
        num_frames: frames per clip ``T``.
        input_size: output side ``S``.
        mean, std: normalisation on the 0-1 scale (the model's ``input_mean``/``input_std``).
        batch_size: clips per batch on this rank.
        sampling: frame sampler name (``core.data.sampling``); default ``segment`` (train) / ``segment_center``.
        views: evaluation ``(temporal clips, spatial crops)``, e.g. ``(4, 3)``; crops are 1 or 3. Training: (1, 1).
        augment: training augmentation, keys of ``TrainTransform``: crop, flip, color_jitter, grayscale,
            random_erasing, num_fixed_crops (the recipe's ``data.augment``). None: TrainTransform defaults.
        num_workers: DataLoader worker processes (each decodes with one thread).
        world_size, rank: this process's place among the data-parallel ranks.
        seed: base seed of shard order, shuffling, frame sampling and augmentation.
        epoch: initial epoch (``set_epoch`` changes it).
        epoch_batches: training batches per rank per epoch; default from the manifests.
        timeout: seconds allowed to decode one sample (None: unbounded).
        shuffle_buffer: training shuffle buffer, in encoded samples (memory: buffer x file size per worker).
        pin_memory: pin batches for faster host-to-GPU copies.
        decoder: video decoder backend, ``decord`` (default; PyAV with one warning when decord cannot be
            imported), ``pyav`` or ``torchcodec`` (``core.data.decoders``). Checked here, in this process; each
            worker opens its own readers.

    Returns:
        A :class:`VideoLoader` (iterable of batch dicts; ``len()`` = batches per epoch on this rank).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
    if len(views) != 2 or views[0] < 1 or views[1] not in (1, 3):
        raise ValueError(f"views must be (temporal clips >= 1, spatial crops 1 or 3), got {tuple(views)}")
    if train and tuple(views) != (1, 1):
        raise ValueError(f"training takes one view per clip, got views={tuple(views)}")
    sampling = sampling or ("segment" if train else "segment_center")
    get_sampler(sampling)  # validates the name now rather than in a worker
    decoder = resolve_decoder(decoder)  # likewise: an unusable backend fails (or falls back) here, once
    urls = expand_shards(shards)
    sizes = shard_sizes(urls)
    num_samples = sum(sizes) if sizes is not None else None
    if train and epoch_batches is None:
        if num_samples is None:
            raise ValueError("pass epoch_batches: the dataset size is unknown (no manifest.json beside the shards)")
        epoch_batches = max(1, num_samples // (batch_size * world_size))
    shared_epoch, stats = SharedEpoch(epoch), PipelineStats()
    decode = DecodeClips(num_frames, sampling, int(views[0]),
                         _make_transform(train, input_size, augment, int(views[1]), mean, std),
                         seed, shared_epoch, stats, timeout=timeout, decoder=decoder)
    pipeline = build_pipeline(urls, train=train, decode=decode, batch_size=batch_size, rank=rank,
                              world_size=world_size, num_workers=num_workers, seed=seed, epoch=shared_epoch,
                              stats=stats, epoch_batches=epoch_batches, shuffle_buffer=shuffle_buffer)
    if num_workers and isinstance(decode.transform, TrainTransform) and decode.transform.color_jitter > 0:
        compile_color_jitter()  # in the parent, before the workers fork (see its docstring)
    dataloader = torch.utils.data.DataLoader(
        pipeline, batch_size=None, num_workers=num_workers, pin_memory=pin_memory, persistent_workers=False,
        worker_init_fn=_worker_init if num_workers else None)
    if train:
        num_batches = epoch_batches
    else:
        num_batches = _eval_batches(sizes, batch_size, rank, world_size, num_workers) if sizes is not None else None
    manifest = read_manifest(os.path.dirname(os.path.abspath(urls[0]))) if sizes is not None else None
    return VideoLoader(dataloader, epoch=shared_epoch, stats=stats, train=train, num_batches=num_batches,
                       num_samples=num_samples, class_names=manifest.get("classes") if manifest else None)
