"""Video decoder backends: decord (default), PyAV and torchcodec behind one small interface.

Every backend opens a video (in-memory bytes or a file path) as a :class:`FrameReader`:

* ``len(reader)``: the number of frames, in presentation order (frame ``k`` is the ``k``-th frame a
  player shows; every backend numbers them from the container's packet index, so variable frame rate
  videos get the same numbering everywhere);
* ``reader.fps``: the average frame rate;
* ``reader.get_batch(indices)``: the frames at sorted, distinct ``indices`` as a ``(N, H, W, 3)`` uint8
  array (RGB).

The backend is chosen by name (``data.decoder`` in a recipe, ``--decoder`` on ``chronoclip-shards``,
``core.predict`` and ``python -m evaluation``) and resolved with :func:`resolve_decoder`:

* ``decord``: the project's reference decoder. When it cannot be imported (no wheels for macOS or ARM, no
  build against FFmpeg 6+), :func:`resolve_decoder` falls back to ``pyav`` with one warning per process.
* ``pyav``: FFmpeg bundled in PyAV's wheels (a hard dependency: always available). Random access seeks
  to the keyframe before each requested frame and decodes forward from there.
* ``torchcodec``: PyTorch's decoder (``pip install 'chronoclip[torchcodec]'``); it needs a build matching
  the installed torch and FFmpeg 4-9 shared libraries on the system (``apt-get install ffmpeg``,
  ``conda install ffmpeg``, ``brew install ffmpeg``). Where they are missing, choosing it is an error that
  says so.

Readers are opened per video inside the process that decodes it (a DataLoader worker): nothing here is
shared between processes (decord deadlocks when a reader crosses a fork, dmlc/decord#294). Every
reader decodes with one thread; the loader's workers are the parallelism.

Frames agree across backends up to colour-conversion rounding (same indices, mean absolute difference
below 1 grey level on the project's videos: ``tests/data/test_data_decoders.py``).
"""

from __future__ import annotations

import bisect
import functools
import io
import logging
import os
import re
from collections.abc import Sequence
from typing import Protocol

import numpy as np

__all__ = [
    "DECODERS",
    "DEFAULT_DECODER",
    "DecodeError",
    "DecodeTimeout",
    "DecoderUnavailable",
    "FrameReader",
    "decoder_status",
    "open_video",
    "resolve_decoder",
]

logger = logging.getLogger(__name__)

DECODERS = ("decord", "pyav", "torchcodec")
DEFAULT_DECODER = "decord"

Source = bytes | str | os.PathLike


class DecodeError(RuntimeError):
    """A video that cannot be decoded (corrupt bytes, no video stream, no frames)."""


class DecodeTimeout(DecodeError):
    """A decoding call that did not finish within its time bound."""


class DecoderUnavailable(ValueError):
    """The chosen decoder backend cannot run here; the message says how to install it or what to choose instead."""


class FrameReader(Protocol):
    fps: float

    def __len__(self) -> int: ...

    def get_batch(self, indices: Sequence[int]) -> np.ndarray: ...


def first_line(error: BaseException) -> str:
    """The informative first line of a decoder's exception (decord's build-path prefixes removed)."""
    text = str(error).strip().splitlines()
    if not text:
        return type(error).__name__
    # decord prefixes its messages with "[hh:mm:ss] /build/path/file.cc:NN: ", torchcodec with
    # "function, /build/path/file.cpp:NN, "; keep the part that says why
    line = re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", text[0])
    return re.sub(r"^\w+, \S+:\d+, ", "", line)[:200]


# ---------------------------------------------------------------------------------------------------------------
# Availability and choice


_INSTALL = {
    "decord": "pip install decord (wheels exist for x86-64 Linux and Windows only); or choose data.decoder=pyav",
    "pyav": "pip install av",
    "torchcodec": "pip install 'chronoclip[torchcodec]' (a torchcodec release built for your torch version) and "
                  "FFmpeg 4-9 shared libraries: apt-get install ffmpeg, conda install ffmpeg or brew install ffmpeg; "
                  "or choose data.decoder=pyav",
}


@functools.cache
def decoder_status(name: str) -> str | None:
    """``None`` when backend ``name`` can decode in this process, else why not and how to fix it (cached)."""
    if name not in DECODERS:
        raise ValueError(f"unknown video decoder {name!r}; choose one of {', '.join(DECODERS)}")
    try:
        if name == "decord":
            _import_decord()
        elif name == "pyav":
            import av  # noqa: F401
        else:
            import torchcodec.decoders  # noqa: F401

            try:  # torchcodec imports without FFmpeg and fails at the first decoder; load its libraries now
                from torchcodec._internally_replaced_utils import load_core_libraries
            except ImportError:  # a future layout: the first VideoDecoder will raise instead
                load_core_libraries = None
            if load_core_libraries is not None:
                load_core_libraries()
    except Exception as error:  # ImportError, OSError from a shared library, torchcodec's RuntimeError
        why = first_line(error)
        if name == "torchcodec" and why.startswith("Could not load libtorchcodec"):
            why = "its FFmpeg libraries (libavcodec 4-9) or a torch-compatible build are missing"
        return f"{name} cannot be used here ({why}); install: {_INSTALL[name]}"
    return None


