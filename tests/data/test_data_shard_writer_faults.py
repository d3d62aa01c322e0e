"""Shard writer under faults: dead reader processes, killed runs, short re-encodes, top-level videos, bad input."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import numpy as np
import pytest

from core.data import shard_writer
from core.data.encoding import encode_video
from core.data.shard_writer import ShardOptions, folder_entries, main, write_shards


def _clip(value: int, frames: int = 6) -> np.ndarray:
    clip = np.full((frames, 48, 64, 3), value, dtype=np.uint8)
    clip[:, :, :8] = 0
    return clip


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fault_videos")
    for name in ("a", "b"):
        (root / name).mkdir()
        for i in range(3):
            (root / name / f"{name}{i}.mp4").write_bytes(encode_video(_clip(40 + 100 * (name == "b") + i)))
    (root / "b" / "killme.mp4").write_bytes((root / "b" / "b0.mp4").read_bytes())
    return root


def _dying_process(original, *, once: Path | None = None):
    """A ``_process`` that SIGKILLs its own process on ``killme.mp4`` (only the first time with ``once``)."""
    def process(task, root, options):
        if task.source.endswith("killme.mp4") and (once is None or not once.exists()):
            if once is not None:
                once.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return original(task, root, options)
    return process


def test_dead_worker_is_retried_once_then_skipped_and_the_run_finishes(videos, tmp_path, monkeypatch):
    # the pool forks its workers after this patch, so they run it
    monkeypatch.setattr(shard_writer, "_process", _dying_process(shard_writer._process))
    entries, classes = folder_entries(videos, None)
    report = write_shards(entries, videos, tmp_path / "out", classes=classes, options=ShardOptions(max_per_shard=3),
                          workers=2, progress=False)
    assert report.num_samples == 6  # every other video, including those in flight with the dead one
    assert [s["source"] for s in report.skipped] == ["b/killme.mp4"]
    assert report.skipped[0]["reason"] == ("the reader process died while reading it (killed by signal 9), also "
                                           "when retried alone")
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["skipped"] == report.skipped and manifest["num_samples"] == 6


def test_a_worker_that_dies_once_is_retried_and_its_video_written(videos, tmp_path, monkeypatch):
    monkeypatch.setattr(shard_writer, "_process", _dying_process(shard_writer._process, once=tmp_path / "died"))
    entries, classes = folder_entries(videos, None)
    report = write_shards(entries, videos, tmp_path / "out", classes=classes, workers=2, progress=False)
    assert (tmp_path / "died").exists() and report.num_samples == 7 and report.skipped == []


def test_killed_runs_tmp_files_are_cleaned_and_outputs_are_0644(videos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    leftovers = [out / ".shard-000000.tar.k1ll3d.tmp", out / ".shard-000000.tar.json.x.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a shard")
    previous = os.umask(0o022)
    try:
        entries, classes = folder_entries(videos, None)
        write_shards(entries, videos, out, classes=classes, workers=0, progress=False)
    finally:
        os.umask(previous)
    assert not any(p.exists() for p in leftovers) and not list(out.glob(".*.tmp"))
    written = [p for p in out.iterdir() if p.is_file() and not p.name.startswith(".")]
    assert {p.suffix for p in written} == {".tar", ".json", ".txt"}
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_reencoded_video_shorter_than_its_header_is_kept_warned_and_counted(tmp_path, caplog):
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    full = encode_video(np.random.RandomState(0).randint(0, 255, (40, 48, 64, 3), dtype=np.uint8), container="avi")
    (root / "cls" / "cut.avi").write_bytes(full[: len(full) // 2])  # the avi header still claims 40 frames
    (root / "cls" / "whole.avi").write_bytes(full)
    entries, classes = folder_entries(root, None)
    report = write_shards(entries, root, tmp_path / "out", classes=classes,
                          options=ShardOptions(reencode=True), workers=0, progress=False)
    assert report.num_samples == 2 and len(report.short) == 1
    short = report.short[0]
    assert short["source"] == "cls/cut.avi" and short["claimed_frames"] == 40 and short["frames"] < 36
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["short_videos"] == report.short
    assert "cls/cut.avi: the re-encoded video has" in caplog.text and "claims 40" in caplog.text


def test_top_level_videos_in_folder_mode_are_reported_not_ignored(videos, tmp_path):
    root = tmp_path / "root"
    (root / "cls").mkdir(parents=True)
    data = (videos / "a" / "a0.mp4").read_bytes()
    (root / "cls" / "in.mp4").write_bytes(data)
    (root / "loose.mp4").write_bytes(data)
    entries, classes = folder_entries(root, None)
    assert classes == ["cls"]
    report = write_shards(entries, root, tmp_path / "out", classes=classes, workers=0, progress=False)
    assert report.num_samples == 1
    assert [s["source"] for s in report.skipped] == ["loose.mp4"]
    assert "top level of --root" in report.skipped[0]["reason"] and "move it into" in report.skipped[0]["reason"]


def _bad_inputs(tmp: Path, videos: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (argv, expected text of the one-line error)."""
    (tmp / "file").write_text("x")
    (tmp / "empty.txt").write_text("\n")
    (tmp / "short.txt").write_text("a/a0.mp4\n")
    (tmp / "t2l.txt").write_text("/x/y/a0 10 1\n/x/y/a1 ten 1\n")
    (tmp / "k.csv").write_text("label,youtube_id\nx,y\n")
    (tmp / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp / "broken.txt.gz").write_bytes(b"\x1f\x8bnot gzip")
    (tmp / "noclasses.txt").write_text("")
    out = str(tmp / "out")
    base = ["--root", str(videos), "--out", out, "--no-progress", "--workers", "0"]
    return {
        "nonexistent root": (["--root", str(tmp / "nope"), "--out", out], "is not a directory"),
        "root is a file": (["--root", str(tmp / "file"), "--out", out], "is not a directory"),
        "nonexistent list": ([*base, "--list", str(tmp / "nope.txt")], "does not exist"),
        "empty list": ([*base, "--list", str(tmp / "empty.txt")], "is empty"),
        "list line without label": ([*base, "--list", str(tmp / "short.txt")], "line 1 'a/a0.mp4' is not"),
        "t2l line with bad count": ([*base, "--list", str(tmp / "t2l.txt"), "--list-format", "t2l"], "line 2"),
        "kinetics csv missing columns": ([*base, "--list", str(tmp / "k.csv")], "lacks column(s) time_end"),
        "binary list": ([*base, "--list", str(tmp / "binary.txt")], "is not UTF-8 text"),
        "broken gzip list": ([*base, "--list", str(tmp / "broken.txt.gz")], "cannot read annotation file"),
        "unknown classes": ([*base, "--classes", "no_such_dataset"], "not found"),
        "empty class list": ([*base, "--classes", str(tmp / "noclasses.txt")], "is empty"),
        "out is a file": (["--root", str(videos), "--out", str(tmp / "file"), "--no-progress"], "cannot create --out"),
        "bad shard size": ([*base, "--shard-size", "lots"], "cannot parse size 'lots'"),
        "zero shard size": ([*base, "--shard-size", "0"], "--shard-size must be > 0"),
        "zero per shard": ([*base, "--max-per-shard", "0"], "--max-per-shard must be >= 1, got 0"),
        "negative workers": ([*base, "--workers", "-2"], "--workers must be >= 0, got -2"),
        "zero timeout": ([*base, "--timeout", "0"], "--timeout must be > 0"),
        "short side without reencode": ([*base, "--short-side", "128"], "need --reencode"),
        "zero fps": ([*base, "--reencode", "--fps", "0"], "--fps must be > 0"),
        "prefix with a slash": ([*base, "--prefix", "a/b"], "--prefix 'a/b' must be"),
        "unknown option": ([*base, "--shardsize", "1GB"], "unrecognized arguments: --shardsize"),
        "non-integer workers": ([*base, "--workers", "many"], "argument --workers: invalid int value"),
        "bad list format": ([*base, "--list-format", "xml"], "argument --list-format: invalid choice"),
        "missing out": (["--root", str(videos)], "the following arguments are required: --out"),
    }


@pytest.mark.parametrize("name", [
    "nonexistent root", "root is a file", "nonexistent list", "empty list", "list line without label",
    "t2l line with bad count", "kinetics csv missing columns", "binary list", "broken gzip list", "unknown classes",
    "empty class list", "out is a file", "bad shard size", "zero shard size", "zero per shard", "negative workers",
    "zero timeout", "short side without reencode", "zero fps", "prefix with a slash", "unknown option",
    "non-integer workers", "bad list format", "missing out"])
def test_bad_input_is_one_line_exit_2(name, videos, tmp_path, capsys):
    argv, expected = _bad_inputs(tmp_path, videos)[name]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse errors
        code = exit_info.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("INFO")]
    assert len(lines) == 1 and lines[0].startswith("chronoclip-shards: error: "), err
    assert expected in lines[0] and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="is not a directory"):
        main(["--root", str(tmp_path / "nope"), "--list", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "o"),
              "--debug"])
