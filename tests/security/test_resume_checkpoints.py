"""Resume never runs code from a run directory and never dead-ends on a damaged checkpoint.

One tiny run (4 steps, checkpoints at 2 and 4, both kept) is trained once; each test works on a copy.
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from core.testing import load_from_bytes_payload, shell_payload, splice_payload
from core.train import main
from core.training.rundir import CheckpointDir, file_manifest

REFUSED = "holds code the project will not run"
# a seconds-long run: test CLIP, random init, 16-clip epochs of 2 steps, checkpoints every 2 steps, 2 kept
TINY_ARGS = ["clip.model=test", "clip.pretrained=null", "data.train_size=16", "train.batch_size=8",
             "train.micro_batch_size=4", "schedule.epochs=3", "schedule.warmup_epochs=1", "log.every_steps=1",
             "checkpoint.every_steps=2", "checkpoint.keep_last=2", "eval.batch_size=56", "data.num_workers=0",
             "train.precision=fp32"]  # the fp32 ZeRO-1 checkpoint layout (auto is bf16 on CPUs with bf16 instructions)


@pytest.fixture(scope="module")
def trained(train_cache, tmp_path_factory):
    run = tmp_path_factory.mktemp("trained") / "run"
    assert main(["--method", "vifi", *TINY_ARGS, "train.max_steps=4", "--output-dir", str(run)]) == 0
    tags = CheckpointDir(run / "checkpoints").complete_tags()
    assert tags == ["step_00000002", "step_00000004"]
    marker = json.loads((run / "checkpoints" / "step_00000004" / "chronoclip.json").read_text())
    assert {"mp_rank_00_model_states.pt", "zero_pp_rank_0_mp_rank_00_optim_states.pt"} <= set(marker["files"])
    return run


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _resume_events(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("event") == "resume"]


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_damaged_newest_checkpoint_falls_back_to_the_previous_one(damage, run, caplog):
    newest = run / "checkpoints" / "step_00000004"
    victim = newest / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    if damage == "truncate":
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    else:
        victim.unlink()
    with caplog.at_level(logging.WARNING, logger="core.train"):
        assert main(["--method", "vifi", *TINY_ARGS, "train.max_steps=4", "--output-dir", str(run)]) == 0
    warning = "\n".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "step_00000004 is damaged" in warning and str(victim) in warning
    assert "previous intact checkpoint step_00000002" in warning
    assert _resume_events(run) == [{"event": "resume", "step": 2,
                                    "checkpoint": f"{run}/checkpoints/step_00000002"}]
    # the damaged checkpoint is kept aside; training went on to step 4 and wrote an intact one again
    assert (run / "checkpoints" / "damaged-step_00000004").is_dir()
    assert CheckpointDir(run / "checkpoints").newest_intact() == ("step_00000004", [])


def test_no_intact_checkpoint_is_a_clear_error(run, capsys):
    for tag in ("step_00000002", "step_00000004"):
        (run / "checkpoints" / tag / "mp_rank_00_model_states.pt").write_bytes(b"")
    assert main(["--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "no intact checkpoint in" in err and "step_00000002/mp_rank_00_model_states.pt has 0 bytes" in err
    assert "Traceback" not in err


def test_explicit_damaged_checkpoint_is_refused_by_name(run, capsys):
    victim = run / "checkpoints" / "step_00000002" / "mp_rank_00_model_states.pt"
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["--resume", str(run / "checkpoints" / "step_00000002")]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {run}/checkpoints/step_00000002 is damaged: {victim} has 100 bytes" in err


@pytest.mark.parametrize("file,make_payload", [
    ("mp_rank_00_model_states.pt", shell_payload),
    ("zero_pp_rank_0_mp_rank_00_optim_states.pt", load_from_bytes_payload),
], ids=["model-states-reduce", "optimizer-states-load-from-bytes"])
def test_tampered_deepspeed_checkpoint_is_refused_on_resume(file, make_payload, run, tmp_path, capsys):
    """The attacker also rewrites the manifest, so the file passes verification; DeepSpeed's load refuses it."""
    marker = tmp_path / "PWNED"
    folder = run / "checkpoints" / "step_00000004"
    original = tmp_path / "original.pt"
    shutil.copy(folder / file, original)
    splice_payload(original, folder / file, make_payload(marker))
    info = json.loads((folder / "chronoclip.json").read_text())
    info["files"] = file_manifest(folder)
    (folder / "chronoclip.json").write_text(json.dumps(info))
    assert CheckpointDir(run / "checkpoints").damage("step_00000004") is None
    for argv in (["--resume", str(run)], ["--method", "vifi", *TINY_ARGS, "train.max_steps=4",
                                          "--output-dir", str(run)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{folder / file} {REFUSED}" in err and "Traceback" not in err
        assert not marker.exists()
