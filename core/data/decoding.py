"""Bounded video decoding from in-memory bytes (reading: the chosen backend; validation: PyAV).

The backends (decord, PyAV, torchcodec) live in ``core.data.decoders``; every function here takes
``decoder=`` (a backend name, default ``decord``). Three decoder traps shape this module:

* **Thread oversubscription.** decord's default decoder thread count is "all cores"; inside N
  loader workers that is N x cores threads fighting for the CPU. Every reader opens with one
  thread (the workers are the parallelism).
* **Over-reported frame counts hang ``get_batch``.** A container whose header claims more frames
  than it holds makes decord seek past the end, which can loop forever. The shard writer stores a
  *validated* count (frames PyAV actually decodes, capped by the backend's own count) in each sample's
  JSON; :func:`read_frames` never asks for an index at or past it. As a second line of defence
  every decoder call runs under a watchdog (:func:`run_bounded`): past ``timeout`` seconds the call
  is abandoned and :class:`DecodeTimeout` is raised, so one bad file costs seconds, not a worker.
  (A C call cannot be killed from Python; the abandoned thread is left to finish or spin on its own,
  and the count of such threads is logged so a run that leaks many says so.)
* **Undecodable frames come back as silent duplicates.** decord returns the last good frame again
  when a frame fails to decode. :func:`read_frames` counts how many distinct requested indices
  returned a byte-identical copy of the previous one; the reader logs clips where most frames are
  duplicates (a fully static scene also produces them, so this is a warning, not a rejection).
"""

from __future__ import annotations