_FELL_BACK = False


def resolve_decoder(name: str | None = None) -> str:
    """The backend to use for ``name`` (default ``decord``), checked now rather than in a worker.

    decord that cannot be imported falls back to ``pyav``, with one warning per process.

    Raises:
        ValueError: an unknown name.
        DecoderUnavailable: ``pyav`` or ``torchcodec`` cannot run here (the message says how to install it).
    """
    global _FELL_BACK
    name = (name or DEFAULT_DECODER).lower()
    problem = decoder_status(name)
    if problem is None:
        return name
    if name == "decord" and decoder_status("pyav") is None:
        if not _FELL_BACK:
            logger.warning("%s. Falling back to the PyAV decoder (data.decoder=pyav / --decoder pyav; frames agree "
                           "with decord's up to colour rounding).", problem)
            _FELL_BACK = True
        return "pyav"
    raise DecoderUnavailable(problem)


def open_video(source: Source, decoder: str = DEFAULT_DECODER) -> FrameReader:
    """A one-thread :class:`FrameReader` over ``source`` (bytes or a path) with backend ``decoder``.

    Raises:
        DecodeError: the source is not a readable video.
        DecoderUnavailable: the backend cannot run here.
    """
    opener = _OPENERS.get(decoder)
    if opener is None:
        raise ValueError(f"unknown video decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    problem = decoder_status(decoder)
    if problem is not None:
        raise DecoderUnavailable(problem)
    return opener(source)


def _as_file(source: Source):
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)


# ---------------------------------------------------------------------------------------------------------------
# decord


def _import_decord():
    """decord, imported after PyAV: loaded the other way round, decord's bundled FFmpeg libraries shadow PyAV's and
    PyAV's libvpx encoders (VP8/VP9) fail to open for the rest of the process."""
    try:
        import av  # noqa: F401
    except ImportError:
        pass
    import decord

    return decord


class _DecordReader:
    def __init__(self, source: Source):
        decord = _import_decord()

        try:
            self._reader = decord.VideoReader(_as_file(source), ctx=decord.cpu(0), num_threads=1)
            self.fps = float(self._reader.get_avg_fps())
        except Exception as error:  # DECORDError, or RuntimeError when the bytes are not a container at all
            raise DecodeError(f"decord cannot open the video: {first_line(error)}") from None

    def __len__(self) -> int:
        return len(self._reader)

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        try:
            frames = self._reader.get_batch(list(indices)).asnumpy()
        except Exception as error:  # decord raises DECORDError and plain RuntimeError from the C side
            hint = _NARROW if "DECORDArrayCopyFromTo" in str(error) else ""
            raise DecodeError(f"decord failed to decode frames: {first_line(error)}{hint}") from None
        if frames.shape[-1] != 3:
            raise DecodeError(f"decord returned {frames.shape[-1]}-channel frames for a {frames.shape[2]} px wide "
                              f"video{_NARROW}")
        return frames


# decord pads the rows of some narrow frames (e.g. 16, 24 or 48 px wide) and then reports them as 4 or 6 "channels"
# (one frame) or fails to copy them (several frames)
_NARROW = " (a decord bug with some narrow frame widths); decode it with data.decoder=pyav or torchcodec"


# ---------------------------------------------------------------------------------------------------------------
# PyAV


