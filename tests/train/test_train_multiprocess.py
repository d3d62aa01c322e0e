"""Slow: the real launchers on CPU (2 DeepSpeed ranks, a 2-node torchrun), SIGKILL/SIGTERM and resume.

Each test starts fresh Python processes (DeepSpeed import, gloo groups), so each takes tens of seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.training.schedule import WarmupCosine

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# 16 steps of 8 clips (2 epochs of 64), lr 1e-3 without warm-up: the loss of a random `test` CLIP falls fast
ARGS = ["--method", "vifi", "clip.model=test", "clip.pretrained=null", "data.train_size=64", "train.batch_size=8",
        "train.micro_batch_size=4", "schedule.epochs=2", "schedule.warmup_epochs=0", "optim.lr=1e-3",
        "log.every_steps=1", "eval.batch_size=56", "data.num_workers=0"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rows(run: Path, event=None) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("event") == event]


def _env() -> dict[str, str]:
    env = dict(os.environ)  # CHRONOCLIP_CACHE comes from the train_cache fixture
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def _check_finished(run: Path, steps: int) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    assert summary["step"] == steps
    # every validation clip counted exactly once over the ranks
    assert summary["val_base/samples"] == 192 and summary["val_novel/samples"] == 96
    return summary


def test_deepspeed_two_cpu_ranks_train_on_disjoint_samples(train_cache, tmp_path):
    """2 DeepSpeed CPU ranks fine-tune a `test` CLIP pretrained on the synthetic captions (one rank builds that
    cache, ~1 min, while the other waits on its lock): the loss falls and the ranks never share a clip."""
    run = tmp_path / "ds"
    cmd = [str(BIN / "deepspeed"), "--num_gpus", "2", "--master_port", str(_free_port()), "--module", "core.train",
           *ARGS, "clip.pretrained=synthetic", "optim.lr=5e-4", "schedule.epochs=4", "log.sample_keys=true",
           "--output-dir", str(run)]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "global batch 8 = 2 ranks x 4 micro x 1 accumulation" in done.stdout + done.stderr
    _check_finished(run, 32)
    losses = [r["loss"] for r in _rows(run)]
    assert len(losses) == 32 and sum(losses[-8:]) / 8 < sum(losses[:8]) / 8 - 0.2, losses
    keys = {}
    for rank in (0, 1):
        for line in (run / "sample_keys" / f"rank{rank}.txt").read_text().splitlines():
            step, epoch, key = line.split()
            keys.setdefault((rank, epoch), []).append(key)
    for epoch in ("0", "1", "2", "3"):
        a, b = keys[(0, epoch)], keys[(1, epoch)]
        assert len(a) == len(b) == 32  # 8 steps x 4 clips per rank per epoch
        assert not set(a) & set(b), f"ranks shared samples in epoch {epoch}"


def test_torchrun_two_nodes_on_localhost(train_cache, tmp_path):
    run, port = tmp_path / "tr", _free_port()
    env = {**_env(), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([str(BIN / "torchrun"), "--nnodes", "2", "--nproc-per-node", "1", "--node-rank",
                               str(node), "--master-addr", "127.0.0.1", "--master-port", str(port), "-m",
                               "core.train", *ARGS, "schedule.epochs=1", "--output-dir", str(run)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for node in (0, 1)]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "global batch 8 = 2 ranks x 4 micro x 1 accumulation" in outputs[0]
    _check_finished(run, 8)
    assert [r["step"] for r in _rows(run)] == list(range(1, 9))


def _start(run: Path, extra: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "core.train", *ARGS, "schedule.epochs=4", "schedule.warmup_epochs=1",
           "checkpoint.every_steps=2", "--output-dir", str(run), *extra]
    # own session: the test signals exactly this process tree
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def _wait_for_step(proc: subprocess.Popen, run: Path, step: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r["step"] >= step for r in _rows(run)):
            return
        if proc.poll() is not None:
            raise AssertionError(f"training exited early:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"step {step} not reached in {timeout} s")


def test_sigkill_then_resume_continues_at_the_checkpoint_with_the_same_lr(train_cache, tmp_path):
    run = tmp_path / "killed"
    proc = _start(run, [])
    _wait_for_step(proc, run, 7)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    before = {r["step"]: r for r in _rows(run)}
    latest = (run / "checkpoints" / "latest").read_text().strip()
    saved = int(latest.removeprefix("step_"))
    assert saved % 2 == 0 and 6 <= saved <= max(before)  # at most the steps since that checkpoint are lost

    resumed = _start(run, [f"train.max_steps={saved + 3}"])
    out = resumed.communicate(timeout=1800)[0]
    assert resumed.returncode == 0, out[-3000:]
    assert _rows(run, "resume")[-1]["step"] == saved
    after = [r for r in _rows(run) if r["step"] > saved][-3:]
    assert [r["step"] for r in after] == [saved + 1, saved + 2, saved + 3]
    # 64 clips / 8 = 8 steps per epoch, 4 epochs, warm-up 1 epoch, then (the synthetic recipe) the cosine
    # restarts at the peak, floor lr/100
    schedule = WarmupCosine(total_steps=32, warmup_steps=8, min_lr=1e-5, cosine_from="warmup_end")
    for row in after:
        assert row["lr"] == pytest.approx(schedule.lr(1e-3, row["step"] - 1), rel=1e-12)
        if row["step"] in before:  # logged by the killed run too
            assert row["lr"] == before[row["step"]]["lr"]
    _check_finished(run, saved + 3)


def test_sigterm_checkpoints_then_exits_143(train_cache, tmp_path):
    run = tmp_path / "terminated"
    proc = _start(run, [])
    _wait_for_step(proc, run, 3)
    os.killpg(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 143, out[-3000:]
    last = max(r["step"] for r in _rows(run))
    assert (run / "checkpoints" / "latest").read_text().strip() == f"step_{last:08d}"
    assert "stopped by SIGTERM" in out
    assert not (run / "model.pt").exists()  # interrupted: no final model yet
