"""Shard writer: a folder of real mp4/webm/avi files (some broken) becomes shards, a report, and a manifest."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from core.data.encoding import encode_video
from core.data.loader import make_video_loader
from core.data.shard_writer import (
    Entry,
    ShardOptions,
    folder_entries,
    main,
    parse_size,
    read_annotation,
    read_class_list,
    write_shards,
)

BRIGHTNESS = {"ApplyEyeMakeup": 40, "Archery": 200}  # class content: dark vs bright frames


def _clip(value: int, frames: int = 10) -> np.ndarray:
    clip = np.full((frames, 48, 64, 3), value, dtype=np.uint8)
    clip[:, :, :8] = 0  # a little structure for the encoder
    return clip


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    good = {"ApplyEyeMakeup/v_a1.mp4": "mp4", "ApplyEyeMakeup/v_a2.avi": "avi", "ApplyEyeMakeup/v_a3.webm": "webm",
            "Archery/v_b1.mp4": "mp4", "Archery/v_b2.webm": "webm", "Archery/v.b3.avi": "avi"}
    for rel, container in good.items():
        (root / rel).parent.mkdir(exist_ok=True)
        (root / rel).write_bytes(encode_video(_clip(BRIGHTNESS[rel.split("/")[0]]), container=container))
    mp4 = (root / "Archery/v_b1.mp4").read_bytes()
    (root / "Archery/truncated.mp4").write_bytes(mp4[: len(mp4) // 2])
    (root / "ApplyEyeMakeup/garbage.avi").write_bytes(b"this is not a video\n" * 40)
    (root / "Archery/empty.webm").write_bytes(b"")
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_folder_to_shards_with_report(video_folder, tmp_path):
    entries, classes = folder_entries(video_folder, None)
    assert classes == ["ApplyEyeMakeup", "Archery"] and len(entries) == 9
    out = tmp_path / "shards"
    report = write_shards(entries, video_folder, out, classes=classes, options=ShardOptions(max_per_shard=2),
                          workers=2, progress=False)
    assert report.num_samples == 6 and report.num_shards == 5 and report.written_shards == 5
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert sorted(reasons) == ["ApplyEyeMakeup/garbage.avi", "Archery/empty.webm", "Archery/truncated.mp4"]
    assert reasons["Archery/empty.webm"] == "empty file" and all(reasons.values())
    assert (out / "skipped.txt").read_text().count("\n") == 3
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["per_class"] == {"0": 3, "1": 3} and manifest["classes"] == classes
    # sorted entries, 2 per shard: [garbage, a1] [a2, a3] [empty, truncated] [v.b3, b1] [b2]
    assert [s["samples"] for s in manifest["shards"]] == [1, 2, 0, 2, 1]
    with tarfile.open(out / "shard-000000.tar") as tar:
        assert tar.getnames() == ["ApplyEyeMakeup/v_a1.mp4", "ApplyEyeMakeup/v_a1.json"]
        meta = json.loads(tar.extractfile("ApplyEyeMakeup/v_a1.json").read())
    assert meta == {"label": 0, "class_name": "ApplyEyeMakeup", "source": "ApplyEyeMakeup/v_a1.mp4", "ext": "mp4",
                    "num_frames": 10, "reported_frames": 10, "fps": 8.0, "width": 64, "height": 48,
                    "corrupt_packets": 0}
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind

    # the shards read back through the loader, each clip with the label of its content
    loader = make_video_loader(out, train=False, num_frames=4, input_size=32, mean=(0.0,) * 3, std=(1.0,) * 3,
                               batch_size=4)
    clips = {key: (int(label), float(video[..., 8:].mean()))
             for batch in loader for key, label, video in zip(batch["key"], batch["label"], batch["video"])}
    assert sorted(clips) == ["ApplyEyeMakeup/v_a1", "ApplyEyeMakeup/v_a2", "ApplyEyeMakeup/v_a3", "Archery/v_b1",
                             "Archery/v_b2", "Archery/v_b3"]  # "v.b3" sanitised: keys never contain dots
    for key, (label, brightness) in clips.items():
        assert label == classes.index(key.split("/")[0])
        assert abs(brightness * 255 - BRIGHTNESS[classes[label]]) < 12
    assert loader.class_names == classes

    # resume: nothing to do; a shard whose sidecar is missing is rewritten byte-identically
    first = _sha(out / "shard-000001.tar")
    assert write_shards(entries, video_folder, out, classes=classes, options=ShardOptions(max_per_shard=2),
                        progress=False).written_shards == 0
    (out / "shard-000001.tar.json").unlink()
    again = write_shards(entries, video_folder, out, classes=classes, options=ShardOptions(max_per_shard=2),
                         progress=False)
    assert again.written_shards == 1 and _sha(out / "shard-000001.tar") == first and again.num_samples == 6
    with pytest.raises(ValueError, match="different input list or options"):
        write_shards(entries, video_folder, out, classes=classes, options=ShardOptions(max_per_shard=3),
                     progress=False)


def test_annotation_formats(tmp_path, video_folder):
    (tmp_path / "list.txt").write_text("ApplyEyeMakeup/v_a1.mp4 0\nArchery/v_b1.mp4 Archery\nmissing.mp4 1\n\n")
    entries = read_annotation(tmp_path / "list.txt", video_folder)
    assert entries == [Entry("ApplyEyeMakeup/v_a1.mp4", 0), Entry("Archery/v_b1.mp4", None, "Archery"),
                       Entry("missing.mp4", 1)]
    (tmp_path / "t2l.txt").write_text("/media/x/UCF_101/v_a2.avi 10 0\n/media/x/UCF_101/v_b2 10 1\n")
    assert read_annotation(tmp_path / "t2l.txt", video_folder) == [Entry("ApplyEyeMakeup/v_a2.avi", 0),
                                                                   Entry("Archery/v_b2.webm", 1)]
    (tmp_path / "k.csv").write_text("label,youtube_id,time_start,time_end,split\nArchery,v_b1,0,0,train\n")
    (video_folder / "Archery" / "v_b1_000000_000000.mp4").write_bytes(b"")
    try:
        assert read_annotation(tmp_path / "k.csv", video_folder) == [
            Entry("Archery/v_b1_000000_000000.mp4", None, "Archery")]
    finally:
        (video_folder / "Archery" / "v_b1_000000_000000.mp4").unlink()


def test_cli_list_with_unknown_and_missing(tmp_path, video_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "--shard-size" in capsys.readouterr().out
    (tmp_path / "classes.csv").write_text("id,name\n0,ApplyEyeMakeup\n1,Archery\n")
    (tmp_path / "list.txt").write_text("Archery/v_b2.webm 1\nArchery/v_b1.mp4 Bowling\nnowhere.mp4 0\n")
    out = tmp_path / "out"
    assert main(["--root", str(video_folder), "--list", str(tmp_path / "list.txt"), "--classes",
                 str(tmp_path / "classes.csv"), "--out", str(out), "--workers", "0", "--no-progress",
                 "--reencode", "--short-side", "32"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["num_samples"] == 1
    assert [s["reason"] for s in manifest["skipped"]] == [
        "unknown class name 'Bowling' (not in the class list)", "file not found"]
    with tarfile.open(out / "shard-000000.tar") as tar:
        meta = json.loads(tar.extractfile("Archery/v_b2.json").read())
    assert (meta["ext"], meta["width"], meta["height"]) == ("mp4", 42, 32)  # re-encoded to H.264 short side 32


def test_helpers():
    assert parse_size("1GB") == 10**9 and parse_size("2MiB") == 2 * 2**20 and parse_size("500") == 500
    with pytest.raises(ValueError, match="cannot parse size"):
        parse_size("lots")
    assert read_class_list("hmdb51")[:2] == ["brush hair", "cartwheel"]
    assert len(read_class_list("kinetics600:zs_split2")) == 160
    with pytest.raises(FileNotFoundError, match="not found"):
        read_class_list("no/such/list.csv")
