"""`python -m evaluation compare` without training (fresh builds): one consistent side-by-side table."""

from __future__ import annotations

import json

import pytest

from evaluation.cli import main
from evaluation.metrics import harmonic_mean


def test_compare_untrained_table_is_consistent(small_synthetic, tmp_path, test_clip_macs_per_frame):
    out = tmp_path / "compare"
    result = main(["compare", "--untrained", "--model", "test", "--frames", "4", "--methods", "clip,vifi",
                   "--output-dir", str(out), "--quiet", "--device", "cpu", "--iters", "1"])
    rows = {r["method"]: r for r in result["rows"]}
    assert set(rows) == {"clip", "vifi"}
    for row in rows.values():
        assert row["hm"] == pytest.approx(harmonic_mean(row["base"], row["novel"]))
        assert row["gflops"] * 1e9 == pytest.approx(4 * test_clip_macs_per_frame, rel=1e-9)
        assert 0.0 <= row["reversal_novel"] <= 100.0 and row["clips_per_s"] > 0
    assert rows["clip"]["params_trainable"] == 0
    assert rows["vifi"]["params_trainable"] == rows["vifi"]["params_total"]
    saved = json.loads((out / "compare.json").read_text())
    assert [r["method"] for r in saved["rows"]] == ["clip", "vifi"]
    table = (out / "compare.md").read_text()
    assert "| Method | Trainable params | GFLOPs/view |" in table and "| vifi | 3.4M |" in table
    assert (out / "hm_vs_gflops.png").stat().st_size > 0 and (out / "hm_vs_clips_per_s.png").stat().st_size > 0
