"""One prepared check of training and evaluation at ViT-B/16 on one CUDA GPU (issue 18); ``--cpu-smoke`` on CPU.

    python benchmarks/gpu_check.py                       # one CUDA GPU, ~8 minutes on an H200
    python benchmarks/gpu_check.py --cpu-smoke           # the same code path on CPU, tiny CLIP (~3 min/method)
    python benchmarks/gpu_check.py --methods vifi,t2l --peak-tflops 989   # another GPU's dense bf16 peak

Needs no dataset and no weights. Phases (each prints its progress):

1. **CLIP file**: a random-init CLIP ViT-B/16 (QuickGELU) written in OpenAI's layout (state dict with
   ``input_resolution``/``context_length``/``vocab_size``, fp16 weights), as ``--pretrained ViT-B-16.pt``
   would be; ``--cpu-smoke``: the ``tiny`` preset.
2. **Shards**: clips of the embedded synthetic world (``core.data.synthetic.render_clip``: coloured shapes in
   motion) at 224 px (smoke: 32 px), encoded as H.264 mp4 (``core.data.encoding``) and written by the shard
   writer (``core.data.shard_writer.write_shards``, the tool behind ``chronoclip-shards``). Each synthetic
   class carries the label and name of a Kinetics-400 class and the manifest lists all 400 names, so every
   official K400 recipe runs unchanged: 400 class texts per step, T2L's catalog descriptions of K400.
   ``--prepare-shards DIR`` only writes them (where PyAV is installed); ``--shards DIR`` reads them on a
   machine without it (``benchmarks/build_gpu_wheels.sh``, ``docs/gpu-check.md``).
3. **Training**, per method: the real entry point ``deepspeed --num_gpus 1 --module core.train`` (launched as
   ``python -m deepspeed.launcher.runner``, the same launcher), with the method's official ViT-B/16 recipe
   (vifi ``zero_shot``, t2l ``k400_zero_shot``, tcclip ``zero_shot``, ila ``k400_b16_8f``, stan ``k400_8f``):
   its per-GPU micro batch, global batch (gradient accumulation on one GPU), frames, augmentation, loader
   workers and ZeRO stage, shortened by overrides: ``train.max_steps``, ``train.precision=bf16``,
   ``schedule.warmup_epochs=0`` and a long nominal epoch (``data.train_size``) so the LR is the recipe's
   peak, a metrics row every step, no checkpoint but the final one. From ``metrics.jsonl`` and
   ``summary.json``: steady-state clips/s per GPU (median over the steps after the first), data
   wait as a fraction of step time, peak GPU memory (``torch.cuda.max_memory_allocated``), and whether the
   loss stays finite and falls (mean of the last third of the steps below the mean of the first third).
4. **Evaluation**, per trained model: the evaluation package's ``evaluate_set`` with the
   method's official test settings (``evaluation/settings.yaml``; vifi/t2l/tcclip zero-shot, ila/stan
   fully-supervised) on a held-out shard set, once in fp32 (TF32 off) with the fp32 weights of ``model.pt``
   and once with the model and clips cast to bf16: clips/s of each (views included) and the top-1 agreement
   of the two.
5. **Probe**, per trained model in this process (after its evaluation): one training forward+backward at the
   recipe's micro batch in bf16 under ``torch.utils.flop_counter.FlopCounterMode`` (model FLOPs per clip:
   matmuls, convolutions, attention; 2 FLOPs per multiply-add; the class texts' cost shared by the micro
   batch included), so ``MFU = clips/s x FLOPs per clip / --peak-tflops``; and which SDPA backend ran: every
   ``F.scaled_dot_product_attention`` call is counted, and the fused kernels it dispatched to (flash,
   memory-efficient, cuDNN, CPU flash) are seen at the dispatcher; calls without a fused kernel ran the math
   fallback. A second forward restricted to the fused backends (``sdpa_kernel``) must not raise.
6. **Report**: ``gpu_check.json`` and ``gpu_check.md`` in ``--out`` (default ``benchmarks/results/``;
   ``--cpu-smoke``: ``results/`` in the work folder) with the date, device, torch and DeepSpeed versions,
   every figure and the issue's goals next to it (vifi and t2l MFU >= 45 %, data wait < 10 % of step time, peak memory <
   80 GB, bf16/fp32 agreement >= 99 %).

A method that fails is recorded with the tail of its log and the check goes on with the next one; the exit
status is 1 when any method failed, 0 otherwise (goals missed are reported, not failures). The peak figure
is ``--peak-tflops`` (default 790: NVIDIA's H200 dense bf16 tensor-core peak without sparsity, the SXM part;
its datasheet's 1,979 TFLOP/s is with 2:4 sparsity).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import multiprocessing
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results"
H200_DENSE_BF16_TFLOPS = 790.0

# Goals of issue 18, printed next to each figure.
GOAL_MFU = 0.45              # vifi and t2l training
GOAL_MFU_METHODS = ("vifi", "t2l")
GOAL_DATA_WAIT = 0.10        # fraction of step time
GOAL_PEAK_MEMORY_GB = 80.0   # at the recipe's per-GPU micro batch
GOAL_AGREEMENT = 0.99        # bf16 vs fp32 top-1


@dataclass(frozen=True)
class MethodCheck:
    """What is run for one method: its official ViT-B/16 recipe, optimizer steps, evaluation protocol."""

    recipe: str
    steps: int                 # optimizer steps on the GPU (each = the recipe's global batch)
    protocol: str              # evaluation/settings.yaml protocol of the recipe
    smoke_options: dict[str, Any] = field(default_factory=dict)   # method_options for the tiny CLIP


# Steps sized so that each method trains on ~1,000-1,500 clips (8 minutes for the whole check on an H200).
METHODS: dict[str, MethodCheck] = {
    "vifi": MethodCheck("zero_shot", 5, "zero-shot"),
    "t2l": MethodCheck("k400_zero_shot", 14, "zero-shot"),
    # tiny CLIP: 16 patches per frame at 32 px, 4 text blocks
    "tcclip": MethodCheck("zero_shot", 4, "zero-shot", {"context_token_k": 16, "prompt_generation_layer_level": 4}),
    "ila": MethodCheck("k400_b16_8f", 5, "fully-supervised"),
    "stan": MethodCheck("k400_8f", 9, "fully-supervised"),
}


@dataclass
class Settings:
    """Sizes of one check (the GPU defaults or the ``--cpu-smoke`` ones)."""

    smoke: bool
    clip_model: str          # open_clip name / preset written to the CLIP file
    size: int                # frame side of the generated clips = data.input_size
    clip_frames: int         # frames per generated clip
    train_clips: int
    val_clips: int
    classes: int             # synthetic classes used (each labelled as one Kinetics-400 class)
    clips_per_shard: int
    warmup_steps: int        # metrics rows left out of the steady state
    method_timeout: float


def gpu_settings(args: argparse.Namespace) -> Settings:
    return Settings(smoke=False, clip_model="ViT-B-16-quickgelu", size=224, clip_frames=32,
                    train_clips=args.train_clips or 320, val_clips=args.val_clips or 64, classes=64,
                    clips_per_shard=16, warmup_steps=1, method_timeout=args.method_timeout or 240)


def smoke_settings(args: argparse.Namespace) -> Settings:
    return Settings(smoke=True, clip_model="tiny", size=32, clip_frames=16, train_clips=args.train_clips or 24,
                    val_clips=args.val_clips or 6, classes=6, clips_per_shard=6, warmup_steps=0,
                    method_timeout=args.method_timeout or 300)


# --------------------------------------------------------------------------------------------------- progress
_START = time.perf_counter()


def say(message: str) -> None:
    print(f"[gpu_check {time.perf_counter() - _START:6.1f} s] {message}", flush=True)


# ------------------------------------------------------------------------------------------------ environment
def environment(device: str, peak_tflops: float) -> dict[str, Any]:
    import torch

    try:
        import deepspeed

        ds_version = deepspeed.__version__
    except Exception as err:  # reported, and training will fail with the real error
        ds_version = f"not importable: {err}"
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "host": platform.node(),
            "python": platform.python_version(), "torch": torch.__version__, "deepspeed": ds_version,
            "cuda": torch.version.cuda, "device": device, "cpu_count": os.cpu_count(),
            "peak_tflops": peak_tflops}
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update({"gpu": torch.cuda.get_device_name(0), "gpu_memory_gb": round(props.total_memory / 1e9, 1),
                     "cudnn": torch.backends.cudnn.version()})
    else:
        info["gpu"] = None
    return info


# -------------------------------------------------------------------------------------------------- CLIP file
def write_clip_file(path: Path, model_name: str, seed: int = 0) -> Path:
    """A random-init CLIP in OpenAI's file layout: fp16 state dict + input_resolution/context_length/vocab_size."""
    import torch

    from core.clip import build_clip, is_openai_state_dict

    torch.manual_seed(seed)
    model = build_clip(model_name)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    vision = model.visual
    size = vision.image_size[0] if isinstance(vision.image_size, (tuple, list)) else vision.image_size
    state.update({"input_resolution": int(size), "context_length": int(model.context_length),
                  "vocab_size": int(model.vocab_size)})
    assert is_openai_state_dict(state)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


