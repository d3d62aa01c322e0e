"""Warm-up + cosine LR against values computed by hand from the reference schedulers' formulas."""

from __future__ import annotations

import math

import pytest

from core.training.schedule import WarmupCosine


def test_timm_absolute_cosine_drops_at_end_of_warmup():
    # TC-CLIP zero-shot: lr 8e-6, lr_min 8e-8, 10 epochs, 5 warm-up; cosine of the absolute step
    s = WarmupCosine(total_steps=1000, warmup_steps=500, min_lr=8e-8, cosine_from="start")
    assert s.lr(8e-6, 0) == 0.0
    assert s.lr(8e-6, 250) == pytest.approx(4e-6)
    # at t = w = T/2: 8e-8 + 0.5 * (8e-6 - 8e-8) * (1 + cos(pi / 2)) = 4.04e-6
    assert s.lr(8e-6, 500) == pytest.approx(4.04e-6)
    assert s.lr(8e-6, 750) == pytest.approx(8e-8 + 0.5 * (8e-6 - 8e-8) * (1 + math.cos(math.pi * 0.75)))
    assert s.lr(8e-6, 1000) == 8e-8
    # a 10x group warms up to its own peak but shares the floor
    assert s.lr(8e-5, 250) == pytest.approx(4e-5)
    assert s.lr(8e-5, 500) == pytest.approx(8e-8 + 0.5 * (8e-5 - 8e-8))


def test_cosine_from_warmup_end_restarts_at_peak():
    # T2L: warm-up 5 of 50 epochs, then cosine to 0 over the remaining 45
    s = WarmupCosine(total_steps=50, warmup_steps=5, min_lr=0.0, cosine_from="warmup_end")
    assert s.lr(1e-4, 5) == pytest.approx(1e-4)
    assert s.lr(1e-4, 5 + 45 // 3) == pytest.approx(0.5e-4 * (1 + math.cos(math.pi / 3)))
    assert s.lr(1e-4, 49) == pytest.approx(0.5e-4 * (1 + math.cos(math.pi * 44 / 45)))


def test_warmup_start_factor_and_no_warmup():
    # mmengine LinearLR(start_factor=0.05) over 10 steps
    s = WarmupCosine(total_steps=100, warmup_steps=10, warmup_start_factor=0.05, cosine_from="warmup_end")
    assert s.lr(2e-6, 0) == pytest.approx(1e-7)
    assert s.lr(2e-6, 4) == pytest.approx(2e-6 * (0.05 + 0.95 * 0.4))
    flat = WarmupCosine(total_steps=4, warmup_steps=0)
    assert flat.lrs([1.0, 10.0], 0) == [1.0, 10.0]
    assert flat.lr(1.0, 2) == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs", [dict(total_steps=0, warmup_steps=0), dict(total_steps=5, warmup_steps=6),
                                    dict(total_steps=5, warmup_steps=1, cosine_from="end")])
def test_invalid_schedules(kwargs):
    with pytest.raises(ValueError):
        WarmupCosine(**kwargs)
