"""Run directory rules: complete-only checkpoints, the latest pointer, pruning, refusing foreign directories."""

from __future__ import annotations

import hashlib
import json

import pytest

from core import config as cfg
from core.io import atomic_write_text
from core.training.loop import NonFiniteGuard
from core.training.rundir import CheckpointDir, RunDir


def _checkpoint(ckpts: CheckpointDir, step: int, complete: bool = True) -> str:
    tag = ckpts.tag(step)
    (ckpts.path / tag).mkdir(parents=True)
    (ckpts.path / tag / "weights").write_text("x")
    if complete:
        ckpts.mark_complete(tag, {"step": step, "world_size": 1})
    return tag


def test_latest_skips_incomplete_and_prune_keeps_last(tmp_path):
    ckpts = CheckpointDir(tmp_path / "checkpoints")
    assert ckpts.latest() is None
    for step in (10, 20, 30):
        _checkpoint(ckpts, step)
    _checkpoint(ckpts, 25, complete=False)  # cut short by a kill
    _checkpoint(ckpts, 40, complete=False)  # being written / killed after the newest complete one
    assert ckpts.latest() == "step_00000030"
    (ckpts.path / "latest").write_text("step_00000040\n")  # a pointer to an incomplete tag is ignored
    assert ckpts.latest() == "step_00000030"
    deleted = ckpts.prune(keep_last=2)
    assert deleted == ["step_00000010", "step_00000025"]
    assert sorted(p.name for p in ckpts.path.iterdir() if p.is_dir()) == ["step_00000020", "step_00000030",
                                                                           "step_00000040"]
    marker = ckpts.marker("step_00000030")
    assert marker["step"] == 30 and marker["world_size"] == 1
    assert marker["files"] == {"weights": {"size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}}  # manifest


def test_run_dir_refuses_foreign_or_different_runs(tmp_path):
    config = cfg.resolve_config("vifi", None, [])
    run = RunDir(tmp_path / "run")
    run.check_reuse(config)  # missing: fine
    run.path.mkdir()
    run.check_reuse(config)  # empty: fine
    (run.path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds no chronoclip run"):
        run.check_reuse(config)
    (run.path / "notes.txt").unlink()
    run.write_config(config)
    run.check_reuse(cfg.resolve_config("vifi", None, cfg.parse_override_tokens(["train.max_steps=3"])))
    other = cfg.resolve_config("vifi", None, cfg.parse_override_tokens(["optim.lr=0.5"]))
    run.check_reuse(other)  # nothing trained yet: a corrected config may restart it
    (run.path / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(ValueError, match=r"different config:\n  optim.lr: 0.0001 -> 0.5\n.*--resume"):
        run.check_reuse(other)


def test_atomic_write_replaces_whole_file(tmp_path):
    path = tmp_path / "a" / "summary.json"
    atomic_write_text(path, json.dumps({"top1": 0.5}))
    atomic_write_text(path, json.dumps({"top1": 0.75}))
    assert json.loads(path.read_text()) == {"top1": 0.75}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temporary left behind
    assert path.stat().st_mode & 0o044  # readable by others like a plain open() (umask 022)


def test_nonfinite_guard_counts_and_aborts():
    guard = NonFiniteGuard(limit=3)
    assert [guard.update(bad, step=5) for bad in (True, False, True, True)] == [True, False, True, True]
    assert (guard.in_a_row, guard.total) == (2, 3)
    with pytest.raises(RuntimeError, match="3 non-finite losses in a row at step 5 .*train.max_nonfinite=3"):
        guard.update(True, step=5)


def test_manifest_detects_damage_and_resume_takes_the_newest_intact(tmp_path, caplog):
    from core.training.rundir import resume_tag

    ckpts = CheckpointDir(tmp_path / "checkpoints")
    for step in (10, 20, 30):
        _checkpoint(ckpts, step)
    assert ckpts.newest_intact() == ("step_00000030", [])
    (ckpts.path / "step_00000030" / "weights").write_text("")  # truncated
    (ckpts.path / "step_00000020" / "weights").write_text("y")  # same size, other bytes
    tag, damaged = ckpts.newest_intact()
    assert tag == "step_00000010" and [t for t, _ in damaged] == ["step_00000030", "step_00000020"]
    assert "has 0 bytes, its manifest 1" in damaged[0][1] and "sha256" in damaged[1][1]
    assert resume_tag(ckpts) == "step_00000010"
    assert "step_00000030 is damaged" in caplog.text and "step_00000020 is damaged" in caplog.text
    assert sorted(p.name for p in ckpts.path.iterdir() if p.is_dir()) == [
        "damaged-step_00000020", "damaged-step_00000030", "step_00000010"]
    (ckpts.path / "step_00000010" / "weights").unlink()
    with pytest.raises(ValueError, match=r"no intact checkpoint in .*step_00000010/weights is missing"):
        resume_tag(ckpts)