class _PyAVReader:
    """Frame-accurate random access with PyAV: a packet index (presentation timestamps, keyframes), then for each
    requested frame a seek to the keyframe before it (only when decoding on would be slower) and decoding up to it."""

    def __init__(self, source: Source):
        import av

        try:
            self._container = av.open(_as_file(source), mode="r")
        except Exception as error:  # av.error.FFmpegError, OSError, ValueError on broken input
            raise DecodeError(f"pyav cannot open the video: {first_line(error)}") from None
        try:
            if not self._container.streams.video or self._container.streams.video[0].codec_context is None:
                raise DecodeError("pyav cannot open the video: no decodable video stream")
            self._stream = stream = self._container.streams.video[0]
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
            self.fps = float(stream.average_rate or stream.guessed_rate or 0.0)
            pts, keyframes = [], []
            for packet in self._container.demux(stream):
                if packet.size == 0:  # the demuxer's end-of-stream flush packet
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                pts.append(stamp)
                if packet.is_keyframe:
                    keyframes.append(stamp)
        except DecodeError:
            self.close()
            raise
        except Exception as error:  # av.error.FFmpegError and the odd AttributeError of a half-read header
            self.close()
            raise DecodeError(f"pyav cannot read the container: {first_line(error)}") from None
        self._indexed = None not in pts
        self._pts = sorted(pts) if self._indexed else list(range(len(pts)))
        self._keyframes = sorted(keyframes) if self._indexed else []
        self._frames = None  # the running decode iterator
        self._position: int | None = None  # pts of the last frame it returned

    def close(self) -> None:
        """Free the decoder now (not in some later garbage collection, possibly in a forked worker)."""
        self._frames = None
        self._container.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __len__(self) -> int:
        return len(self._pts)

    def _restart(self, anchor: int | None) -> None:
        if anchor is None:  # no usable index: decode from the start
            self._container.seek(0)
        else:
            self._container.seek(anchor, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._decode()
        self._position = None

    def _decode(self):
        count = 0
        for frame in self._container.decode(self._stream):
            stamp = frame.pts if self._indexed else count
            count += 1
            yield stamp, frame

    def _next_at_or_after(self, target: int):
        for stamp, frame in self._frames:
            if stamp is None:
                continue
            self._position = stamp
            if stamp >= target:
                return stamp, frame
        return None, None

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        out = []
        try:
            for index in indices:
                target = self._pts[int(index)]
                if self._indexed:
                    k = bisect.bisect_right(self._keyframes, target) - 1
                    anchor = self._keyframes[k] if k >= 0 else self._pts[0]
                    # seek only when the keyframe before the target lies past where decoding stands (or behind us)
                    if self._frames is None or self._position is None or anchor > self._position \
                            or target <= self._position:
                        self._restart(anchor)
                    stamp, frame = self._next_at_or_after(target)
                    if stamp is not None and stamp > target and anchor != self._pts[0]:
                        # the seek landed past the target (a demuxer that seeks by dts): decode from the start
                        self._restart(None if not self._indexed else self._pts[0])
                        stamp, frame = self._next_at_or_after(target)
                else:
                    if self._frames is None or self._position is None or target <= self._position:
                        self._restart(None)
                    stamp, frame = self._next_at_or_after(target)
                if frame is None:
                    raise DecodeError(f"pyav failed to decode frames: frame {int(index)} of {len(self)} is missing "
                                      f"(corrupt or truncated stream)")
                out.append(_rgb(frame))
                frame = None
        except DecodeError:
            raise
        except Exception as error:  # av.error.FFmpegError, and anything else a broken stream provokes
            self._frames = None
            raise DecodeError(f"pyav failed to decode frames: {first_line(error)}") from None
        if not out:
            return np.zeros((0, 0, 0, 3), dtype=np.uint8)
        return np.stack(out)


def _rgb(frame) -> np.ndarray:
    """RGB array of a PyAV frame, converted by swscale on one thread.

    swscale's default ("auto") starts slice threads; a frame still holding such a context when a DataLoader forks
    its workers is freed in the child, where destroying the parent's thread state deadlocks. One thread: no state.
    """
    try:
        return frame.to_ndarray(format="rgb24", threads=1)
    except TypeError:  # PyAV < 14 has no threads argument (and converts on one thread)
        return frame.to_ndarray(format="rgb24")


# ---------------------------------------------------------------------------------------------------------------
# torchcodec


class _TorchCodecReader:
    def __init__(self, source: Source):
        from torchcodec.decoders import VideoDecoder

        if isinstance(source, (bytearray, memoryview)):
            source = bytes(source)
        elif not isinstance(source, bytes):
            source = os.fspath(source)
        try:
            # exact: scan the file once for a frame index, as decord does (frame k = k-th in presentation order)
            self._decoder = VideoDecoder(source, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
            self.fps = float(self._decoder.metadata.average_fps or 0.0)
        except Exception as error:  # RuntimeError / ValueError from the C++ core
            raise DecodeError(f"torchcodec cannot open the video: {first_line(error)}") from None

    def __len__(self) -> int:
        return len(self._decoder)

    def get_batch(self, indices: Sequence[int]) -> np.ndarray:
        try:
            return self._decoder.get_frames_at([int(i) for i in indices]).data.numpy()
        except Exception as error:
            raise DecodeError(f"torchcodec failed to decode frames: {first_line(error)}") from None


_OPENERS = {"decord": _DecordReader, "pyav": _PyAVReader, "torchcodec": _TorchCodecReader}
