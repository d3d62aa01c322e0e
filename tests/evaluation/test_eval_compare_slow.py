"""Slow: `compare` trains through core.train on the embedded data, then evaluates and profiles the runs."""

from __future__ import annotations

import json

import pytest

from evaluation.cli import main
from evaluation.metrics import harmonic_mean


@pytest.mark.slow
def test_compare_trains_then_reuses_runs(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    args = ["compare", "--methods", "clip,vifi", "--runs-dir", str(runs), "--train-arg", "schedule.epochs=1",
            "--train-arg", "schedule.warmup_epochs=0",
            "--output-dir", str(out), "--quiet", "--iters", "1"]
    result = main(args)
    rows = {r["method"]: r for r in result["rows"]}
    assert (runs / "vifi" / "model.pt").is_file() and (runs / "clip" / "model.pt").is_file()
    assert rows["vifi"]["hm"] == pytest.approx(harmonic_mean(rows["vifi"]["base"], rows["vifi"]["novel"]))
    assert rows["vifi"]["frames"] == 8  # the run's data.num_frames (vifi's synthetic recipe)
    # the runs' own final evaluation: the same engine, settings and seed, so the same numbers to the last digit
    summary = json.loads((runs / "vifi" / "summary.json").read_text())
    assert (rows["vifi"]["base"], rows["vifi"]["novel"], rows["vifi"]["hm"]) == \
        (summary["base_top1"], summary["novel_top1"], summary["hm"])
    stamp = (runs / "vifi" / "model.pt").stat().st_mtime
    main(args)  # a second compare reuses the runs instead of training again
    assert (runs / "vifi" / "model.pt").stat().st_mtime == stamp
