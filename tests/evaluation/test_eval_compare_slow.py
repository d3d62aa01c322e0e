"""Slow: `compare` trains through core.train on the embedded data (one seed or several), then evaluates and
profiles the runs."""

from __future__ import annotations

import json
import statistics

import pytest
import yaml

from core.config import load_recipe
from evaluation.cli import main
from evaluation.metrics import harmonic_mean


@pytest.mark.slow
def test_compare_trains_then_reuses_runs(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "report"
    args = ["compare", "--methods", "clip,vifi", "--runs-dir", str(runs), "--train-arg", "schedule.epochs=1",
            "--train-arg", "schedule.warmup_epochs=0",
            "--output-dir", str(out), "--quiet", "--iters", "1", "--seeds", "1"]
    result = main(args)
    rows = {r["method"]: r for r in result["rows"]}
    assert (runs / "vifi" / "model.pt").is_file() and (runs / "clip" / "model.pt").is_file()
    assert rows["vifi"]["hm"] == pytest.approx(harmonic_mean(rows["vifi"]["base"], rows["vifi"]["novel"]))
    # the runs' own final evaluation: the same engine, settings and seed, so the same numbers to the last digit
    summary = json.loads((runs / "vifi" / "summary.json").read_text())
    assert rows["vifi"]["frames"] == summary["test"]["frames"] == load_recipe("vifi", "synthetic")[0]["data"]["num_frames"]
    assert (rows["vifi"]["base"], rows["vifi"]["novel"], rows["vifi"]["hm"]) == \
        (summary["base_top1"], summary["novel_top1"], summary["hm"])
    stamp = (runs / "vifi" / "model.pt").stat().st_mtime
    main(args)  # a second compare reuses the runs instead of training again
    assert (runs / "vifi" / "model.pt").stat().st_mtime == stamp


@pytest.mark.slow  # about 90 s on 2 shared cores: two tiny vifi trainings in subprocesses
def test_compare_trains_seeds_and_reports_their_mean(tmp_path, monkeypatch):
    """Two trained vifi seeds (the trainer tests' tiny settings): compare's figures are the mean of the two runs'
    summary.json values, the second run used train.seed + 1, and the interval brackets the mean."""
    from tests.evaluation.test_eval_consistency import TINY_RUN

    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "cache"))  # the embedded dataset, for train and test
    runs = tmp_path / "runs"
    result = main(["compare", "--methods", "vifi", "--runs-dir", str(runs), "--seeds", "2", "--repeats", "2",
                   "--iters", "1", "--quiet", "--no-plots", "--output-dir", str(tmp_path / "out"),
                   *(f"--train-arg={item}" for item in TINY_RUN)])
    (row,) = result["rows"]
    summaries = [json.loads((runs / name / "summary.json").read_text()) for name in ("vifi", "vifi-seed1")]
    for key, field in (("base", "base_top1"), ("novel", "novel_top1"), ("hm", "hm")):
        assert row[key] == pytest.approx(statistics.fmean(s[field] for s in summaries), abs=1e-9), key
        assert row[f"{key}_low"] <= row[key] <= row[f"{key}_high"]
    seeds = [yaml.safe_load((runs / name / "config.yaml").read_text())["train"]["seed"] for name in ("vifi", "vifi-seed1")]
    assert seeds[1] == seeds[0] + 1
    saved = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert [s["seed_index"] for s in saved["details"]["vifi"]["per_seed"]] == [0, 1]