import io
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from core.data.decoders import (
    DEFAULT_DECODER,
    DecodeError,
    DecoderUnavailable,
    DecodeTimeout,
    FrameReader,
    Source,
    first_line,
    open_video,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DecodeError",
    "DecodeTimeout",
    "DecodedFrames",
    "DecoderUnavailable",
    "VideoInfo",
    "count_decodable_frames",
    "open_reader",
    "probe_video",
    "read_frames",
    "run_bounded",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # seconds for one decord/PyAV call; a 10 s Kinetics clip decodes in well under 1 s
_T = TypeVar("_T")


class _Watchdog:
    """One daemon thread per process that runs decoding calls; replaced when a call overruns.

    A daemon thread (not a ``ThreadPoolExecutor``, whose threads are joined at interpreter exit) so that a
    call stuck in C can never keep a worker process from exiting.
    """

    def __init__(self) -> None:
        self._pid = -1  # after a fork (DataLoader workers) the parent's thread does not exist: start anew
        self._jobs: queue.SimpleQueue | None = None
        self._lock = threading.Lock()
        self.abandoned = 0

    @staticmethod
    def _serve(jobs: queue.SimpleQueue) -> None:
        while True:
            fn, result, done = jobs.get()
            try:
                result.append((True, fn()))
            except BaseException as error:  # handed to the caller, which re-raises it
                result.append((False, error))
            done.set()

    def run(self, fn: Callable[[], _T], timeout: float, what: str) -> _T:
        with self._lock:
            if self._pid != os.getpid():
                self._jobs = queue.SimpleQueue()
                threading.Thread(target=self._serve, args=(self._jobs,), daemon=True,
                                 name="chronoclip-decode").start()
                self._pid = os.getpid()
            result: list = []
            done = threading.Event()
            self._jobs.put((fn, result, done))
            if not done.wait(timeout):
                self._pid = -1  # abandon the busy thread; the next call starts a fresh one
                self.abandoned += 1
                logger.warning("%s did not finish in %.1f s; abandoned its thread (%d abandoned in pid %d)",
                               what, timeout, self.abandoned, os.getpid())
                raise DecodeTimeout(f"{what} took longer than {timeout:.1f} s")
            ok, value = result[0]
            if ok:
                return value
            raise value


_WATCHDOG = _Watchdog()


def run_bounded(fn: Callable[[], _T], timeout: float | None, what: str = "decoding") -> _T:
    """``fn()`` with a wall-clock bound (``None``: unbounded, in the calling thread).

    Raises:
        DecodeTimeout: ``fn`` did not return within ``timeout`` seconds.
    """
    if timeout is None:
        return fn()
    return _WATCHDOG.run(fn, timeout, what)


@dataclass(frozen=True)
class VideoInfo:
    """What the shard writer records per video (``num_frames`` is the validated count)."""

    num_frames: int
    fps: float
    width: int
    height: int
    reported_frames: int  # the decoder's count from the container index (may exceed num_frames)
    corrupt_packets: int = 0  # packets PyAV could not decode (decord may return repeated frames for them)


@dataclass(frozen=True)
class DecodedFrames:
    """Frames returned by :func:`read_frames`."""

    frames: torch.Tensor  # (N, H, W, 3) uint8, in the order of the requested indices
    duplicates: int  # distinct requested indices whose frame is byte-identical to the previous one


def open_reader(data: Source, *, decoder: str = DEFAULT_DECODER) -> FrameReader:
    """A one-thread reader of backend ``decoder`` over in-memory bytes or a path (``core.data.decoders``)."""
    return open_video(data, decoder)


def read_frames(
    data: Source, indices: np.ndarray | Callable[[int], np.ndarray], *, num_frames: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT, decoder: str = DEFAULT_DECODER,
) -> DecodedFrames:
    """Decode only the frames at ``indices`` (any shape, any order, repeats allowed).

    Args:
        data: the encoded video file (bytes), or its path.
        indices: frame indices into ``[0, n)``, where ``n`` is the decoder's frame count capped by ``num_frames``;
            or a function ``n -> indices`` (a sampler), called once ``n`` is known.
        num_frames: the validated frame count stored at shard-writing time; ``None`` trusts the decoder.
        timeout: seconds for the whole open + seek + decode; ``None`` for no bound.
        decoder: backend name (``decord``, ``pyav``, ``torchcodec``), resolved by the caller
            (``core.data.decoders.resolve_decoder``).

    Returns:
        ``DecodedFrames`` with frames of shape ``indices.shape + (H, W, 3)``.

    Raises:
        DecodeError: unreadable video, an index out of range, or a timeout (``DecodeTimeout``).
    """

    def work() -> DecodedFrames:
        reader = open_reader(data, decoder=decoder)
        available = len(reader) if num_frames is None else min(len(reader), int(num_frames))
        if available <= 0:
            raise DecodeError("the video has no decodable frames")
        index = np.asarray(indices(available) if callable(indices) else indices, dtype=np.int64)
        try:
            return _read(reader, index, available)
        finally:
            close = getattr(reader, "close", None)
            if close is not None:  # PyAV: free the decoder here, not at a garbage collection in a forked worker
                close()

    return run_bounded(work, timeout, f"{decoder} read")


def _read(reader: FrameReader, indices: np.ndarray, available: int) -> DecodedFrames:
    if indices.size and (indices.min() < 0 or indices.max() >= available):
        raise DecodeError(f"frame index {int(indices.max())} out of range for {available} frames")
    unique, inverse = np.unique(indices, return_inverse=True)
    frames = torch.from_numpy(np.ascontiguousarray(reader.get_batch(unique.tolist())))
    dups = sum(torch.equal(frames[k], frames[k - 1]) for k in range(1, len(unique)))
    return DecodedFrames(frames[torch.from_numpy(inverse.reshape(-1))].reshape(*indices.shape, *frames.shape[1:]),
                         int(dups))


def count_decodable_frames(data: bytes, *, timeout: float | None = DEFAULT_TIMEOUT) -> tuple[int, int]:
    """Decode the first video stream with PyAV: (frames decoded, packets that failed to decode).

    A packet that fails is skipped, as a player would, so the count is what can really be decoded.
    """
    import av

    def work() -> tuple[int, int]:
        frames = errors = 0
        try:
            with av.open(io.BytesIO(data), mode="r") as container:
                if not container.streams.video:
                    raise DecodeError("no video stream")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for packet in container.demux(stream):
                    try:
                        frames += len(packet.decode())
                    except av.error.FFmpegError:
                        errors += 1
        except av.error.FFmpegError as error:
            raise DecodeError(f"PyAV cannot read the container: {first_line(error)}") from None
        return frames, errors

    return run_bounded(work, timeout, "PyAV frame count")


def probe_video(data: bytes, *, timeout: float | None = DEFAULT_TIMEOUT, decoder: str = DEFAULT_DECODER) -> VideoInfo:
    """Validate a video for the shard writer: the backend opens it, PyAV decodes it, the backend reads its last frame.

    ``num_frames`` = min(the backend's reported count, frames PyAV decodes), then checked by reading frame
    ``num_frames - 1`` with the backend under the time bound, so the reader can trust it.

    Raises:
        DecodeError: the video cannot be opened, has no frames, or its last validated frame cannot be read.
    """

    def meta() -> tuple[int, float, int, int]:
        reader = open_reader(data, decoder=decoder)
        height, width = reader.get_batch([0]).shape[1:3] if len(reader) else (0, 0)
        return len(reader), float(reader.fps), int(width), int(height)

    reported, fps, width, height = run_bounded(meta, timeout, f"{decoder} open")
    if reported <= 0:
        raise DecodeError(f"{decoder} reports 0 frames")
    decoded, corrupt = count_decodable_frames(data, timeout=timeout)
    if decoded <= 0:
        raise DecodeError("PyAV decodes 0 frames")
    num_frames = min(reported, decoded)
    read_frames(data, np.array([0, num_frames - 1]), num_frames=num_frames, timeout=timeout, decoder=decoder)
    return VideoInfo(num_frames=num_frames, fps=fps, width=width, height=height, reported_frames=reported,
                     corrupt_packets=corrupt)