# ----------------------------------------------------------------------------------------------------- shards
def _render_one(task: tuple[str, int, str, str, str, int, int, str]) -> str:
    """Render and encode one synthetic clip to ``root/relative`` (runs in a pool worker)."""
    import numpy as np

    from core.data.encoding import encode_video
    from core.data.synthetic import render_clip

    relative, seed, color, shape, motion, size, frames, root = task
    out = Path(root) / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    clip = render_clip(color, shape, motion, size=size, num_frames=frames, rng=np.random.default_rng(seed))
    out.write_bytes(encode_video(clip, fps=8.0, keyint=8))
    return relative


def build_shards(root: Path, settings: Settings, workers: int) -> dict[str, Any]:
    """Train and val shard sets of synthetic clips labelled with the first ``classes`` Kinetics-400 classes."""
    from core.data import catalog
    from core.data.shard_writer import Entry, ShardOptions, write_shards
    from core.data.synthetic import COLORS, SyntheticRecipe

    names = catalog.class_names("kinetics400")
    world = SyntheticRecipe(colors=tuple(COLORS)).classes()
    classes = min(settings.classes, len(world), len(names))
    videos = root / "videos"
    sets = {"train": settings.train_clips, "val": settings.val_clips}
    tasks, entries = [], {s: [] for s in sets}
    for split_index, (split, count) in enumerate(sets.items()):
        for i in range(count):
            label = i % classes
            color, shape, motion = world[label]
            relative = f"{split}/{label:03d}/{split}_{i:05d}.mp4"
            tasks.append((relative, 1000 * split_index + i, color, shape, motion, settings.size,
                          settings.clip_frames, str(videos)))
            entries[split].append(Entry(source=relative, label=label))
    start = time.perf_counter()
    ctx = multiprocessing.get_context("fork")  # before this process touches CUDA
    with ctx.Pool(max(1, workers)) as pool:
        pool.map(_render_one, tasks, chunksize=4)
    render_s = time.perf_counter() - start
    out: dict[str, Any] = {"classes_used": classes, "class_list": "kinetics400 (400 names)",
                           "size": settings.size, "clip_frames": settings.clip_frames, "render_s": round(render_s, 1)}
    options = ShardOptions(max_per_shard=settings.clips_per_shard, prefix="shard")
    for split in sets:
        report = write_shards(entries[split], videos, root / split, classes=names, options=options,
                              workers=0 if settings.smoke else min(workers, 8), progress=False)
        if report.skipped:
            raise RuntimeError(f"the shard writer skipped {len(report.skipped)} generated clips: {report.skipped[:3]}")
        size = sum(p.stat().st_size for p in (root / split).glob("shard-*.tar"))
        out[split] = {"dir": str(root / split), "clips": report.num_samples, "shards": report.num_shards,
                      "mb": round(size / 2**20, 2)}
    shutil.rmtree(videos, ignore_errors=True)
    from core.io import atomic_write_json

    atomic_write_json(root / "gpu_check_shards.json", out)
    return out


