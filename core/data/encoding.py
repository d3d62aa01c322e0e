"""Encode clips to real video files in memory with PyAV (synthetic data, shard re-encoding, test fixtures)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from fractions import Fraction

import numpy as np

__all__ = ["CONTAINER_CODECS", "available_codec", "encode_video", "reencode_video"]

# container -> codecs to try in order (the first one this PyAV build has wins)
CONTAINER_CODECS = {
    "mp4": ("libx264", "h264", "mpeg4"),
    "mkv": ("libx264", "h264", "mpeg4"),
    "avi": ("mpeg4", "mjpeg"),
    "webm": ("libvpx", "libvpx-vp9", "vp8", "vp9"),
}
_FORMATS = {"mp4": "mp4", "mkv": "matroska", "avi": "avi", "webm": "webm"}


def available_codec(container: str = "mp4") -> str:
    """The first encoder for ``container`` that this PyAV build has (e.g. libx264 for mp4, else mpeg4)."""
    import av

    if container not in CONTAINER_CODECS:
        raise ValueError(f"unknown container {container!r}; choose one of {sorted(CONTAINER_CODECS)}")
    for codec in CONTAINER_CODECS[container]:
        if codec in av.codecs_available:
            return codec
    raise RuntimeError(f"this PyAV build has none of {CONTAINER_CODECS[container]} for {container}; "
                       f"install a PyAV wheel with FFmpeg encoders (pip install av)")


def _open_stream(container, codec: str, fps: Fraction, width: int, height: int, keyint: int | None, quality: int):
    stream = container.add_stream(codec, rate=fps)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    options: dict[str, str] = {}
    if codec in ("libx264", "h264"):
        # no B-frames: decoded order == presentation order, the easiest stream for frame-accurate seeking
        options.update({"crf": str(quality), "preset": "veryfast", "bf": "0"})
    elif codec == "mpeg4":
        options.update({"qscale": "3"})
    elif codec.startswith("libvpx") or codec.startswith("vp"):
        options.update({"crf": str(quality), "b": "0", "deadline": "realtime", "cpu-used": "8"})
    if keyint:
        stream.gop_size = int(keyint)
        if codec in ("libx264", "h264"):
            options["x264-params"] = f"keyint={int(keyint)}:min-keyint={int(keyint)}:scenecut=0"
    stream.options = options
    stream.thread_type = "AUTO"
    return stream


def encode_video(
    frames: np.ndarray | Iterable[np.ndarray], *, fps: float = 8.0, container: str = "mp4", codec: str | None = None,
    keyint: int | None = None, quality: int = 23,
) -> bytes:
    """Encode RGB frames ``(T, H, W, 3)`` uint8 (even H and W) as a video file; returns its bytes.

    Args:
        frames: the clip, or an iterable of (H, W, 3) frames.
        fps: frame rate stored in the container.
        container: ``mp4``, ``mkv``, ``avi`` or ``webm``.
        codec: encoder name; default :func:`available_codec` for the container.
        keyint: keyframe interval in frames (short = fast random access); ``None``: the encoder default.
        quality: CRF for x264/VPx (lower = better).
    """
    import av

    codec = codec or available_codec(container)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=_FORMATS[container]) as out:
        stream = None
        for frame in frames:
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if stream is None:
                height, width = frame.shape[:2]
                if height % 2 or width % 2:
                    raise ValueError(f"frame size {width}x{height} must be even for yuv420p; crop or pad it")
                stream = _open_stream(out, codec, Fraction(fps).limit_denominator(1001), width, height, keyint,
                                      quality)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        if stream is None:
            raise ValueError("no frames to encode")
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def reencode_video(
    data: bytes, *, short_side: int | None = None, fps: float | None = None, keyint: int | None = None,
    container: str = "mp4", codec: str | None = None, quality: int = 23,
) -> bytes:
    """Decode ``data`` with PyAV and encode it again: optional short side (aspect kept, even sizes), frame rate
    (frames dropped or repeated by timestamp) and keyframe interval."""
    import av

    with av.open(io.BytesIO(data), mode="r") as source:
        stream = source.streams.video[0]
        stream.thread_type = "AUTO"
        src_fps = float(stream.average_rate or stream.guessed_rate or 30)
        out_fps = fps or src_fps

        def frames():
            next_time = 0.0
            for index, frame in enumerate(source.decode(stream)):
                width, height = frame.width, frame.height
                if short_side:
                    scale = short_side / min(width, height)
                    width, height = int(round(width * scale / 2)) * 2, int(round(height * scale / 2)) * 2
                else:
                    width, height = width // 2 * 2, height // 2 * 2
                image = frame.to_ndarray(format="rgb24", width=width, height=height)
                time = frame.time if frame.time is not None else index / src_fps
                # emit this frame once for every output tick it covers (drops at lower fps, repeats at higher)
                while next_time <= time + 0.5 / src_fps:
                    yield image
                    next_time += 1.0 / out_fps

        return encode_video(frames(), fps=out_fps, container=container, codec=codec, keyint=keyint, quality=quality)
