"""One engine, one number: a run's summary.json, `base-to-novel --run` and `compare` agree to the last digit;
an evaluation-only run evaluates the validation shards it is given; --dtype is honoured and named."""

from __future__ import annotations

import json

import pytest
import torch

from core.data.synthetic import synthetic_dataset
from core.precision import cpu_has_fast_bf16
from core.train import main as train_main
from evaluation.cli import main as evaluation_main
from tests.evaluation.conftest import SMALL_RECIPE

# A seconds-long vifi run on the embedded synthetic data (the trainer tests' tiny settings). Its test settings
# are NOT vifi's evaluation.yaml ones (2 random clips instead of 1 centre clip), so the protocol and compare
# can only match summary.json by testing the run as the run tests itself (views, sampler and seed).
TINY_RUN = ["clip.model=test", "clip.pretrained=null", "data.train_size=16", "train.batch_size=8",
            "train.micro_batch_size=4", "schedule.epochs=1", "schedule.warmup_epochs=0", "log.every_steps=1",
            "checkpoint.every_steps=100", "eval.batch_size=56", "data.num_workers=0", "data.num_frames=4",
            "data.test_views=[2,1]", "data.test_sampling=segment"]


@pytest.fixture(scope="module")
def default_cache(tmp_path_factory):
    """``CHRONOCLIP_CACHE`` for this module: the embedded synthetic dataset the trainer uses, generated once."""
    root = tmp_path_factory.mktemp("chronoclip-cache-default")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHRONOCLIP_CACHE", str(root))
        yield root


def test_summary_protocol_and_compare_report_the_same_numbers(default_cache, tmp_path):
    runs = tmp_path / "runs"
    assert train_main(["--method", "vifi", *TINY_RUN, "--output-dir", str(runs / "vifi")]) == 0
    summary = json.loads((runs / "vifi" / "summary.json").read_text())
    trained_in = "bf16" if cpu_has_fast_bf16() else "fp32"  # train.precision=auto on this CPU
    assert summary["unit"] == "%" and summary["test"]["views"] == "2x1" and summary["test"]["precision"] == trained_in

    protocol = evaluation_main(["base-to-novel", "--run", str(runs / "vifi"), "--quiet", "--no-plots",
                                "--output-dir", str(tmp_path / "b2n")])
    row = protocol["summary"]["per_split"]["final"]
    settings = protocol["entries"][0].settings
    assert (settings.frames, settings.clips, settings.crops, settings.sampling) == (4, 2, 1, "segment")
    assert protocol["entries"][0].notes["precision"] == trained_in  # auto = the run's own validation precision

    compared = evaluation_main(["compare", "--methods", "vifi", "--runs-dir", str(runs), "--quiet", "--no-plots",
                                "--iters", "1", "--seeds", "1", "--repeats", "1",
                                "--output-dir", str(tmp_path / "compare")])
    (line,) = compared["rows"]
    assert line["views"] == "2x1" and line["sampling"] == "segment"

    for name, got in (("base-to-novel --run", row), ("compare", line)):
        assert (got["base"], got["novel"], got["hm"]) == \
            (summary["base_top1"], summary["novel_top1"], summary["hm"]), name
    assert "Each method is tested with its own test settings" in (tmp_path / "compare" / "compare.md").read_text()


def test_validation_shards_alone_are_what_a_frozen_run_evaluates(synthetic_cache, default_cache, tmp_path):
    """`--method clip --val-shards X` evaluates X (it used to fall back to the synthetic splits)."""
    x = synthetic_dataset(synthetic_cache, SMALL_RECIPE).splits["val_novel"]
    run = tmp_path / "clip"
    assert train_main(["--method", "clip", "--val-shards", x.pattern, "clip.model=test", "clip.pretrained=null",
                       "data.input_size=32", "data.num_frames=4", "data.num_workers=0", "--output-dir", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["synthetic"] is False
    assert summary["val/samples"] == x.num_samples and summary["val/classes"] == len(x.class_names)
    assert not any(key.startswith(("val_base", "val_novel")) for key in summary)
    assert 0.0 <= summary["val_top1"] <= 100.0


def test_dtype_is_honoured_and_named_in_the_report(small_synthetic, tmp_path):
    scores, reports = {}, {}
    for name in ("fp32", "bf16"):
        out = tmp_path / name
        result = evaluation_main(["base-to-novel", "--untrained", "--method", "vifi", "--model", "test", "--frames",
                                  "4", "--dtype", name, "--quiet", "--no-plots", "--output-dir", str(out)])
        scores[name] = result["results"]["final"]["novel val"].predictions.scores
        reports[name] = json.loads((out / "report.json").read_text())
        assert reports[name]["precision"] == {"final": name}
        assert f"precision {name}" in (out / "report.md").read_text()
    assert not torch.equal(scores["fp32"], scores["bf16"])  # bf16 really ran
    torch.testing.assert_close(scores["fp32"], scores["bf16"], atol=0.05, rtol=0)


def test_profile_dtype(tmp_path):
    from evaluation.profile import main as profile_main

    (profile,) = profile_main(["--method", "vifi", "--untrained", "--model", "test", "--frames", "2", "--iters", "1",
                               "--warmup", "0", "--num-classes", "3", "--dtype", "bf16", "--device", "cpu",
                               "--json", str(tmp_path / "p.json")])
    assert profile.dtype == "bf16"
    assert json.loads((tmp_path / "p.json").read_text())["profiles"][0]["dtype"] == "bf16"