def read_shards(root: Path, settings: Settings) -> dict[str, Any]:
    """The description of shards made by ``--prepare-shards`` (checked against this check's frame size)."""
    info_path = root / "gpu_check_shards.json"
    if not info_path.is_file():
        raise SystemExit(f"gpu_check: {root} holds no shards made by --prepare-shards (no {info_path.name})")
    info = json.loads(info_path.read_text())
    if info["size"] != settings.size:
        raise SystemExit(f"gpu_check: the shards in {root} are {info['size']} px, this check needs {settings.size} px "
                         f"(made {'without' if settings.smoke else 'with'} --cpu-smoke?)")
    for split in ("train", "val"):
        info[split]["dir"] = str(root.resolve() / split)   # made elsewhere: the recorded path may not exist here
    return info


# --------------------------------------------------------------------------------------------------- training
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def train_overrides(name: str, check: MethodCheck, settings: Settings, steps: int,
                    num_workers: int | None) -> list[str]:
    """The overrides that shorten the recipe (and shrink it to the tiny CLIP under --cpu-smoke)."""
    out = [f"train.max_steps={steps}", "log.every_steps=1", "checkpoint.every_steps=1000000",
           "checkpoint.keep_last=1", "schedule.warmup_epochs=0", "data.train_size=1000000", "eval.every_epochs=0"]
    out.append("train.precision=fp32" if settings.smoke else "train.precision=bf16")
    if settings.smoke:
        from core import config as cfg

        micro = cfg.resolve_config(name, check.recipe, [])["train"]["micro_batch_size"]
        out += [f"data.input_size={settings.size}", f"train.batch_size={micro}"]
        out += [f"method_options.{k}={v}" for k, v in check.smoke_options.items()]
    if num_workers is not None:
        out.append(f"data.num_workers={num_workers}")
    return out


