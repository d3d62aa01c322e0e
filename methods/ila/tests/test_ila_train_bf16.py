"""ILA trained in bf16 through core.train (DeepSpeed casts parameters, not buffers: the BatchNorm case)."""

from __future__ import annotations

import json

import torch

from core.runs import load_run_model
from core.train import main
from evaluation.cli import main as evaluation_main


def test_bf16_run_trains_saves_fp32_and_evaluates_as_it_validated(tmp_path, monkeypatch):
    monkeypatch.setenv("CHRONOCLIP_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    args = ["--method", "ila", "clip.model=test", "clip.pretrained=null", "data.train_size=8", "train.batch_size=4",
            "train.micro_batch_size=2", "schedule.epochs=2", "schedule.warmup_epochs=0", "eval.batch_size=56",
            "checkpoint.every_steps=1000", "data.num_workers=0", "log.every_steps=1", "train.precision=bf16",
            "--output-dir", str(run)]
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["precision"] == "bf16" and summary["step"] == 4

    model, _ = load_run_model(run)
    state = model.state_dict()
    assert all(t.dtype == torch.float32 for t in state.values() if t.is_floating_point())  # model.pt: fp32
    stats = [k for k in state if k.endswith("running_var")]
    assert stats and any(not torch.equal(state[k], torch.ones_like(state[k])) for k in stats)  # trained BN stats

    # a later evaluation casts as the trainer did (parameters only): the same numbers as summary.json
    report = evaluation_main(["base-to-novel", "--run", str(run), "--quiet", "--no-plots",
                              "--output-dir", str(tmp_path / "b2n")])
    row = report["summary"]["per_split"]["final"]
    assert report["entries"][0].notes["precision"] == "bf16"
    assert (row["base"], row["novel"]) == (summary["base_top1"], summary["novel_top1"])
