"""Every report saves per-video, per-view logits beside it (re-scoring needs no new forward) and carries
per-class accuracy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from evaluation.cli import main
from evaluation.logits import load_logits, rescore

COMMON = ["--method", "vifi", "--untrained", "--model", "test", "--frames", "4", "--quiet", "--batch-size", "16"]


def test_report_saves_logits_and_per_class_accuracy_and_rescoring_matches(small_synthetic, tmp_path):
    out = tmp_path / "fs"
    main(["fully-supervised", *COMMON, "--output-dir", str(out), "--views", "2x1", "--aggregation", "softmax_mean"])
    report = json.loads((out / "report.json").read_text())
    (label, per_set), = report["results"].items()
    (set_name, result), = per_set.items()
    data = load_logits(out / result["logits_file"])
    assert data["view_logits"].shape == (result["num_videos"], 2, result["num_classes"])
    assert data["aggregation"] == "softmax_mean" and len(data["class_names"]) == result["num_classes"]
    # re-scoring with the report's own aggregation reproduces its numbers, without a forward pass
    again = rescore(out / result["logits_file"])
    assert again["top1"] == pytest.approx(result["top1"]) and again["top5"] == pytest.approx(result["top5"])
    assert again["per_class_top1"] == result["per_class_top1"]
    # per-class accuracy: classes with videos get a percentage whose support-weighted mean is top-1
    per_class = result["per_class_top1"]
    assert list(per_class) == data["class_names"]
    support = np.bincount(data["labels"].numpy(), minlength=len(per_class))
    values = [v for v in per_class.values() if v is not None]
    assert len(values) == int((support > 0).sum())
    correct = (data["view_logits"].softmax(-1).mean(1).argmax(1) == data["labels"]).float().mean() * 100
    weighted = sum(v * s for v, s in zip(per_class.values(), support) if v is not None) / support.sum()
    assert weighted == pytest.approx(float(correct), abs=1e-3)
    # another aggregation / a subset of views from the same file
    single = rescore(out / result["logits_file"], "logit_mean", views=[0])
    assert single["views"] == 1 and not math.isnan(single["top1"])
