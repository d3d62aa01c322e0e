"""Profiling: parameter counts, GFLOPs per view against a hand count, clips/s and memory printed."""

from __future__ import annotations

import pytest
import torch

from evaluation.profile import count_flops, gflops_per_view, main
from evaluation.sources import build_untrained


def test_flop_count_matches_the_hand_count(test_clip_macs_per_frame):
    assert test_clip_macs_per_frame == 1_945_856
    model = build_untrained("vifi", clip="test", num_frames=4)
    flops = gflops_per_view(model, num_frames=4, input_size=32)
    assert flops["gflops"] * 1e9 == pytest.approx(4 * test_clip_macs_per_frame, rel=1e-9)
    assert flops["gflops_raw"] == pytest.approx(2 * flops["gflops"])
    # one class text adds the text tower; the second adds the same again
    assert flops["classify_gflops_1class"] == pytest.approx(flops["gflops"] + flops["text_gflops_per_class"], rel=1e-6)
    assert count_flops(lambda: torch.ones(3) + 1) == 0  # element-wise ops are not counted


def test_profile_prints_the_four_figures_for_every_installed_method(capsys):
    import core

    profiles = main(["--method", "all", "--model", "tiny", "--frames", "4", "--num-classes", "3", "--iters", "1",
                     "--warmup", "1", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert {p.method for p in profiles} == set(core.list_methods())
    for p in profiles:
        assert p.params_total > 0 and 0 <= p.params_trainable <= p.params_total
        assert p.gflops > 0 and p.clips_per_s > 0 and p.peak_memory_mb > 0
    assert printed.count("parameters   total") == len(profiles)
    for key in ("GFLOPs/view", "clips/s/view", "peak memory"):
        assert printed.count(key) == len(profiles)
    clip = next(p for p in profiles if p.method == "clip")
    assert clip.params_trainable == 0


def test_flop_count_includes_the_text_tower_of_a_model_with_warm_text_caches():
    """Cached class-text features (core.text_cache) are dropped before counting, so the text tower is counted."""
    model = build_untrained("clip", clip="test", num_frames=4).eval()
    video = torch.zeros(1, 4, 3, 32, 32)
    with torch.no_grad():
        model.classify(video, ["action number 0"])  # fills the cache with the texts the count uses
        flops = gflops_per_view(model, num_frames=4, input_size=32)
    assert flops["text_gflops_per_class"] > 0
    assert flops["classify_gflops_1class"] == pytest.approx(flops["gflops"] + flops["text_gflops_per_class"], rel=1e-6)