def train_command(name: str, check: MethodCheck, settings: Settings, *, clip_file: Path, shards: Path, run: Path,
                  steps: int, num_workers: int | None) -> list[str]:
    """``python -m deepspeed.launcher.runner`` (the ``deepspeed`` script's module) ``--num_gpus 1 --module core.train``."""
    model = ["--model", settings.clip_model]
    return [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "1", "--master_port", str(_free_port()),
            "--module", "core.train", "--method", name, "--config", check.recipe, *model,
            "--pretrained", str(clip_file), "--train-shards", str(shards), "--output-dir", str(run),
            *train_overrides(name, check, settings, steps, num_workers)]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_training(command: list[str], log: Path, timeout: float) -> tuple[int, float]:
    """Run the launcher with its output in ``log``; (exit code, seconds). 124: killed at ``timeout``."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=_env(), cwd=REPO,
                                start_new_session=True)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            code = 124
    return code, time.perf_counter() - start


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def read_metrics(run: Path) -> list[dict[str, Any]]:
    """Training rows of ``metrics.jsonl`` (a torn last line is ignored)."""
    rows = []
    path = run / "metrics.jsonl"
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "event" not in row and "loss" in row:
            rows.append(row)
    return rows


def _wait_fraction(row: dict[str, Any]) -> tuple[float | None, str]:
    """Data-wait fraction of step time from one metrics row, whatever key the trainer logs it under."""
    for key in ("data_wait_fraction", "data_wait_frac"):
        if isinstance(row.get(key), (int, float)):
            return float(row[key]), key
    for wait_key, step_key in (("data_wait_s", "step_s"), ("data_wait_seconds", "step_seconds"),
                               ("data_wait_s", "step_time_s")):
        if isinstance(row.get(wait_key), (int, float)) and row.get(step_key):
            return float(row[wait_key]) / float(row[step_key]), f"{wait_key}/{step_key}"
    value = row.get("data_wait")
    if isinstance(value, (int, float)):
        return float(value), "data_wait"
    if isinstance(value, dict):  # a breakdown: take its fraction or seconds/step
        for key in ("fraction", "frac"):
            if isinstance(value.get(key), (int, float)):
                return float(value[key]), f"data_wait.{key}"
    return None, "none"


def training_figures(rows: list[dict[str, Any]], warmup: int, batch_size: int) -> dict[str, Any]:
    """Steady-state throughput, data wait, memory and loss behaviour from the metrics rows."""
    if not rows:
        return {"error": "no training rows in metrics.jsonl"}
    steady = [r for r in rows if r["step"] > warmup] or rows[-1:]
    rates = [r["clips_per_s"] for r in steady if isinstance(r.get("clips_per_s"), (int, float))]
    waits = [w for w, _ in map(_wait_fraction, steady) if w is not None]
    source = _wait_fraction(steady[-1])[1]
    losses = [float(r["loss"]) for r in rows]
    third = max(1, len(losses) // 3)
    first, last = statistics.fmean(losses[:third]), statistics.fmean(losses[-third:])
    finite = all(math.isfinite(v) for v in losses) and not any(r.get("nonfinite_total") for r in rows)
    clips_per_s = statistics.median(rates) if rates else None
    return {
        "steps_logged": len(rows), "steady_steps": len(steady),
        "clips_per_s": clips_per_s,
        "step_s": batch_size / clips_per_s if clips_per_s else None,
        "data_wait_fraction": statistics.median(waits) if waits else None, "data_wait_key": source,
        "memory_mb_logged": max((r.get("memory_mb") or 0.0) for r in rows),
        "losses": [round(v, 5) for v in losses], "loss_first": first, "loss_last": last,
        "loss_finite": finite, "loss_falls": bool(finite and len(losses) > 1 and last < first),
    }


# ------------------------------------------------------------------------------------------------------ probe
@contextlib.contextmanager
def sdpa_census() -> Iterator[dict[str, int]]:
    """Count ``F.scaled_dot_product_attention`` calls and the fused kernels they dispatch to.

    The Python-level function is wrapped (methods and ``nn.MultiheadAttention`` look it up at call time);
    the fused ops are seen by a dispatch mode. The math fallback is composite (it decomposes into
    matmul/softmax before dispatch), so ``math`` = calls - fused forward ops.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = {"calls": 0, "flash": 0, "efficient": 0, "cudnn": 0, "cpu_flash": 0, "other_fused": 0}
    kinds = {"_scaled_dot_product_flash_attention_for_cpu": "cpu_flash",
             "_scaled_dot_product_flash_attention": "flash",
             "_scaled_dot_product_efficient_attention": "efficient",
             "_scaled_dot_product_cudnn_attention": "cudnn",
             "_scaled_dot_product_fused_attention_overrideable": "other_fused"}

    class Census(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            name = func.overloadpacket.__name__
            if name in kinds:
                counts[kinds[name]] += 1
            return func(*args, **(kwargs or {}))

    original = F.scaled_dot_product_attention

    def counted(*args, **kwargs):
        counts["calls"] += 1
        return original(*args, **kwargs)

    torch.nn.functional.scaled_dot_product_attention = counted
    try:
        with Census():
            yield counts
    finally:
        torch.nn.functional.scaled_dot_product_attention = original
        fused = sum(counts[k] for k in ("flash", "efficient", "cudnn", "cpu_flash", "other_fused"))
        counts["math"] = max(0, counts["calls"] - fused)


def _probe_batch(model, config: dict[str, Any], class_texts: list[str], device, dtype) -> dict[str, Any]:
    import torch

    data, micro = config["data"], config["train"]["micro_batch_size"]
    generator = torch.Generator().manual_seed(0)
    video = torch.randn(micro, data["num_frames"], 3, data["input_size"], data["input_size"], generator=generator)
    label = torch.randint(0, len(class_texts), (micro,), generator=generator)
    batch = {"video": video.to(device=device, dtype=dtype), "label": label.to(device), "class_texts": class_texts}
    if data.get("mixup") is not None or data.get("label_smoothing", 0) > 0:
        batch["target"] = torch.nn.functional.one_hot(label, len(class_texts)).float().to(device)
    return batch


def probe(model, config: dict[str, Any], class_texts: list[str], device: str) -> dict[str, Any]:
    """Training FLOPs per clip (one forward+backward at the recipe's micro batch, bf16 on GPU) and SDPA backends."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model.to(device=device, dtype=dtype).train()
    batch = _probe_batch(model, config, class_texts, device, dtype)
    counter = FlopCounterMode(display=False)
    with sdpa_census() as census, counter:
        out = model.training_forward(batch)
        out["loss"].backward()
    model.zero_grad(set_to_none=True)
    flops = counter.get_total_flops()
    micro = config["train"]["micro_batch_size"]
    result: dict[str, Any] = {"flops_per_step_micro": flops, "flops_per_clip": flops / micro, "probe_dtype": str(dtype),
                              "sdpa": dict(census)}
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    try:
        with torch.no_grad(), sdpa_kernel(fused):
            model.training_forward(batch)
        result["sdpa"]["fused_only_forward"] = "ok"
    except Exception as err:  # the point of the check: which call needs the math fallback
        result["sdpa"]["fused_only_forward"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    del batch, out
    return result


# ------------------------------------------------------------------------------------------------- evaluation
def evaluate(loaded, protocol: str, val_dir: str, class_names: list[str], config: dict[str, Any],
             device: str) -> dict[str, Any]:
    """bf16 and fp32 runs of ``evaluation.protocols.evaluate_set``: clips/s of each and their top-1 agreement."""
    import torch

    from core.eval.sets import EvalSet
    from core.eval.settings import RunTestSettings, resolve_settings
    from core.precision import allow_tf32, cast_parameters
    from evaluation.protocols import Entry, RunOptions, evaluate_set

    trained = loaded.trained_frames or config["data"]["num_frames"]
    settings = resolve_settings(loaded.method, protocol, model_frames=getattr(loaded.model, "num_frames", None),
                                run=RunTestSettings(frames=trained))
    eval_set = EvalSet(group="kinetics400-labelled synthetic", split="val", shards=val_dir, class_names=class_names,
                       dataset="kinetics400", catalog_split="all", class_origin="manifest")
    entry = Entry(label="final", loaded=loaded, settings=settings)
    out: dict[str, Any] = {"protocol": protocol, "settings": settings.describe(), "views": settings.views,
                           "frames": settings.frames}
    predictions = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):   # fp32 first: exact weights
        allow_tf32(False)
        cast_parameters(loaded.model, dtype, device).eval()
        options = RunOptions(device=device, batch_size=config["eval"]["batch_size"],
                             num_workers=config["data"]["num_workers"], dtype=dtype, progress=False)
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = evaluate_set(entry, eval_set, options)
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        predictions[name] = dict(zip(result.predictions.keys, result.predictions.scores.argmax(1).tolist()))
        out[name] = {"videos": result.num_videos, "seconds": round(seconds, 3),
                     "videos_per_s": result.num_videos / seconds,
                     "clips_per_s": result.num_videos * settings.views / seconds, "top1": result.top1,
                     "text": result.text}
    common = sorted(set(predictions["bf16"]) & set(predictions["fp32"]))
    same = sum(predictions["bf16"][k] == predictions["fp32"][k] for k in common)
    out["agreement"] = same / len(common) if common else None
    out["compared_videos"] = len(common)
    return out


# ------------------------------------------------------------------------------------------------ one method
def check_method(name: str, check: MethodCheck, settings: Settings, args: argparse.Namespace, *, clip_file: Path,
                 data: dict[str, Any], work: Path, device: str) -> dict[str, Any]:
    import torch

    from core import config as cfg

    steps = args.steps or (2 if settings.smoke else check.steps)
    run = work / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    command = train_command(name, check, settings, clip_file=clip_file, shards=Path(data["train"]["dir"]), run=run,
                            steps=steps, num_workers=args.num_workers)
    shown = ["deepspeed", *command[3:]]
    record: dict[str, Any] = {"recipe": check.recipe, "steps": steps, "command": " ".join(shown)}
    say(f"{name}: training {steps} steps of recipe {check.recipe!r}")
    log = work / f"train-{name}.log"
    code, seconds = run_training(command, log, settings.method_timeout)
    record.update({"train_exit": code, "train_wall_s": round(seconds, 1), "log": str(log)})
    if code != 0:
        record["status"] = "failed"
        record["error"] = (f"training timed out after {settings.method_timeout:.0f} s" if code == 124 else
                           f"training exited with {code}")
        record["log_tail"] = _tail(log)
        say(f"{name}: FAILED ({record['error']}); last lines of {log}:\n{record['log_tail']}")
        return record
    config = cfg.public(_saved_config(run))
    train = config["train"]
    record["recipe_settings"] = {"micro_batch_size": train["micro_batch_size"], "batch_size": train["batch_size"],
                                 "accumulation": train["batch_size"] // train["micro_batch_size"],
                                 "zero_stage": train["zero_stage"], "precision": train["precision"],
                                 "num_frames": config["data"]["num_frames"], "input_size": config["data"]["input_size"],
                                 "num_workers": config["data"]["num_workers"], "clip_model": config["clip"]["model"]}
    figures = training_figures(read_metrics(run), settings.warmup_steps, train["batch_size"])
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").is_file() else {}
    peak_mb = summary.get("peak_memory_mb", figures.get("memory_mb_logged"))
    figures["peak_memory_gb"] = peak_mb / 1024 if peak_mb is not None else None
    figures["memory_kind"] = summary.get("memory_kind", "cuda_max_allocated" if device == "cuda" else "cpu_max_rss")
    record["train"] = figures
    say(f"{name}: {figures.get('clips_per_s') or float('nan'):.1f} clips/s, data wait "
        f"{_pct(figures.get('data_wait_fraction'))}, peak {figures['peak_memory_gb'] or float('nan'):.2f} GB, "
        f"loss {figures.get('loss_first', float('nan')):.4f} -> {figures.get('loss_last', float('nan')):.4f}")
    shutil.rmtree(run / "checkpoints", ignore_errors=True)  # GBs at ViT-B/16; model.pt is what is evaluated

    from evaluation.sources import load_model

    try:
        loaded = load_model(run=run)
        class_names = loaded.class_names
        texts = loaded.model.class_texts(class_names, loaded.descriptions)
        # fp32 evaluation first on the fp32 weights of model.pt, then the same weights cast to bf16, then the probe
        say(f"{name}: evaluation fp32 and bf16 ({check.protocol})")
        record["eval"] = evaluate(loaded, check.protocol, data["val"]["dir"], class_names, config, device)
        say(f"{name}: probe (FLOPs, SDPA backends)")
        record["probe"] = probe(loaded.model, config, texts, device)
        if figures.get("clips_per_s"):
            achieved = figures["clips_per_s"] * record["probe"]["flops_per_clip"]
            record["train"]["achieved_tflops"] = achieved / 1e12
            record["train"]["mfu"] = achieved / (args.peak_tflops * 1e12)
        record["status"] = "ok"
    except Exception as err:
        import traceback

        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        record["traceback"] = traceback.format_exc()[-3000:]
        say(f"{name}: FAILED after training: {record['error']}")
    finally:
        loaded = None
        if device == "cuda":
            torch.cuda.empty_cache()
    record["goals"] = goals(name, record, device)
    return record


def _saved_config(run: Path) -> dict[str, Any]:
    import yaml

    return yaml.safe_load((run / "config.yaml").read_text())


# ------------------------------------------------------------------------------------------------------ goals
def goals(name: str, record: dict[str, Any], device: str) -> dict[str, Any]:
    """Each goal of issue 18 that applies: its value, threshold and whether it is met (None: not measured)."""
    train, ev, sdpa = record.get("train", {}), record.get("eval", {}), record.get("probe", {}).get("sdpa", {})
    out: dict[str, Any] = {}
    if name in GOAL_MFU_METHODS:
        mfu = train.get("mfu")
        out["mfu"] = {"value": mfu, "goal": f">= {GOAL_MFU:.0%}", "met": None if mfu is None else mfu >= GOAL_MFU}
    wait = train.get("data_wait_fraction")
    out["data_wait"] = {"value": wait, "goal": f"< {GOAL_DATA_WAIT:.0%}",
                        "met": None if wait is None else wait < GOAL_DATA_WAIT}
    mem = train.get("peak_memory_gb")
    out["peak_memory_gb"] = {"value": mem, "goal": f"< {GOAL_PEAK_MEMORY_GB:.0f}",
                             "met": None if mem is None or device != "cuda" else mem < GOAL_PEAK_MEMORY_GB}
    agree = ev.get("agreement")
    out["bf16_fp32_agreement"] = {"value": agree, "goal": f">= {GOAL_AGREEMENT:.0%}",
                                  "met": None if agree is None else agree >= GOAL_AGREEMENT}
    out["loss_finite_and_falls"] = {"value": train.get("loss_falls"), "goal": "finite and falling",
                                    "met": train.get("loss_falls") if train else None}
    if sdpa.get("calls"):
        fused_ok = sdpa.get("math", 0) == 0 and sdpa.get("fused_only_forward") == "ok"
        out["sdpa_fused"] = {"value": {k: sdpa.get(k) for k in ("flash", "efficient", "cudnn", "math")},
                             "goal": "flash or memory-efficient, no math",
                             "met": fused_ok if device == "cuda" else None}
    return out


# ----------------------------------------------------------------------------------------------------- report
def _pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f} %"


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "n/a" if value is None else format(value, fmt)


def _mark(goal: dict[str, Any] | None) -> str:
    if not goal or goal.get("met") is None:
        return ""
    return " ✓" if goal["met"] else " ✗"


def markdown(result: dict[str, Any]) -> str:
    env = result["environment"]
    lines = [f"# chronoclip GPU check ({'CPU smoke run' if result['cpu_smoke'] else 'one GPU'})", "",
             f"{env['date']} · {env.get('gpu') or 'CPU'} · torch {env['torch']} · DeepSpeed {env['deepspeed']} · "
             f"CUDA {env.get('cuda')} · Python {env['python']}", "",
             f"MFU against {env['peak_tflops']:g} TFLOP/s dense bf16 ({result['peak_source']}). Data: "
             f"{result['data']['train']['clips']} training / {result['data']['val']['clips']} held-out clips of the "
             f"synthetic world at {result['data']['size']} px, {result['data']['clip_frames']} frames, labelled with "
             f"{result['data']['classes_used']} of the 400 Kinetics-400 classes (400 class texts). Random-init CLIP "
             f"{result['clip_model']}. Goals (issue 18): MFU >= 45 % (vifi, t2l), data wait < 10 % of step time, "
             f"peak memory < 80 GB, bf16/fp32 top-1 agreement >= 99 %; ✓ met, ✗ missed.", "",
             "| method | recipe (micro x accum, frames, ZeRO) | clips/s/GPU | step s | data wait | peak GB | "
             "train GFLOPs/clip | MFU | loss first → last | SDPA (flash/eff/cudnn/math) | eval bf16 clips/s | "
             "eval fp32 clips/s | bf16=fp32 top-1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rec in result["methods"].items():
        if rec.get("status") == "skipped":
            lines.append(f"| {name} | {rec.get('recipe', '')} | skipped: {rec.get('error', '')} |" + " |" * 10)
            continue
        tr, pr, ev, gl = rec.get("train", {}), rec.get("probe", {}), rec.get("eval", {}), rec.get("goals", {})
        rs = rec.get("recipe_settings", {})
        recipe = (f"{rec['recipe']} ({rs.get('micro_batch_size')} x {rs.get('accumulation')}, {rs.get('num_frames')} f, "
                  f"ZeRO {rs.get('zero_stage')})" if rs else rec["recipe"])
        sdpa = pr.get("sdpa", {})
        sdpa_text = ("none" if not sdpa.get("calls") else
                     f"{sdpa.get('flash', 0) + sdpa.get('cpu_flash', 0)}/{sdpa.get('efficient', 0)}/"
                     f"{sdpa.get('cudnn', 0)}/{sdpa.get('math', 0)}{_mark(gl.get('sdpa_fused'))}") if sdpa else "n/a"
        flops = pr.get("flops_per_clip")
        status = "" if rec.get("status") == "ok" else f" **{rec.get('status')}: {rec.get('error', '')}**"
        lines.append(
            f"| {name}{status} | {recipe} | {_num(tr.get('clips_per_s'))} | {_num(tr.get('step_s'), '.2f')} | "
            f"{_pct(tr.get('data_wait_fraction'))}{_mark(gl.get('data_wait'))} | "
            f"{_num(tr.get('peak_memory_gb'), '.2f')}{_mark(gl.get('peak_memory_gb'))} | "
            f"{_num(flops / 1e9 if flops else None, '.0f')} | {_pct(tr.get('mfu'))}{_mark(gl.get('mfu'))} | "
            f"{_num(tr.get('loss_first'), '.4f')} → {_num(tr.get('loss_last'), '.4f')}"
            f"{_mark(gl.get('loss_finite_and_falls'))} | {sdpa_text} | "
            f"{_num((ev.get('bf16') or {}).get('clips_per_s'))} | {_num((ev.get('fp32') or {}).get('clips_per_s'))} | "
            f"{_pct(ev.get('agreement'))}{_mark(gl.get('bf16_fp32_agreement'))} |")
    lines += ["", "clips/s/GPU: training clips per second, the median over steady-state steps (data loading "
              "included); step s: seconds per optimizer step (global batch); data wait: time the step loop waited for "
              "the loader, as a fraction of step time; peak GB: torch.cuda.max_memory_allocated of the training "
              "process (CPU: max RSS); GFLOPs/clip: FlopCounterMode over one training forward+backward at the recipe's "
              "micro batch, divided by it (FLOPs, not MACs); eval clips/s counts every view; SDPA: fused-kernel "
              "dispatches per training forward+backward (math = calls that ran the fallback).", ""]
    return "\n".join(lines)


def write_report(result: dict[str, Any], out: Path) -> tuple[Path, Path]:
    from core.io import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "gpu_check.json", out / "gpu_check.md"
    atomic_write_json(json_path, result)
    atomic_write_text(md_path, markdown(result))
    return json_path, md_path


# ------------------------------------------------------------------------------------------------------- main
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny CLIP, tiny shards, 2 steps per method, on CPU")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of " + ", ".join(METHODS))
    parser.add_argument("--steps", type=int, help="optimizer steps per method (default: sized per method; smoke 2)")
    parser.add_argument("--peak-tflops", type=float, default=H200_DENSE_BF16_TFLOPS,
                        help="the GPU's dense bf16 peak for MFU (default 790: H200 SXM, no sparsity)")
    parser.add_argument("--num-workers", type=int, help="override data.num_workers (default: the recipe's)")
    parser.add_argument("--train-clips", type=int, help="generated training clips (default 320; smoke 24)")
    parser.add_argument("--val-clips", type=int, help="generated held-out clips (default 64; smoke 6)")
    parser.add_argument("--method-timeout", type=float, help="seconds allowed per training run (default 240; smoke 300)")
    parser.add_argument("--budget", type=float,
                        help="seconds for the whole check; methods not started by then are skipped (default 480; "
                             "smoke: none)")
    parser.add_argument("--prepare-shards", type=Path, metavar="DIR",
                        help="only generate the shards (GPU sizes, or smoke sizes with --cpu-smoke) into DIR and exit: "
                             "made where PyAV is installed, carried to a GPU machine that lacks it")
    parser.add_argument("--shards", type=Path, metavar="DIR", help="use shards made by --prepare-shards")
    parser.add_argument("--out", type=Path, help="report folder (default benchmarks/results; smoke: the work folder)")
    parser.add_argument("--work", type=Path, help="folder for the CLIP file, shards and runs (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        print(f"gpu_check: unknown methods {unknown}; choose from {', '.join(METHODS)}", file=sys.stderr)
        return 2
    settings = smoke_settings(args) if args.cpu_smoke else gpu_settings(args)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    out = args.out or (work / "results" if settings.smoke else DEFAULT_OUT)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    workers = min(16, os.cpu_count() or 1)

    if args.prepare_shards is not None:
        say(f"shards ({settings.train_clips} + {settings.val_clips} clips at {settings.size} px) into "
            f"{args.prepare_shards}")
        data = build_shards(args.prepare_shards, settings, workers)
        say(f"  done: train {data['train']['shards']} shards ({data['train']['mb']} MB), val {data['val']['shards']} "
            f"shards ({data['val']['mb']} MB)")
        return 0
    if args.shards is not None:
        data = read_shards(args.shards, settings)
        say(f"phase 1/4: shards from {args.shards} (train {data['train']['clips']} clips, val {data['val']['clips']})")
    else:
        say(f"phase 1/4: shards ({settings.train_clips} + {settings.val_clips} clips at {settings.size} px) in {work}")
        data = build_shards(work / "shards", settings, workers)   # forks: before this process initialises CUDA
        say(f"  rendered in {data['render_s']} s; train {data['train']['shards']} shards "
            f"({data['train']['mb']} MB), val {data['val']['shards']} shards")

    import torch

    if settings.smoke:
        device = "cpu"
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device; run with --cpu-smoke for the CPU check", file=sys.stderr)
        return 2
    else:
        device = "cuda"
    env = environment(device, args.peak_tflops)
    say(f"phase 2/4: CLIP file ({settings.clip_model}, random init, OpenAI layout); {env.get('gpu') or 'CPU'}, "
        f"torch {env['torch']}, DeepSpeed {env['deepspeed']}")
    clip_file = write_clip_file(work / f"{settings.clip_model}-random.pt", settings.clip_model)

    result: dict[str, Any] = {
        "cpu_smoke": settings.smoke, "environment": env, "clip_model": settings.clip_model,
        "peak_source": (f"--peak-tflops {args.peak_tflops:g}" + (": NVIDIA H200 SXM dense bf16 tensor-core peak, "
                        "without 2:4 sparsity" if args.peak_tflops == H200_DENSE_BF16_TFLOPS else "")),
        "data": data, "settings": {k: v for k, v in vars(settings).items()},
        "goals": {"mfu": f">= {GOAL_MFU:.0%} for {', '.join(GOAL_MFU_METHODS)}",
                  "data_wait": f"< {GOAL_DATA_WAIT:.0%} of step time",
                  "peak_memory_gb": f"< {GOAL_PEAK_MEMORY_GB:.0f} at the recipe's per-GPU micro batch",
                  "bf16_fp32_agreement": f">= {GOAL_AGREEMENT:.0%}"},
        "methods": {},
    }
    say(f"phase 3/4: {len(names)} methods: {', '.join(names)}")
    failed = False
    budget = args.budget if args.budget is not None else (math.inf if settings.smoke else 480.0)
    for name in names:
        if time.perf_counter() - _START > budget:
            result["methods"][name] = {"recipe": METHODS[name].recipe, "status": "skipped",
                                       "error": f"time budget of {budget:.0f} s spent"}
            say(f"{name}: skipped (time budget of {budget:.0f} s spent)")
            continue
        record = check_method(name, METHODS[name], settings, args, clip_file=clip_file, data=data, work=work,
                              device=device)
        result["methods"][name] = record
        failed |= record.get("status") != "ok"
        write_report(result, out)   # after every method: an interrupted check keeps what it measured
    result["wall_s"] = round(time.perf_counter() - _START, 1)
    json_path, md_path = write_report(result, out)
    say(f"phase 4/4: report {json_path} and {md_path}")
    print(md_path.read_text(), flush=True)
    if not args.keep and args.work is None:
        shutil.rmtree(work / "shards", ignore_errors=True)
        shutil.rmtree(work / "runs", ignore_errors=True)
        clip_file.unlink(missing_ok=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
