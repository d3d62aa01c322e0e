"""Frame samplers against indices computed by hand from the reference formulas (0-based)."""

from __future__ import annotations

import numpy as np
import pytest

from core.data import sampling


class BoundRng:
    """A generator whose ``integers`` always returns the lowest (or highest) allowed value.

    It pins the random samplers to the two ends of every segment, which are computed by hand below.
    """

    def __init__(self, highest: bool):
        self.highest = highest

    def integers(self, low, high=None, size=None):
        if high is None:
            low, high = 0, low
        low, high = np.asarray(low), np.asarray(high)
        value = high - 1 if self.highest else low
        shape = size if size is not None else np.broadcast(low, high).shape
        return np.broadcast_to(value, shape).astype(np.int64).copy()


LOW, HIGH = BoundRng(False), BoundRng(True)


def test_segment_mmaction_train():
    # n=20, T=4: seg = 20 // 4 = 5, index = 5i + randint(5)
    assert sampling.segment(20, 4, LOW).tolist() == [0, 5, 10, 15]
    assert sampling.segment(20, 4, HIGH).tolist() == [4, 9, 14, 19]
    # n=21: seg is still 5, frame 20 is never used (mmaction drops the remainder)
    assert sampling.segment(21, 4, HIGH).tolist() == [4, 9, 14, 19]
    # short clip n=5, T=8: round(i * 5/8), half to even: 2.5 -> 2
    assert sampling.segment(5, 8, LOW).tolist() == [0, 1, 1, 2, 2, 3, 4, 4]


def test_segment_center_mmaction_test():
    assert sampling.segment_center(20, 4).tolist() == [2, 7, 12, 17]  # int(5i + 2.5)
    # n=30, T=8: int(3.75 i + 1.875)
    assert sampling.segment_center(30, 8).tolist() == [1, 5, 9, 13, 16, 20, 24, 28]
    assert sampling.segment_center(5, 8).tolist() == [0, 0, 1, 2, 2, 3, 4, 4]  # int(.625 i + .3125)


def test_segment_t2l_train():
    # n=30, T=8: ticks i*30//8 = 0 3 7 11 15 18 22 26 30; index = tick + randint(tick_len)
    assert sampling.segment_t2l(30, 8, LOW).tolist() == [0, 3, 7, 11, 15, 18, 22, 26]
    assert sampling.segment_t2l(30, 8, HIGH).tolist() == [2, 6, 10, 14, 17, 21, 25, 29]
    # n <= T: all frames plus T - n random duplicates, sorted (the pinned draws duplicate frame 0 or frame n-1)
    assert sampling.segment_t2l(5, 8, LOW).tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert sampling.segment_t2l(5, 8, HIGH).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]
    assert sampling.segment_t2l(8, 8, LOW).tolist() == list(range(8))


def test_segment_center_t2l_test():
    # n=30, T=8: int(3.75 i + (3.75 - 1) / 2) = int(3.75 i + 1.375)
    assert sampling.segment_center_t2l(30, 8).tolist() == [1, 5, 8, 12, 16, 20, 23, 27]
    assert sampling.segment_center_t2l(5, 8).tolist() == [0, 0, 1, 1, 2, 3, 3, 4]  # i*5 // 8


def test_uniform_ila_stan():
    # n=30, T=8: seg = 29/8 = 3.625, edges round(3.625 k) = 0 4 7 11 14 18 22 25 29 (14.5 -> 14: half to even)
    assert sampling.uniform(30, 8, LOW).tolist() == [0, 4, 7, 11, 14, 18, 22, 25]
    assert sampling.uniform(30, 8, HIGH).tolist() == [4, 7, 11, 14, 18, 22, 25, 29]  # both ends included
    assert sampling.uniform_center(30, 8).tolist() == [1, 5, 8, 12, 15, 19, 23, 26]  # start + int(1.8125)
    assert sampling.uniform_mid(30, 8).tolist() == [2, 5, 9, 12, 16, 20, 23, 27]  # (start + end) // 2
    # short clip n=5, T=8: seg = 0.5, edges 0 0 1 2 2 2 3 4 4
    assert sampling.uniform(5, 8, LOW).tolist() == [0, 0, 1, 2, 2, 2, 3, 4]
    assert sampling.uniform(5, 8, HIGH).tolist() == [0, 1, 2, 2, 2, 3, 4, 4]


def test_dense():
    # T=4, interval 2 over n=30: start uniform in [0, 30 - 8]
    assert sampling.dense(30, 4, LOW).tolist() == [0, 2, 4, 6]
    assert sampling.dense(30, 4, HIGH).tolist() == [22, 24, 26, 28]
    assert sampling.get_sampler("dense:3")(30, 4, LOW).tolist() == [0, 3, 6, 9]
    assert sampling.dense_center(30, 4).tolist() == [11, 13, 15, 17]  # int((30 - 8 + 1) / 2)
    assert sampling.dense(5, 4, LOW).tolist() == [0, 2, 4, 1]  # too short: loop modulo n


def test_random_samplers_cover_exactly_their_segments():
    rng = np.random.default_rng(0)
    draws = np.stack([sampling.segment(20, 4, rng) for _ in range(400)])
    for i in range(4):
        assert set(draws[:, i].tolist()) == set(range(5 * i, 5 * i + 5))
    draws = np.stack([sampling.uniform(30, 8, rng) for _ in range(400)])
    assert set(draws[:, 4].tolist()) == {14, 15, 16, 17, 18}
    draws = np.stack([sampling.segment_t2l(30, 8, rng) for _ in range(400)])
    assert set(draws[:, 5].tolist()) == {18, 19, 20, 21}


def test_views():
    # deterministic samplers: view v at position (v + 1) / (V + 1) of each segment
    views = sampling.sample_views("segment_center", 20, 4, 3, None)
    assert views.tolist() == [[1, 6, 11, 16], [2, 7, 12, 17], [3, 8, 13, 18]]
    assert sampling.sample_views("segment_center", 20, 4, 1, None).tolist() == [[2, 7, 12, 17]]
    # random samplers: independent draws (TC-CLIP and ILA multi-view), reproducible from the seed
    a = sampling.sample_views("segment", 100, 8, 4, np.random.default_rng(3))
    b = sampling.sample_views("segment", 100, 8, 4, np.random.default_rng(3))
    assert a.shape == (4, 8) and (a == b).all() and len({tuple(r) for r in a.tolist()}) > 1


def test_errors():
    with pytest.raises(ValueError, match="0 frames"):
        sampling.segment_center(0, 8)
    with pytest.raises(ValueError, match="unknown frame sampler"):
        sampling.get_sampler("tsn")
    with pytest.raises(ValueError, match="rng"):
        sampling.segment(10, 4)
    assert sampling.is_random("uniform") and not sampling.is_random("dense_center:4")
