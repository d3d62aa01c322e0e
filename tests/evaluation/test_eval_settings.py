"""Test settings: a method's own evaluation.yaml (no edit of evaluation/), one precedence, one frame resolver."""

from __future__ import annotations

import pytest

import core.method
from core.eval.settings import (
    DEFAULT_NUM_FRAMES,
    RunTestSettings,
    parse_views,
    resolve_num_frames,
    resolve_settings,
)
from core.method import Method


class _FifthMethod(Method):
    """A plugin core has never heard of, shipping its test settings beside its recipes."""

    name = "fifth"
    config_package = "core.configs.vifi"  # any package holding an evaluation.yaml


class _BareMethod(Method):
    name = "bare"


@pytest.fixture
def plugins(monkeypatch):
    real = core.method.load_method
    table = {"fifth": _FifthMethod(), "bare": _BareMethod()}
    monkeypatch.setattr(core.method, "load_method", lambda name: table.get(name) or real(name))


def test_a_new_method_ships_its_settings_as_data(plugins):
    plugin = _FifthMethod()
    assert "evaluation" not in plugin.configs()  # evaluation.yaml is not a recipe
    assert plugin.evaluation_settings()["fully-supervised"]["views"] == [4, 3]
    s = resolve_settings("fifth", "fully-supervised")
    assert (s.frames, s.clips, s.crops, s.sampling, s.aggregation) == (16, 4, 3, "segment", "softmax_sum")
    assert s.origin["views"] == "core.configs.vifi/evaluation.yaml"
    bare = resolve_settings("bare", "base-to-novel")  # no evaluation.yaml: core's defaults
    assert (bare.frames, bare.origin["frames"]) == (DEFAULT_NUM_FRAMES, "core default settings")


def test_precedence_command_line_then_run_then_method(plugins):
    run = RunTestSettings(frames=4, views=(2, 1), sampling="segment", seed=7)
    s = resolve_settings("fifth", "zero-shot", run=run)
    assert (s.frames, s.clips, s.crops, s.sampling, s.seed) == (4, 2, 1, "segment", 7)
    assert s.origin["views"].startswith("the run")
    s = resolve_settings("fifth", "zero-shot", run=run, overrides={"views": "1x3", "frames": 6})
    assert (s.frames, s.clips, s.crops, s.origin["views"]) == (6, 1, 3, "command line")


def test_frame_resolution_order():
    assert resolve_num_frames() == (DEFAULT_NUM_FRAMES, "core default")
    assert resolve_num_frames(method_default=32)[0] == 32
    assert resolve_num_frames(stored=16, method_default=32)[0] == 16
    assert resolve_num_frames(requested=4, stored=16, method_default=32)[0] == 4
    assert resolve_num_frames(fixed=8, stored=8) == (8, "model (fixed by its weights)")
    with pytest.raises(ValueError, match="fixed by its weights"):
        resolve_num_frames(fixed=8, requested=16)


def test_views_parsing():
    assert parse_views("4x3") == (4, 3) and parse_views("2×1") == (2, 1) and parse_views([1, 3]) == (1, 3)
    for bad in ("4", "4x2", "ax3", "0x1"):
        with pytest.raises(ValueError, match="views"):
            parse_views(bad)


def test_a_run_keeps_its_own_views_only_on_the_data_it_validated_on(plugins):
    from core.eval.sets import EvalSet

    synthetic_run = RunTestSettings(frames=4, views=(1, 1), sampling="segment_center", seed=3,
                                    validated_on=("synthetic",))
    stand_in = EvalSet("base", "val", "x", ["a"], dataset="synthetic")
    real = EvalSet("HMDB-51", "1", "/data/hmdb_val1", ["a"], dataset="hmdb51")
    assert synthetic_run.covers([stand_in]) and not synthetic_run.covers([stand_in, real])
    assert RunTestSettings(validated_on=("/data/hmdb_val1",)).covers([real])
    # elsewhere only the frame count carries over; the method's final-test settings apply
    s = resolve_settings("fifth", "fully-supervised", run=synthetic_run.frames_only())
    assert (s.frames, s.clips, s.crops, s.sampling, s.seed) == (4, 4, 3, "segment", None)
