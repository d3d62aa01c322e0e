"""Decoding real encoded clips with decord: frame accuracy, validation, bounded calls."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.decoding import DecodeError, DecodeTimeout, probe_video, read_frames, run_bounded
from core.data.encoding import encode_video, reencode_video


def test_read_frames_returns_the_requested_frames(bar_video, bars):
    _, bar_index = bars
    indices = np.array([[0, 5, 5, 23], [17, 2, 11, 6]])  # any order, repeats, across keyframes
    decoded = read_frames(bar_video, indices)
    assert decoded.frames.shape == (2, 4, 128, 128, 3)
    assert [[bar_index(f) for f in row] for row in decoded.frames] == indices.tolist()
    assert decoded.duplicates == 0


def test_read_frames_with_a_sampler_and_validated_count(bar_video, bars):
    _, bar_index = bars
    decoded = read_frames(bar_video, lambda n: np.arange(n)[::4], num_frames=10)  # capped: only 10 frames usable
    assert [bar_index(f) for f in decoded.frames] == [0, 4, 8]
    with pytest.raises(DecodeError, match="out of range"):
        read_frames(bar_video, np.array([10]), num_frames=10)


def test_duplicates_are_counted(bars):
    bar_clip, _ = bars
    frames = bar_clip(8)
    frames[4:] = frames[3]  # a frozen tail, as decord returns for undecodable frames
    decoded = read_frames(encode_video(frames), np.arange(8))
    assert decoded.duplicates == 4


@pytest.mark.parametrize("container", ["mp4", "avi", "webm"])
def test_probe_real_containers(container, bars):
    bar_clip, _ = bars
    info = probe_video(encode_video(bar_clip(12), fps=8, container=container))
    assert (info.num_frames, info.width, info.height, info.fps) == (12, 128, 128, 8.0)


def test_probe_rejects_broken_input(bar_video):
    with pytest.raises(DecodeError):
        probe_video(bar_video[: len(bar_video) // 2])  # truncated: the mp4 index is lost
    with pytest.raises(DecodeError):
        probe_video(b"not a video at all" * 50)


def test_reencode_short_side_and_fps(bar_video):
    out = reencode_video(bar_video, short_side=32, fps=4, keyint=2)
    info = probe_video(out)
    assert (info.width, info.height, info.fps, info.num_frames) == (32, 32, 4.0, 12)  # 24 frames at 8 fps -> 12
    # at 1/4 scale the bar of source frame t covers column t; every second source frame is kept
    columns = read_frames(out, np.arange(12)).frames.float().mean(dim=(1, 3)).argmax(dim=1)
    assert columns.tolist() == list(range(0, 24, 2))


def test_run_bounded_times_out():
    start = time.monotonic()
    with pytest.raises(DecodeTimeout, match="longer than 0.2"):
        run_bounded(lambda: time.sleep(3), 0.2, "sleep")
    assert time.monotonic() - start < 2.0
    assert run_bounded(lambda: 7, 1.0) == 7  # a fresh worker thread serves the next call
