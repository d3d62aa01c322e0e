"""Decoder backends (decord, PyAV, torchcodec): the same sampler indices give the same frames from every backend,
corrupt videos are skipped, counted and named alike, decord falls back to PyAV, unusable backends say how to
install them. A backend that cannot run here is skipped with its reason (``pytest -ra`` lists it)."""

from __future__ import annotations

import io
import logging
import sys
from fractions import Fraction

import numpy as np
import pytest

from core.data import decoders
from core.data.decoders import DECODERS, DecoderUnavailable, decoder_status, resolve_decoder
from core.data.decoding import DecodeError, probe_video, read_frames
from core.data.encoding import encode_video
from core.data.loader import make_video_loader
from core.data.sampling import sample_views
from core.data.shards import MANIFEST, ShardTarWriter, atomic_write_json, build_manifest

AVAILABLE = [name for name in DECODERS if decoder_status(name) is None]
STEP = 3  # bar columns per frame: frame t shows a white bar at columns [3t, 3t + 4)


def _backend_params():
    return [pytest.param(name, marks=pytest.mark.skipif(decoder_status(name) is not None,
                                                          reason=str(decoder_status(name))))
            for name in DECODERS]


def scene(num_frames: int, height: int, width: int) -> np.ndarray:
    """A colour gradient with a white bar whose position names the frame (``bar_index`` reads it back)."""
    y, x = np.mgrid[0:height, 0:width]
    background = np.stack([x * 100 // max(width - 1, 1), y * 100 // max(height - 1, 1), np.full_like(x, 60)], -1)
    frames = np.repeat(background[None].astype(np.uint8), num_frames, axis=0)
    for t in range(num_frames):
        frames[t, :, STEP * t:STEP * t + 4] = 255
    return frames


def bar_index(frame) -> int:
    columns = np.asarray(frame, dtype=np.float32).mean(axis=(0, 2))
    return int(round((np.flatnonzero(columns > 170).mean() - 1.5) / STEP))


def _encode(frames: np.ndarray, codec: str, fmt: str, *, pix_fmt: str = "yuv420p", options=None,
            durations_ms: list[int] | None = None) -> bytes:
    """PyAV encoding with what ``encode_video`` keeps fixed: pixel format, B-frames, per-frame timestamps (VFR)."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.options = dict(options or {})
        if durations_ms:
            stream.codec_context.time_base = Fraction(1, 1000)
        stamp = 0
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if durations_ms:
                frame.pts, frame.time_base = stamp, Fraction(1, 1000)
                stamp += durations_ms[t % len(durations_ms)]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


_VP9_SCRIPT = """
import io, sys
import av, numpy as np
frames = np.load(io.BytesIO(sys.stdin.buffer.read()))
buffer = io.BytesIO()
with av.open(buffer, mode="w", format="webm") as out:
    stream = out.add_stream("libvpx-vp9", rate=25)
    stream.width, stream.height, stream.pix_fmt, stream.options = frames.shape[2], frames.shape[1], "yuv420p", {"g": "6"}
    for image in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
sys.stdout.buffer.write(buffer.getvalue())
"""


def _vp9_webm(clip: np.ndarray) -> bytes:
    """VP9 in WebM, encoded in a fresh interpreter: when decord is imported before PyAV, PyAV's libvpx encoders fail
    to open in that process (their bundled libraries clash); ``core.data.decoders`` imports them in the safe order,
    but any test module may import decord first."""
    import subprocess

    import av

    if "libvpx-vp9" not in av.codecs_available:
        pytest.skip("this PyAV build has no libvpx-vp9 encoder")
    array = io.BytesIO()
    np.save(array, clip)
    done = subprocess.run([sys.executable, "-c", _VP9_SCRIPT], input=array.getvalue(), capture_output=True,
                          timeout=120, check=True)
    return done.stdout


# name -> how to make it (built on first use, once per session)
_MAKERS = {
    "h264-mp4": lambda clip: encode_video(clip, fps=8, keyint=6),
    "h264-bframes-mp4": lambda clip: _encode(clip, "libx264", "mp4", options={"bf": "3", "g": "12"}),
    "mpeg4-avi": lambda clip: encode_video(clip, fps=8, container="avi", keyint=6),
    "vp9-webm": _vp9_webm,
    "mjpeg-avi": lambda clip: _encode(clip, "mjpeg", "avi", pix_fmt="yuvj420p"),
    "vfr-h264-mp4": lambda clip: _encode(clip, "libx264", "mp4", options={"bf": "0"}, durations_ms=[33, 100, 17, 250]),
    "vfr-h264-mkv": lambda clip: _encode(clip, "libx264", "matroska", options={"bf": "0"}, durations_ms=[40, 120, 20]),
    "odd-99x67-h264-yuv444": lambda clip: _encode(scene(30, 67, 99), "libx264", "mp4", pix_fmt="yuv444p"),
    "98x66-mpeg4-avi": lambda clip: _encode(scene(30, 66, 98), "mpeg4", "avi", options={"g": "8"}),
}
_BUILT: dict[str, bytes] = {}


def project_video(name: str) -> bytes:
    """The project's own test video ``name``: 30 frames (64 x 112 unless the name says otherwise)."""
    if name not in _BUILT:
        _BUILT[name] = _MAKERS[name](scene(30, 64, 112))
    return _BUILT[name]


SAMPLERS = ["segment", "segment_center", "uniform", "dense:2"]


@pytest.mark.parametrize("name", list(_MAKERS))
def test_same_sampler_indices_give_the_same_frames_from_every_backend(name):
    assert AVAILABLE, "no decoder backend available"
    data = project_video(name)
    counts = {backend: len(decoders.open_video(data, backend)) for backend in AVAILABLE}
    assert set(counts.values()) == {30}, counts  # one numbering of the frames, variable frame rate included
    for sampler in SAMPLERS:
        indices = sample_views(sampler, 30, 8, 2, np.random.default_rng(7))  # (2 clips, 8 frames)
        decoded = {backend: read_frames(data, indices, decoder=backend).frames.numpy() for backend in AVAILABLE}
        reference = decoded[AVAILABLE[0]]
        for backend, frames in decoded.items():
            assert frames.shape == indices.shape + reference.shape[2:], (backend, sampler)
            # every backend returns the frame the sampler asked for ...
            assert [[bar_index(f) for f in clip] for clip in frames] == indices.tolist(), (backend, sampler)
            # ... with the same pixels up to colour-conversion rounding
            diff = np.abs(frames.astype(np.int16) - reference.astype(np.int16))
            assert diff.mean() <= 1.0 and diff.max() <= 24, (backend, sampler, diff.mean(), diff.max())


def test_the_synthetic_datasets_clips_decode_alike(small_synthetic):
    import tarfile

    shard = sorted(small_synthetic.root.rglob("*.tar"))[0]
    with tarfile.open(shard) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith(".mp4"))
        data = tar.extractfile(member).read()
    frames = {backend: read_frames(data, lambda n: np.arange(n), decoder=backend).frames.numpy()
              for backend in AVAILABLE}
    reference = frames[AVAILABLE[0]]
    for backend, value in frames.items():
        assert value.shape == reference.shape
        assert np.abs(value.astype(np.int16) - reference.astype(np.int16)).mean() <= 1.0, backend


def _corrupt_shards(tmp_path) -> list[str]:
    """One shard: good clips and every kind of bad one; and a copy cut in the middle of a sample."""
    good = encode_video(scene(12, 32, 64), fps=8, keyint=4)
    mkv = encode_video(scene(12, 32, 64), fps=8, container="mkv", keyint=4)
    bad = [
        ("garbage", "mp4", b"\x00garbage" * 64, {"label": 1}),
        ("moov_lost", "mp4", good[: len(good) // 2], {"label": 1, "num_frames": 12}),  # mp4 index at the end
        ("header_only", "mp4", good[: int(len(good) * 0.8)], {"label": 1, "num_frames": 12}),
        ("cut_mkv", "mkv", mkv[: len(mkv) // 2], {"label": 2, "num_frames": 12}),  # opens, frames missing
        ("no_label", "mp4", good, {"num_frames": 12}),
    ]
    directory = tmp_path / "shards"
    directory.mkdir()
    with ShardTarWriter(directory / "part-000000.tar") as writer:
        for i in range(3):
            writer.add(f"good_{i}", "mp4", good, {"label": i, "num_frames": 12})
        for key, ext, data, meta in bad:
            writer.add(key, ext, data, meta)
        writer.add("good_mkv", "mkv", mkv, {"label": 0, "num_frames": 12})
        entry = writer.commit()
    atomic_write_json(directory / MANIFEST, build_manifest([entry], classes=["a", "b", "c"], skipped=[]))
    return [str(directory / entry["name"])]


@pytest.mark.parametrize("backend", _backend_params())
def test_corrupt_videos_are_skipped_counted_and_named_alike(backend, tmp_path, caplog, monkeypatch):
    from core.data import reader

    monkeypatch.setattr(reader, "_LOG", reader._RateLimitedLog())  # the earlier backends' warnings used the burst
    shards = _corrupt_shards(tmp_path)
    for workers in (0, 2):  # in this process (its log is captured), and in 2 workers that open their own readers
        loader = make_video_loader(shards, train=False, num_frames=8, input_size=32, mean=(0, 0, 0),
                                   std=(1, 1, 1), batch_size=4, sampling="segment_center", decoder=backend,
                                   num_workers=workers)
        with caplog.at_level(logging.WARNING):
            keys = [key for batch in loader for key in batch["key"]]
        # the same outcome for every backend: the four good clips, five named skips, no crash, no zero-filled clip
        assert sorted(keys) == ["good_0", "good_1", "good_2", "good_mkv"]
        stats = loader.last_epoch_stats
        assert (stats["clips"], stats["skipped_decode"], stats["skipped_timeout"]) == (4, 5, 0)
        if workers == 0:
            for key in ("garbage", "moov_lost", "header_only", "cut_mkv", "no_label"):
                assert f"skipping sample {key}" in caplog.text, key


@pytest.mark.parametrize("backend", _backend_params())
def test_probe_validates_with_the_chosen_backend(backend):
    info = probe_video(project_video("vfr-h264-mp4"), decoder=backend)
    assert (info.num_frames, info.width, info.height) == (30, 112, 64)
    with pytest.raises(DecodeError):
        probe_video(b"\x00garbage" * 64, decoder=backend)


def test_decords_narrow_frame_bug_is_a_clear_error_and_other_backends_read_them():
    data = encode_video(scene(8, 32, 48), fps=8)  # 48 px wide: decord returns 4 "channels" per pixel here
    for backend in AVAILABLE:
        try:
            frames = read_frames(data, np.arange(8), decoder=backend).frames
        except DecodeError as error:
            assert backend == "decord" and "data.decoder=pyav" in str(error), (backend, error)
            continue
        assert frames.shape == (8, 32, 48, 3) and [bar_index(f) for f in frames] == list(range(8)), backend


@pytest.fixture
def fresh_decoder_state(monkeypatch):
    """Forget cached availability before and after (the test fakes a missing library)."""
    decoder_status.cache_clear()
    monkeypatch.setattr(decoders, "_FELL_BACK", False)
    yield monkeypatch
    decoder_status.cache_clear()


def test_missing_decord_falls_back_to_pyav_with_one_warning(fresh_decoder_state, tmp_path, caplog):
    fresh_decoder_state.setitem(sys.modules, "decord", None)  # `import decord` now raises ImportError
    shards = _corrupt_shards(tmp_path)
    with caplog.at_level(logging.WARNING, logger="core.data.decoders"):
        loaders = [make_video_loader(shards, train=False, num_frames=8, input_size=32, mean=(0, 0, 0),
                                     std=(1, 1, 1), batch_size=4) for _ in range(2)]
        keys = [key for batch in loaders[0] for key in batch["key"]]
    warnings = [r for r in caplog.records if r.name == "core.data.decoders"]
    assert len(warnings) == 1 and "Falling back to the PyAV decoder" in warnings[0].getMessage()
    assert "decord cannot be used here" in warnings[0].getMessage()
    assert keys == ["good_0", "good_1", "good_2", "good_mkv"]  # decoded by PyAV
    assert resolve_decoder("decord") == "pyav"


def test_unusable_backend_says_how_to_install_it(fresh_decoder_state):
    fresh_decoder_state.setitem(sys.modules, "torchcodec", None)
    fresh_decoder_state.setitem(sys.modules, "torchcodec.decoders", None)
    with pytest.raises(DecoderUnavailable, match=r"torchcodec cannot be used here") as info:
        resolve_decoder("torchcodec")
    assert "chronoclip[torchcodec]" in str(info.value) and "apt-get install ffmpeg" in str(info.value)
    assert "data.decoder=pyav" in str(info.value)
    with pytest.raises(ValueError, match="unknown video decoder 'opencv'; choose one of decord, pyav, torchcodec"):
        resolve_decoder("opencv")


def test_predict_reads_files_with_every_backend(tmp_path):
    from core.predict import read_clip

    path = tmp_path / "clip.mkv"
    path.write_bytes(project_video("vfr-h264-mkv"))
    views = {backend: read_clip(path, num_frames=8, input_size=32, mean=(0, 0, 0), std=(1, 1, 1), clips=2,
                                decoder=backend) for backend in AVAILABLE}
    reference = views[AVAILABLE[0]]
    assert reference.shape == (2, 8, 3, 32, 32)
    for backend, value in views.items():
        assert (value - reference).abs().mean() <= 1 / 255, backend


def test_choosing_decord_keeps_pyavs_vpx_encoders_working():
    """decord loaded first breaks PyAV's libvpx encoders in the process; the backend module loads PyAV first."""
    import subprocess

    script = ("import numpy as np\n"
              "from core.data.decoders import decoder_status\n"
              "decoder_status('decord')\n"
              "from core.data.encoding import encode_video\n"
              "print(len(encode_video(np.zeros((4, 32, 64, 3), np.uint8), container='webm')))\n")
    import os
    from pathlib import Path

    root = str(Path(__file__).resolve().parents[2])  # the checkout, for runs without an installed chronoclip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
