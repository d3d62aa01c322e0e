"""Training throughput of ``core.train``: 1 vs 2 data-parallel ranks on CPU, and clips/s per GPU per method.

CPU (always): the same tiny config trained for a few steps by ``python -m core.train`` (1 rank) and by
``deepspeed --num_gpus 2 --module core.train`` (2 CPU ranks, gloo), micro batch per rank fixed (weak
scaling); prints clips/s of each and their ratio. On a 2-core machine each rank gets one core, so a ratio
near 1 means the DeepSpeed/gloo overhead is small, not that two ranks are useless.

GPU (when CUDA is available): for each installed method, clips/s per GPU at ViT-B/16, 8 frames x 224 px,
bf16, random weights, synthetic clips upsampled to 224.

Throughput is read from the runs' ``metrics.jsonl`` (``clips_per_s``: clips of all ranks per second of the
slowest rank's step time, data loading included), median over the logged steps after the first ``--warmup``.

    python benchmarks/train_scaling.py [--steps 12] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
TINY = ["clip.model=test", "clip.pretrained=null", "data.num_workers=0", "train.micro_batch_size=8",
        "schedule.warmup_epochs=0", "log.every_steps=1", "checkpoint.every_steps=100000", "eval.batch_size=64"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clips_per_s(run: Path, warmup: int) -> float:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rates = [r["clips_per_s"] for r in rows if "clips_per_s" in r and r["step"] > warmup]
    if not rates:
        raise RuntimeError(f"no steps after the first {warmup} in {run}/metrics.jsonl")
    return statistics.median(rates)


def _run(cmd: list[str], run: Path, env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def cpu_scaling(root: Path, steps: int, warmup: int) -> tuple[float, float]:
    """(clips/s with 1 rank, clips/s with 2 ranks) of the tiny config."""
    common = ["--method", "vifi", *TINY, f"train.max_steps={steps}", "schedule.epochs=100",
              "data.train_size=1000"]
    one = root / "cpu-1rank"
    _run([sys.executable, "-m", "core.train", *common, "train.batch_size=8", "--output-dir", str(one)], one, _env())
    two = root / "cpu-2ranks"
    _run([str(BIN / "deepspeed"), "--num_gpus", "2", "--master_port", str(_free_port()), "--module", "core.train",
          *common, "train.batch_size=16", "--output-dir", str(two)], two, _env())
    return _clips_per_s(one, warmup), _clips_per_s(two, warmup)


def gpu_throughput(root: Path, steps: int, warmup: int, micro_batch: int) -> dict[str, float]:
    """clips/s per GPU of every installed method at ViT-B/16 8 x 224, bf16, one GPU."""
    from core.method import list_methods

    out = {}
    for name in list_methods():
        run = root / f"gpu-{name}"
        _run([sys.executable, "-m", "core.train", "--method", name, "--model", "ViT-B-16", "clip.pretrained=null",
              "method_options={}", "data.num_frames=8", "data.input_size=224", "data.num_workers=6",
              f"train.micro_batch_size={micro_batch}", f"train.batch_size={micro_batch}", "train.precision=bf16",
              "schedule.warmup_epochs=0", "schedule.epochs=100", "data.train_size=100000",
              f"train.max_steps={steps}", "log.every_steps=1", "checkpoint.every_steps=100000",
              "eval.batch_size=32", "--output-dir", str(run)], run, _env())
        out[name] = _clips_per_s(run, warmup)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the median")
    parser.add_argument("--gpu-micro-batch", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary directory)")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="train-scaling-"))
    try:
        one, two = cpu_scaling(root, args.steps, args.warmup)
        print(f"CPU ({os.cpu_count()} cores), tiny config, micro batch 8 per rank:")
        print(f"  1 rank   {one:8.1f} clips/s")
        print(f"  2 ranks  {two:8.1f} clips/s   ratio 2/1 = {two / one:.2f}")
        import torch

        if torch.cuda.is_available():
            print(f"GPU ({torch.cuda.get_device_name()}), ViT-B/16, 8 x 224, bf16, micro batch "
                  f"{args.gpu_micro_batch}, random weights:")
            for name, rate in gpu_throughput(root, args.steps, args.warmup, args.gpu_micro_batch).items():
                print(f"  {name:<8} {rate:8.1f} clips/s per GPU")
        else:
            print("GPU: none here (clips/s per GPU at ViT-B/16 8 x 224 needs CUDA)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
