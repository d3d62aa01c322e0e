"""Real-data paths: user shards written by chronoclip-shards, class lists from manifests and the catalog."""

from __future__ import annotations

import json

import numpy as np
import pytest

import core
from core.data import catalog
from core.data.encoding import encode_video
from core.data.shard_writer import main as write_shards
from core.data.synthetic import render_clip
from core.eval.texts import read_description_file, resolve_class_texts
from evaluation.cli import main
from evaluation.datasets import display_name, real_set
from evaluation.sources import build_untrained


@pytest.fixture(scope="module")
def ucf_like_shards(tmp_path_factory):
    """Shards of 4 generated clips labelled with UCF-101 ids 0 and 1; the manifest holds all 101 names."""
    root = tmp_path_factory.mktemp("ucf")
    videos = root / "videos"
    videos.mkdir()
    lines = []
    for i, (motion, label) in enumerate([("moving left", 0), ("moving right", 0), ("growing", 1), ("shrinking", 1)]):
        frames = render_clip("red", "square", motion, size=64, num_frames=8, rng=np.random.default_rng(i))
        (videos / f"v{i}.mp4").write_bytes(encode_video(frames, fps=8.0, keyint=4))
        lines.append(f"v{i}.mp4 {label}")
    (root / "val1.txt").write_text("\n".join(lines) + "\n")
    names = catalog.class_names("ucf101")
    (root / "classes.csv").write_text("id,name\n" + "".join(f"{i},{n}\n" for i, n in enumerate(names)))
    out = root / "shards"
    status = write_shards(["--root", str(videos), "--list", str(root / "val1.txt"), "--classes",
                           str(root / "classes.csv"), "--out", str(out), "--workers", "0", "--no-progress"])
    assert status == 0
    return out


def test_zero_shot_on_user_shards_groups_splits_under_the_dataset_title(ucf_like_shards, tmp_path):
    out = tmp_path / "zs"
    main(["zero-shot", "--method", "vifi", "--untrained", "--model", "test", "--frames", "4", "--quiet",
          "--target", f"ucf101:1={ucf_like_shards}", "--target", f"ucf:2={ucf_like_shards}", "--output-dir", str(out)])
    report = json.loads((out / "report.json").read_text())
    target = report["summary"]["final"]["targets"]["UCF-101"]
    assert target["splits"] == ["1", "2"] and target["num_classes"] == [101, 101]
    assert target["top1"]["std"] == 0.0  # the same videos twice, deterministic single-view test
    assert all(s["class_origin"] == "manifest.json" for s in report["sets"])
    assert report["results"]["final"]["UCF-101 1"]["num_videos"] == 4
    assert "| Method | WE | UCF-101 | UCF-101 (top-5) | All (top-1) |" in (out / "report.md").read_text()


def test_class_list_falls_back_to_the_catalog_and_titles_come_from_it(ucf_like_shards, tmp_path):
    import shutil

    assert display_name("k600") == catalog.dataset_info("kinetics600")["title"]
    bare = tmp_path / "bare"  # the shards without their manifest.json
    bare.mkdir()
    for shard in ucf_like_shards.glob("*.tar"):
        shutil.copy(shard, bare / shard.name)
    eval_set = real_set("Kinetics-600", "2", str(bare), dataset="kinetics600", catalog_split="zs_split2")
    assert eval_set.class_names == catalog.class_names("kinetics600", "zs_split2") and len(eval_set.class_names) == 160
    assert eval_set.class_origin == "catalog kinetics600 zs_split2"
    names = tmp_path / "classes.txt"
    names.write_text("a\nb\n")
    assert real_set("custom", "1", str(bare), classes_file=names).class_names == ["a", "b"]
    with pytest.raises(ValueError, match="no class list"):
        real_set("custom", "1", str(bare))


@pytest.mark.skipif("t2l" not in core.list_methods(), reason="chronoclip-t2l not installed")
def test_t2l_descriptions_come_from_the_catalog_for_a_catalog_class_list(tmp_path):
    model = build_untrained("t2l", clip="test", num_frames=4)
    names = catalog.class_names("ucf101")
    texts, note = resolve_class_texts(model, names, "descriptions", dataset="ucf101", split="all")
    assert texts == [d.replace("\n", "") for d in catalog.descriptions("ucf101", "t2l", "all")]
    assert note == "descriptions from catalog (ucf101 all)"
    # a list that is not the catalog's (a subset) is never aligned by guessing: names stand in, said so
    texts, note = resolve_class_texts(model, names[:3], "descriptions", dataset="ucf101", split="all")
    assert texts == names[:3] and "no descriptions known" in note


def test_rephrased_json_aligns_by_position(tmp_path):
    path = tmp_path / "rephrased.json"
    path.write_text(json.dumps({"0": "Abseiling: going down a rope.", "1": "Juggling: tossing balls."}))
    assert read_description_file(path, ["abseiling", "juggling"]) == {
        "abseiling": "Abseiling: going down a rope.", "juggling": "Juggling: tossing balls."}
    with pytest.raises(ValueError, match="holds 2 texts for 3 classes"):
        read_description_file(path, ["a", "b", "c"])
