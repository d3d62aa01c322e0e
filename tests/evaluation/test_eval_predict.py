"""core.predict on generated videos: top-k with probabilities, folders, undecodable files skipped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.clip import build_clip
from core.data.encoding import encode_video
from core.data.synthetic import render_clip
from core.predict import find_videos, load_labels, main

LABELS = "red square moving left,green triangle moving up,red triangle moving down"


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    frames = render_clip("red", "square", "moving left", size=64, num_frames=12, rng=np.random.default_rng(0))
    (root / "clip.mp4").write_bytes(encode_video(frames, fps=8.0, keyint=4))
    (root / "sub").mkdir()
    (root / "sub" / "broken.mp4").write_bytes(b"\x00not a video" * 64)
    (root / "notes.txt").write_text("not a video, ignored in folders")
    torch.manual_seed(0)
    torch.save(build_clip("test").state_dict(), root / "clip_weights.pt")
    return root


def test_prediction_json_top_k_and_undecodable_file(video_dir, capsys):
    status = main([str(video_dir), "--labels", LABELS, "--method", "clip", "--checkpoint",
                   str(video_dir / "clip_weights.pt"), "--top-k", "2", "--json", "--frames", "4"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0
    by_name = {item["video"].rsplit("/", 1)[-1]: item for item in out}
    assert set(by_name) == {"clip.mp4", "broken.mp4"}  # notes.txt is not a video file
    assert "error" in by_name["broken.mp4"]
    preds = by_name["clip.mp4"]["predictions"]
    assert len(preds) == 2 and preds[0]["prob"] >= preds[1]["prob"]
    assert {p["label"] for p in preds} <= set(LABELS.split(","))
    assert 0.0 < sum(p["prob"] for p in preds) <= 1.0 + 1e-6


def test_probabilities_match_a_direct_classify_call(video_dir, capsys):
    from core.predict import load_predictor, read_clip

    status = main([str(video_dir / "clip.mp4"), "--labels", LABELS, "--method", "clip", "--checkpoint",
                   str(video_dir / "clip_weights.pt"), "--top-k", "3", "--json", "--frames", "4", "--dtype", "fp32"])
    assert status == 0
    item = json.loads(capsys.readouterr().out)[0]
    assert item["precision"] == "fp32"
    got = {p["label"]: p["prob"] for p in item["predictions"]}
    loaded = load_predictor("clip", video_dir / "clip_weights.pt", num_frames=4)
    model = loaded.model
    clip = read_clip(video_dir / "clip.mp4", num_frames=4, input_size=32, mean=model.input_mean, std=model.input_std)
    labels = LABELS.split(",")
    with torch.inference_mode():
        probs = model.classify(clip, model.class_texts(labels)).softmax(-1)[0]
    assert [got[name] for name in labels] == pytest.approx(probs.tolist(), abs=1e-6)


def test_only_undecodable_input_fails_and_text_output(video_dir, capsys):
    status = main([str(video_dir / "sub" / "broken.mp4"), "--labels", "a,b", "--method", "clip", "--checkpoint",
                   str(video_dir / "clip_weights.pt")])
    assert status == 1
    assert "could not be decoded" in capsys.readouterr().err
    status = main([str(video_dir / "clip.mp4"), "--labels", "a,b", "--method", "clip", "--checkpoint",
                   str(video_dir / "clip_weights.pt"), "--top-k", "1", "--frames", "4"])
    lines = capsys.readouterr().out.splitlines()
    assert status == 0 and lines[0].endswith("clip.mp4") and lines[1].strip().endswith(("a", "b"))


def test_label_sources(tmp_path):
    assert load_labels("a, b ,c") == ["a", "b", "c"]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text('id,name\n0,abseiling\n1,"tying knot (not on a tie)"\n')
    assert load_labels(labels_file=csv_file) == ["abseiling", "tying knot (not on a tie)"]
    with pytest.raises(ValueError, match="exactly one"):
        load_labels("a,b", csv_file)
    with pytest.raises(ValueError, match="duplicate"):
        load_labels("a,a,b")
    with pytest.raises(FileNotFoundError):
        find_videos([tmp_path / "missing.mp4"])


def test_dtype_is_honoured_and_named(video_dir, capsys):
    """--dtype bf16 runs the model in bf16 (the JSON says so, the probabilities are bf16's) and fp32 in fp32."""
    from core.predict import load_predictor, read_clip

    args = [str(video_dir / "clip.mp4"), "--labels", LABELS, "--method", "clip", "--checkpoint",
            str(video_dir / "clip_weights.pt"), "--top-k", "3", "--json", "--frames", "4"]
    outputs = {}
    for name in ("fp32", "bf16"):
        assert main([*args, "--dtype", name]) == 0
        item = json.loads(capsys.readouterr().out)[0]
        assert item["precision"] == name
        outputs[name] = {p["label"]: p["prob"] for p in item["predictions"]}
    labels = LABELS.split(",")
    model = load_predictor("clip", video_dir / "clip_weights.pt", num_frames=4).model.to(torch.bfloat16)
    clip = read_clip(video_dir / "clip.mp4", num_frames=4, input_size=32, mean=model.input_mean, std=model.input_std)
    with torch.inference_mode():
        probs = model.classify(clip.to(torch.bfloat16), model.class_texts(labels)).float().softmax(-1)[0]
    assert [outputs["bf16"][n] for n in labels] == pytest.approx(probs.tolist(), abs=1e-6)
    assert [outputs["bf16"][n] for n in labels] != pytest.approx([outputs["fp32"][n] for n in labels], abs=1e-6)
