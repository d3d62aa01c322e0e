"""Fixtures for the data tests: real encoded videos and small shard sets, all built under tmp paths."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.encoding import encode_video
from core.data.synthetic import MOTIONS, SyntheticRecipe, synthetic_dataset


def bar_clip(num_frames: int, size: int = 128, step: int = 4) -> np.ndarray:
    """Frame ``t`` is black with a white vertical bar at columns ``[step*t, step*t + 4)``: decoded frames name
    their own index (see :func:`bar_index`)."""
    frames = np.zeros((num_frames, size, size, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t, :, step * t:step * t + 4] = 255
    return frames


def bar_index(frame, step: int = 4) -> int:
    """The frame index a decoded (H, W, 3) bar frame shows (centroid of its bright columns)."""
    columns = np.asarray(frame, dtype=np.float32).mean(axis=(0, 2))
    return int(round((np.flatnonzero(columns > 127).mean() - 1.5) / step))


@pytest.fixture(scope="session")
def bars():
    """The bar-clip helpers (tests import nothing from conftest: fixtures work under every import mode)."""
    return bar_clip, bar_index


@pytest.fixture(scope="session")
def bar_video() -> bytes:
    return encode_video(bar_clip(24), fps=8, keyint=6)


@pytest.fixture(scope="session")
def small_synthetic(tmp_path_factory):
    """A reduced synthetic dataset (2 colours x 2 shapes x all 10 motions, rotation included; circles do not
    rotate: 36 classes)."""
    recipe = SyntheticRecipe(colors=("red", "blue"), shapes=("circle", "square"), motions=tuple(MOTIONS), train_per_class=2,
                             val_per_class=1, samples_per_shard=8)
    return synthetic_dataset(tmp_path_factory.mktemp("cache"), recipe)


@pytest.fixture(autouse=True)
def fresh_warning_budget():
    """Each test starts with the reader's full per-process warning burst (tests assert on those warnings)."""
    from core.data import reader

    reader._LOG = reader._RateLimitedLog()
    yield
