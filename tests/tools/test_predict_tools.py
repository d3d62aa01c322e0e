"""core.predict for practitioners: a run says its method, frames and classes; results to CSV/JSON; feature
export (npz, safetensors); text-to-video search over fresh or exported features; long-video timelines."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from core.predict import load_predictor, main, read_clip
from tests.tools.conftest import CLASSES


def _direct_embedding(loaded, path, frames=4):
    model = loaded.model
    clip = read_clip(path, num_frames=frames, input_size=32, mean=model.input_mean, std=model.input_std)
    with torch.inference_mode():
        return torch.nn.functional.normalize(model.encode_video(clip), dim=-1)[0]


def test_run_gives_method_frames_and_classes_and_results_go_to_csv_and_json(tiny_run, video_folder, tmp_path,
                                                                             capsys):
    out_csv, out_json = tmp_path / "r.csv", tmp_path / "r.json"
    # no --method, no --labels: the run has both (and its 4 frames)
    assert main([str(video_folder), "--checkpoint", str(tiny_run), "--top-k", "2", "--output", str(out_csv)]) == 0
    rows = list(csv.DictReader(out_csv.open()))
    assert [r["rank"] for r in rows] == ["1", "2"] * 3
    assert {r["video"].rsplit("/", 1)[-1] for r in rows} == {"a.mp4", "b.mp4", "c.mp4"}
    assert {r["label"] for r in rows} <= set(CLASSES)
    assert main([str(video_folder / "a.mp4"), "--checkpoint", str(tiny_run / "model.pt"), "--top-k", "3",
                 "--output", str(out_json)]) == 0
    written = json.loads(out_json.read_text())[0]["predictions"]
    assert sorted(p["label"] for p in written) == sorted(CLASSES)
    assert sum(p["prob"] for p in written) == pytest.approx(1.0, abs=1e-5)
    loaded = load_predictor(None, tiny_run)
    assert loaded.method == "vifi" and loaded.trained_frames == 4 and loaded.class_names == CLASSES
    capsys.readouterr()
    assert main([str(video_folder), "--method", "clip", "--checkpoint", str(tiny_run)]) == 2
    assert "holds a 'vifi' model" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_features_export_names_and_embeddings(tiny_run, video_folder, tmp_path, suffix):
    from core.features import load_features

    out = tmp_path / f"feats{suffix}"
    assert main([str(video_folder), "--checkpoint", str(tiny_run), "--features", str(out)]) == 0
    feats = load_features(out)
    assert [n.rsplit("/", 1)[-1] for n in feats.names] == ["a.mp4", "b.mp4", "c.mp4"]
    assert feats.method == "vifi" and feats.frames == 4 and feats.embeddings.shape == (3, 64)
    loaded = load_predictor(None, tiny_run)
    expected = _direct_embedding(loaded, video_folder / "more" / "c.mp4")
    np.testing.assert_allclose(feats.embeddings[2], expected.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(feats.embeddings, axis=1), 1.0, atol=1e-5)


def test_query_ranks_by_text_over_fresh_and_exported_features(tiny_run, video_folder, tmp_path, capsys):
    from core.search import text_embeddings

    query = "a red square moving right"
    assert main([str(video_folder), "--checkpoint", str(tiny_run), "--query", query, "--json",
                 "--features", str(tmp_path / "f.npz")]) == 0
    fresh = json.loads(capsys.readouterr().out)["results"]
    assert main([str(tmp_path / "f.npz"), "--checkpoint", str(tiny_run), "--query", query, "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)["results"]
    assert fresh == exported and len(fresh) == 3
    # the ranking is the cosine of the query's embedding with each video's, highest first
    loaded = load_predictor(None, tiny_run)
    text = text_embeddings(loaded.model, [query])[0]
    direct = {str(p): float(_direct_embedding(loaded, p) @ text) for p in
              (video_folder / "a.mp4", video_folder / "b.mp4", video_folder / "more" / "c.mp4")}
    assert [r["video"] for r in fresh] == sorted(direct, key=lambda v: -direct[v])
    assert [r["score"] for r in fresh] == pytest.approx([direct[r["video"]] for r in fresh], abs=1e-5)
    # and it agrees with the model's own logits for the query (vifi: scale * cosine)
    with torch.inference_mode():
        clip = read_clip(video_folder / "a.mp4", num_frames=4, input_size=32, mean=loaded.model.input_mean,
                         std=loaded.model.input_std)
        cosine = loaded.model.classify(clip, loaded.model.class_texts([query]))[0, 0] / \
            loaded.model.clip.logit_scale.exp()
    assert float(cosine) == pytest.approx(direct[str(video_folder / "a.mp4")], abs=1e-5)


def test_timeline_windows_probabilities_segments_and_plot(tiny_run, long_video, tmp_path, capsys):
    from core.data.sampling import segment_center
    from core.data.transforms import EvalTransform
    from core.timeline import window_starts

    out = tmp_path / "t.json"
    assert main([str(long_video), "--checkpoint", str(tiny_run), "--timeline", str(out), "--window", "1.5",
                 "--stride", "1", "--top-k", "2"]) == 0
    timeline = json.loads(out.read_text())
    assert timeline["duration"] == pytest.approx(4.0) and timeline["frames"] == 4
    assert [w["start"] for w in timeline["windows"]] == [0.0, 1.0, 2.0, 2.5]  # the last window ends at 4 s
    assert [w["end"] for w in timeline["windows"]] == [1.5, 2.5, 3.5, 4.0]
    assert all(len(w["top"]) == 2 and w["top"][0]["prob"] >= w["top"][1]["prob"] for w in timeline["windows"])
    assert np.allclose(np.sum(timeline["probs"], axis=1), 1.0, atol=1e-4)
    segments = timeline["segments"]
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == 4.0
    assert sum(s["windows"] for s in segments) == 4
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    # window 2 (2.0-3.5 s = frames 16..28 at 8 fps) gives the probabilities of a direct classify of its frames
    import decord

    loaded = load_predictor(None, tiny_run)
    model = loaded.model
    reader = decord.VideoReader(str(long_video), num_threads=1)
    frames = torch.from_numpy(reader.get_batch((16 + segment_center(12, 4)).tolist()).asnumpy())
    clip = EvalTransform(32, model.input_mean, model.input_std)(frames)
    with torch.inference_mode():
        probs = model.classify(clip, model.class_texts(CLASSES)).softmax(-1)[0]
    assert timeline["probs"][2] == pytest.approx(probs.tolist(), abs=1e-5)
    assert window_starts(1.0, 2.0, 1.0) == [0.0]
    with pytest.raises(ValueError, match="positive"):
        window_starts(4.0, 0.0, 1.0)
    capsys.readouterr()
    assert main([str(long_video), str(long_video), "--checkpoint", str(tiny_run), "--timeline", str(out)]) == 2
    assert "one video" in capsys.readouterr().err


def test_clip_by_tag_and_a_checkpoint_that_cannot_say(offline_hub, video_folder, tmp_path, capsys):
    path = tmp_path / "weights.pt"
    torch.save({"x": torch.zeros(1)}, path)
    assert main([str(video_folder / "a.mp4"), "--labels", "a,b", "--checkpoint", str(path)]) == 2
    assert "pass --method" in capsys.readouterr().err
    # zero-shot CLIP by tag: resolved offline through the hub cache, which is empty here -> a clear error
    assert main([str(video_folder / "a.mp4"), "--labels", "a,b", "--method", "clip", "--checkpoint", "openai"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err


def test_demo_videos_are_the_synthetic_classes_and_one_untrimmed_video(tmp_path):
    import decord

    from core.data.synthetic import SyntheticRecipe
    from core.demo import DEMO_CLASSES
    from core.demo import main as demo

    assert demo([str(tmp_path / "demo")]) == 0
    clips = sorted((tmp_path / "demo" / "clips").glob("*.mp4"))
    assert [c.stem.replace("_", " ") for c in clips] == sorted(DEMO_CLASSES)
    recipe = SyntheticRecipe()
    base = {" ".join(c) for c in recipe.classes() if not recipe.is_novel(*c)}
    assert set(DEMO_CLASSES) <= base  # a run on the embedded default trains on (and lists) these classes
    assert len(decord.VideoReader(str(clips[0]))) == 16
    assert len(decord.VideoReader(str(tmp_path / "demo" / "untrimmed.mp4"))) == 16 * len(DEMO_CLASSES)


def test_load_predictor_takes_the_checkpoint_alone(tiny_run):
    assert load_predictor(str(tiny_run)).method == "vifi"


def test_timeline_reads_through_the_chosen_decoder(tiny_run, long_video, tmp_path, monkeypatch):
    """--decoder reaches the long-video timeline: pyav gives decord's timeline (frames agree up to colour rounding)."""
    import core.data.decoders as decoders

    opened = []
    open_video = decoders.open_video
    monkeypatch.setattr(decoders, "open_video", lambda source, decoder: opened.append(decoder) or
                        open_video(source, decoder))
    timelines = {}
    for decoder in ("decord", "pyav"):
        out = tmp_path / f"{decoder}.json"
        assert main([str(long_video), "--checkpoint", str(tiny_run), "--timeline", str(out), "--window", "1.5",
                     "--stride", "1", "--decoder", decoder]) == 0
        timelines[decoder] = json.loads(out.read_text())
    assert opened == ["decord", "pyav"]
    decord_tl, pyav_tl = timelines["decord"], timelines["pyav"]
    for key in ("fps", "duration", "frames", "labels", "segments"):
        assert pyav_tl[key] == decord_tl[key], key
    assert [w["start"] for w in pyav_tl["windows"]] == [w["start"] for w in decord_tl["windows"]]
    assert [[t["label"] for t in w["top"]] for w in pyav_tl["windows"]] == \
        [[t["label"] for t in w["top"]] for w in decord_tl["windows"]]
    np.testing.assert_allclose(pyav_tl["probs"], decord_tl["probs"], atol=2e-3)
