"""`python -m evaluation compare`: seeds with a 95 % interval, interleaved repeated timings, one consistent table."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from evaluation.cli import main
from evaluation.metrics import harmonic_mean
from evaluation.stats import mean_interval, median_iqr, overlapping, seeds_for_half_width, t_quantile


def test_t_interval_on_known_numbers():
    # 10, 12, 14: mean 12, std 2, half-width = t(0.975, 2) * 2 / sqrt(3) = 4.303 * 1.1547 = 4.9687
    got = mean_interval([10.0, 12.0, 14.0])
    assert got["mean"] == 12.0 and got["std"] == pytest.approx(2.0) and got["n"] == 3
    assert got["half_width"] == pytest.approx(4.303 * 2 / math.sqrt(3))
    assert (got["low"], got["high"]) == pytest.approx((12 - 4.9687, 12 + 4.9687), abs=1e-3)
    one = mean_interval([53.5])
    assert one["mean"] == 53.5 and math.isnan(one["half_width"])  # one seed: the run itself, no interval
    assert t_quantile(1) == 12.706 and t_quantile(31) == pytest.approx(2.0395, abs=1e-3)
    assert t_quantile(1000) == pytest.approx(1.9623, abs=1e-3)
    with pytest.raises(ValueError, match="degree of freedom"):
        t_quantile(0)


def test_seeds_needed_and_median_iqr():
    # std 3: n=4 gives 3.182 * 3 / 2 = 4.77, n=6: 2.571*3/2.449 = 3.15, n=7: 2.447*3/2.646 = 2.77 <= 3
    assert seeds_for_half_width(3.0, 3.0) == 7
    assert seeds_for_half_width(float("nan"), 3.0) is None
    got = median_iqr([5.0, 1.0, 4.0, 2.0, 3.0])
    assert (got["median"], got["q1"], got["q3"], got["iqr"]) == (3.0, 2.0, 4.0, 2.0)
    assert overlapping({"a": (1, 3), "b": (2.5, 4), "c": (5, 6)}) == [("a", "b")]


def test_compare_untrained_table_is_consistent(small_synthetic, tmp_path, test_clip_macs_per_frame):
    out = tmp_path / "compare"
    result = main(["compare", "--untrained", "--model", "test", "--frames", "4", "--methods", "clip,vifi",
                   "--output-dir", str(out), "--quiet", "--device", "cpu", "--iters", "1", "--seeds", "2",
                   "--repeats", "3"])
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"clip", "vifi"}
    saved = json.loads((out / "compare.json").read_text())
    for row in rows.values():
        per_seed = saved["details"][row["method"]]["per_seed"]
        assert len(per_seed) == 2 and row["seeds"] == 2
        for key in ("base", "novel", "hm", "reversal_base", "reversal_novel"):
            values = [s[key] for s in per_seed]
            assert row[key] == pytest.approx(statistics.fmean(values))
            assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"]
        for s in per_seed:
            assert s["hm"] == pytest.approx(harmonic_mean(s["base"], s["novel"]))
        assert row["gflops"] * 1e9 == pytest.approx(4 * test_clip_macs_per_frame, rel=1e-9)
        assert 0.0 <= row["reversal_novel"] <= 100.0 and row["clips_per_s"] > 0
        assert len(row["clips_per_s_repeats"]) == 3
        assert row["clips_per_s_q1"] <= row["clips_per_s"] <= row["clips_per_s_q3"]
    # vifi's fresh builds differ by seed (random init of the test CLIP): the two seeds are two models
    vifi_seeds = saved["details"]["vifi"]["per_seed"]
    assert (vifi_seeds[0]["base"], vifi_seeds[0]["novel"]) != (vifi_seeds[1]["base"], vifi_seeds[1]["novel"]) \
        or rows["vifi"]["base_std"] == 0.0
    assert rows["clip"]["params_trainable"] == 0
    assert rows["vifi"]["params_trainable"] == rows["vifi"]["params_total"]
    assert [r["method"] for r in saved["rows"]] == ["clip", "vifi"]
    note = saved["method"]
    assert note["seeds"] == 2 and note["repeats"] == 3 and note["threads"] >= 1 and "Student-t" in note["interval"]
    table = (out / "compare.md").read_text()
    assert "| Method | Seeds | Trainable params | GFLOPs/view |" in table and "| vifi | 2 | 3.4M |" in table
    assert "95 % Student-t interval over seeds" in table and "median and IQR" in table
    assert (out / "hm_vs_gflops.png").stat().st_size > 0 and (out / "hm_vs_clips_per_s.png").stat().st_size > 0


def test_compare_rejects_zero_seeds(small_synthetic, tmp_path):
    with pytest.raises((ValueError, SystemExit)):
        main(["compare", "--untrained", "--model", "test", "--methods", "clip", "--seeds", "0", "--quiet",
              "--output-dir", str(tmp_path / "x")])



def test_compare_auto_seeds_stop_at_three_points_or_the_cap(small_synthetic, tmp_path):
    from evaluation.compare import AUTO_SEEDS_MAX, AUTO_SEEDS_MIN

    result = main(["compare", "--untrained", "--model", "test", "--frames", "4", "--methods", "clip", "--seeds",
                   "auto", "--repeats", "1", "--iters", "1", "--quiet", "--no-plots", "--device", "cpu",
                   "--output-dir", str(tmp_path / "auto")])
    (row,) = result["rows"]
    assert AUTO_SEEDS_MIN <= row["seeds"] <= AUTO_SEEDS_MAX
    keys = ("base", "novel", "hm", "reversal_base", "reversal_novel")
    if row["seeds"] < AUTO_SEEDS_MAX:  # stopped early: every interval is within 3 points
        assert all(row[f"{key}_half_width"] <= 3.0 for key in keys)
    if row["seeds"] > AUTO_SEEDS_MIN:  # one seed fewer was not enough
        per_seed = json.loads((tmp_path / "auto" / "compare.json").read_text())["details"]["clip"]["per_seed"]
        assert any(mean_interval([s[key] for s in per_seed[:-1]])["half_width"] > 3.0 for key in keys)
