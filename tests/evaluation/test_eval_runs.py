"""Models from core.train run directories: the run's frames, its CLIP for WiSE-FT, its logged best, several runs."""

from __future__ import annotations

import json

import pytest
import torch

from core.clip import build_clip, infer_clip_config
from core.runs import MODEL_FILE, model_file_payload
from evaluation.cli import main
from evaluation.sources import best_logged, build_untrained, load_model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished-run directory in core.train's format (model.pt + metrics.jsonl) of a `test`-preset vifi."""
    root = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    clip_file = root / "zero_shot_clip.pt"
    torch.save(build_clip("test").state_dict(), clip_file)
    model = build_untrained("vifi", clip="test", pretrained=clip_file, num_frames=4)
    with torch.no_grad():  # "fine-tune" away from the zero-shot weights so WiSE-FT has something to mix
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    config = {"method": "vifi", "clip": {"model": "test", "pretrained": str(clip_file)}, "data": {"num_frames": 4}}
    payload = model_file_payload(method="vifi", clip_config=infer_clip_config(model.clip.state_dict()), num_frames=4,
                                 method_options={}, class_names=["a", "b"], descriptions=None,
                                 state_dict=model.state_dict(), step=30, config=config)
    torch.save(payload, root / MODEL_FILE)
    rows = [{"event": "train", "step": 5, "loss": 1.0}, {"event": "val", "step": 10, "val_base/top1": 0.5},
            {"event": "val", "step": 20, "val_base/top1": 0.8}, {"event": "final", "step": 30, "val_base/top1": 0.7}]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"event": "val", "st')
    return root


def test_run_source_carries_frames_clip_and_logged_best(run_dir):
    loaded = load_model(run=run_dir)
    assert loaded.method == "vifi" and loaded.trained_frames == 4 and loaded.clip_name == "test"
    assert loaded.clip_pretrained == str(run_dir / "zero_shot_clip.pt")
    assert best_logged(run_dir) == {"top1": 80.0, "step": 20, "split": "val_base", "final_top1": 70.0}


def test_fully_supervised_from_a_run_uses_its_frames_and_reports_the_logged_best(small_synthetic, run_dir, tmp_path):
    out = tmp_path / "fs"
    main(["fully-supervised", "--run", str(run_dir), "--views", "1x1", "--quiet", "--output-dir", str(out)])
    report = json.loads((out / "report.json").read_text())
    entry = report["entries"][0]
    assert entry["settings"]["frames"] == 4
    assert entry["settings"]["origin"]["frames"] == "the run (model.pt)"
    assert entry["notes"]["best_logged"]["top1"] == 80.0
    assert "80.00 top-1 on val_base at step 20" in (out / "report.md").read_text()


def test_zero_shot_wise_ft_takes_the_runs_own_clip(small_synthetic, run_dir, tmp_path):
    out = tmp_path / "zs"
    main(["zero-shot", "--run", str(run_dir), "--wise-ft", "0.5", "--quiet", "--no-plots", "--output-dir", str(out)])
    report = json.loads((out / "report.json").read_text())
    assert [e["label"] for e in report["entries"]] == ["final", "final + WE"]
    assert report["entries"][1]["notes"]["zero_shot_clip"] == str(run_dir / "zero_shot_clip.pt")
    assert report["entries"][1]["notes"]["wise_ft"] == "generic CLIP-weight fusion (alpha=0.5)"


def test_several_runs_become_shots_and_splits(small_synthetic, run_dir, tmp_path):
    out = tmp_path / "fs"
    main(["few-shot", "--run", f"2={run_dir}", "--run", f"4={run_dir}", "--quiet", "--no-plots",
          "--output-dir", str(out)])
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert [v["shots"] for v in summary.values()] == ["2", "4"]
    assert summary["K=2"]["top1"] == summary["K=4"]["top1"]  # the same model twice
    assert "| vifi (final) |" in (out / "report.md").read_text()
    out = tmp_path / "b2n"
    main(["base-to-novel", "--run", str(run_dir), "--run", str(run_dir), "--quiet", "--no-plots",
          "--output-dir", str(out)])
    summary = json.loads((out / "report.json").read_text())["summary"]
    assert [r["split"] for r in summary["per_split"].values()] == ["s1", "s2"]
    assert summary["average"]["final"]["splits"] == 2 and summary["average"]["final"]["base"]["std"] == 0.0


def test_predict_from_a_run_directory(run_dir, tmp_path, capsys):
    import numpy as np

    from core.data.encoding import encode_video
    from core.data.synthetic import render_clip
    from core.predict import main as predict

    video = tmp_path / "v.mp4"
    video.write_bytes(encode_video(render_clip("green", "square", "growing", size=64, num_frames=8,
                                               rng=np.random.default_rng(0)), fps=8.0, keyint=4))
    assert predict([str(video), "--labels", "growing,shrinking", "--method", "vifi", "--checkpoint", str(run_dir),
                    "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)[0]["predictions"]
    assert sum(p["prob"] for p in preds) == pytest.approx(1.0, abs=1e-5)
    assert predict([str(video), "--labels", "a,b", "--method", "t2l", "--checkpoint", str(run_dir)]) == 2
    assert "holds a 'vifi' model" in capsys.readouterr().err
