"""The training recipe behind ``python -m core.train``: one DeepSpeed code path for every method and launcher.

Features:
    * one process (``python -m core.train``), ``deepspeed --num_gpus N`` (and ``--hostfile``), ``torchrun``;
      always a real ``deepspeed.initialize`` engine (CPU: DeepSpeed's CPU accelerator with gloo);
    * ZeRO stage 0/1/2; bf16 (fp32 gradient accumulation) or fp16 on GPU, bf16 or fp32 on CPU; gradient accumulation
      (``train.batch_size`` is global); gradient clipping; AdamW over the method's parameter groups (frozen
      tensors never reach the optimizer; group LR = ``optim.lr`` x the group's ``lr_scale``); per-step warm-up +
      cosine LR (``core.training.schedule``); the model's ``on_epoch_start(epoch)`` hook before each epoch;
    * run directory (``core.training.rundir``): resolved config, ``metrics.jsonl``, checkpoints every N steps
      and at the end (last K kept), consolidated fp32 ``model.pt``, ``summary.json``;
    * resume from the run directory or ``--resume``: same step, LR, optimizer state and data epoch; SIGTERM
      checkpoints at the next step boundary and exits with 143;
    * non-finite losses are skipped (every rank agrees) and counted; ``train.max_nonfinite`` in a row abort;
    * rank 0 alone logs, shows the tqdm bar and writes files; TensorBoard optional;
    * per logging window, the seconds spent waiting for data (``data_wait_s``) and in the step (``step_s``), in
      ``metrics.jsonl`` and the progress line, with a warning naming the data knobs when the wait exceeds
      ``train.data_wait_warn`` of the window;
    * methods without trainable parameters (``clip``) skip optimisation and only evaluate.

Rejected (``ValueError`` before any work): bf16 with ZeRO 0; fp16 on CPU; a global batch that is
not a multiple of micro batch x ranks; a non-empty output directory holding another config; resuming a ZeRO
>= 1 checkpoint with a different number of ranks.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import resource
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from core import config as cfg
from core.eval.engine import evaluate_set
from core.eval.settings import RunTestSettings, resolve_settings
from core.io import atomic_torch_save, atomic_write_text
from core.method import VideoModel, load_method
from core.runs import model_file_payload
from core.training.backbone import build_backbone
from core.training.data import RunData, make_train_loader, resolve_data
from core.training.launch import (
    broadcast_object,
    configure_file_logging,
    detach_file_logging,
    init_distributed,
    load_checkpoints_weights_only,
    scalar_params_broadcast,
    shutdown_distributed,
)
from core.training.optim import (
    build_optimizer,
    checked_param_groups,
    deepspeed_config,
    resolve_precision,
    trainable_summary,
)
from core.training.rundir import CheckpointDir, MetricsLog, RunDir, parse_resume, resume_tag
from core.training.schedule import WarmupCosine

__all__ = ["DataWaitMonitor", "NonFiniteGuard", "TrainStep", "Trainer"]

logger = logging.getLogger("core.train")

SIGTERM_EXIT = 143


class NonFiniteGuard:
    """Counts skipped non-finite losses; raises after ``limit`` in a row."""

    def __init__(self, limit: int):
        self.limit, self.in_a_row, self.total = limit, 0, 0

    def update(self, bad: bool, step: int) -> bool:
        """Record one micro-batch; True when it must be skipped.

        Raises:
            RuntimeError: ``limit`` non-finite losses in a row.
        """
        if not bad:
            self.in_a_row = 0
            return False
        self.in_a_row += 1
        self.total += 1
        logger.warning("non-finite loss at step %d: micro-batch skipped (%d in a row, %d in total)", step,
                       self.in_a_row, self.total)
        if self.in_a_row >= self.limit:
            raise RuntimeError(
                f"{self.in_a_row} non-finite losses in a row at step {step} ({self.total} in this run): training "
                f"diverged. Lower optim.lr, check the data, or resume from the last checkpoint; "
                f"train.max_nonfinite={self.limit} sets the tolerance")
        return True


class TrainStep(nn.Module):
    """The module DeepSpeed wraps: ``forward(batch) = model.training_forward(batch)`` (model + loss in one)."""

    def __init__(self, model: VideoModel):
        super().__init__()
        self.model = model

    def forward(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        return self.model.training_forward(batch)


def _memory_mb(device: torch.device) -> float:
    """Peak memory of this rank so far: CUDA ``max_memory_allocated`` on a GPU, else the process's max RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _memory_kind(device: torch.device) -> str:
    """What :func:`_memory_mb` measures on ``device`` (recorded next to the figure)."""
    return "cuda_max_allocated" if device.type == "cuda" else "cpu_max_rss"


class Trainer:
    """Trains one method on one config (module docstring: features and rejected combinations).

    Use: ``Trainer(config, resume=None).setup()`` then ``run()`` (returns the process exit code), ``cleanup()``.
    """

    def __init__(self, config: dict[str, Any], *, resume: str | None = None):
        self.config = config
        self.resume_arg = resume
        self.summary: dict[str, Any] | None = None
        self._stop_requested = False

    # ----------------------------------------------------------------------------------------------------- setup
    def setup(self) -> None:
        # process group first: every later decision that must agree is made on rank 0 and broadcast
        self.world = init_distributed()
        self.is_main = self.world.is_main
        # run directory before any heavy work, so a wrong --output-dir fails in seconds
        self._setup_run_dir()
        # model before data: the loaders normalise with the model's input_mean/std and the class texts
        # come from model.class_texts
        self._setup_model()
        self._setup_data()
        # engine last: it needs the parameter groups and the steps per epoch
        self._setup_engine()
        self._load_checkpoint()

    def _setup_run_dir(self) -> None:
        decision: dict[str, Any] = {}
        if self.is_main:
            try:
                decision = self._decide_run_dir()
            except (ValueError, FileNotFoundError) as err:
                decision = {"error": f"{type(err).__name__}: {err}"}
        decision = broadcast_object(decision)
        if "error" in decision:
            kind, message = decision["error"].split(": ", 1)
            raise (FileNotFoundError if kind == "FileNotFoundError" else ValueError)(message)
        self.run_dir = RunDir(decision["path"])
        self.config["output_dir"] = str(self.run_dir.path)
        self.resume_from: tuple[str, str] | None = decision.get("resume")
        if self.is_main:
            self.run_dir.path.mkdir(parents=True, exist_ok=True)
            self.run_dir.write_config(self.config)
        self.metrics = MetricsLog(self.run_dir.metrics_path, enabled=self.is_main)
        configure_file_logging(self.run_dir.path / "train.log" if self.is_main else None)

    def _decide_run_dir(self) -> dict[str, Any]:
        resume = None
        out = self.config.get("output_dir")
        if self.resume_arg:
            target = parse_resume(self.resume_arg)
            if target.tag is None:
                raise ValueError(f"--resume {self.resume_arg}: the run has no complete checkpoint yet; start it "
                                 f"again with --output-dir {target.run}")
            resume = (str(target.checkpoints), target.tag)
            out = out or str(target.run)
        path = Path(out) if out else _unique_default_dir(self.config["method"])
        run_dir = RunDir(path)
        run_dir.check_reuse(self.config)
        if resume is None:
            tag = resume_tag(run_dir.checkpoints)
            if tag is not None:
                resume = (str(run_dir.checkpoints.path), tag)
        return {"path": str(path), "resume": resume}

    def _setup_model(self) -> None:
        config = self.config
        # the same seed on every rank: new modules start identical everywhere (DeepSpeed also broadcasts)
        torch.manual_seed(config["train"]["seed"])
        np.random.seed(config["train"]["seed"])
        # clip.pretrained=synthetic: one rank pretrains (under a file lock) while the others wait for it
        clip, self.clip_config = build_backbone(config["clip"]["model"], config["clip"]["pretrained"])
        self.method = load_method(config["method"])
        self.model = self.method.build(clip, num_frames=config["data"]["num_frames"],
                                       **(config.get("method_options") or {}))
        trainable, total = trainable_summary(self.model)
        self.trainable = trainable
        logger.info("%s: %.2f M parameters, %.2f M trainable", config["method"], total / 1e6, trainable / 1e6)
        from deepspeed.accelerator import get_accelerator

        accelerator = get_accelerator()
        self.device = torch.device(accelerator.device_name(self.world.local_rank)
                                   if accelerator.device_name() != "cpu" else "cpu")
        self.precision = resolve_precision(config["train"]["precision"], self.device.type,
                                           config["train"]["zero_stage"])
        # DeepSpeed casts the module's parameters to bf16/fp16; keep what model.pt needs in fp32 (frozen tensors do
        # not live in the optimizer's fp32 master copy) and the original dtype of every entry
        self._orig_dtypes = {k: v.dtype for k, v in self.model.state_dict().items()}
        self._frozen_fp32: dict[str, torch.Tensor] = {}
        if self.precision != "fp32":
            self._frozen_fp32 = {k: v.detach().clone() for k, v in self.model.state_dict(keep_vars=True).items()
                                 if isinstance(v, nn.Parameter) and not v.requires_grad}

    def _setup_data(self) -> None:
        config, world = self.config, self.world
        self.data: RunData = resolve_data(config)
        self.class_texts = self.model.class_texts(self.data.class_names, self.data.descriptions)
        self.eval_texts = {s.name: self.model.class_texts(s.class_names, self.data.descriptions)
                           for s in self.data.eval_sets}
        # the run's own test settings (data.num_frames, test_views, test_sampling, train.seed) with the method's
        # view aggregation: the settings every later evaluation of this run uses by default (core.eval.settings)
        run_test = RunTestSettings.from_run({"num_frames": config["data"]["num_frames"], "config": config})
        self.eval_settings = resolve_settings(config["method"], "base-to-novel", model_frames=self.model.num_frames,
                                              run=run_test)
        train = config["train"]
        per_step = train["micro_batch_size"] * world.world_size
        if train["batch_size"] % per_step:
            raise ValueError(f"train.batch_size={train['batch_size']} is not a multiple of train.micro_batch_size x "
                             f"ranks = {train['micro_batch_size']} x {world.world_size}; change one of them")
        self.accum = train["batch_size"] // per_step
        self.steps_per_epoch = max(1, self.data.train_size // train["batch_size"])
        self.total_steps = config["schedule"]["epochs"] * self.steps_per_epoch
        self.stop_step = min(self.total_steps, train["max_steps"] or self.total_steps)
        self.epoch_batches = self.steps_per_epoch * self.accum
        schedule = config["schedule"]
        self.schedule = WarmupCosine(
            total_steps=self.total_steps,
            warmup_steps=min(self.total_steps, round(schedule["warmup_epochs"] * self.steps_per_epoch)),
            min_lr=schedule["min_lr_ratio"] * config["optim"]["lr"],
            warmup_start_factor=schedule["warmup_start_factor"], cosine_from=schedule["cosine_from"])
        logger.info("%d training clips, %d classes; %d steps/epoch x %d epochs = %d steps (global batch %d = %d "
                    "ranks x %d micro x %d accumulation)", self.data.train_size, len(self.data.class_names),
                    self.steps_per_epoch, schedule["epochs"], self.total_steps, train["batch_size"],
                    world.world_size, train["micro_batch_size"], self.accum)

    def _setup_engine(self) -> None:
        self.engine = None
        self._compile_pending = False
        self.model.to(self.device)
        if self.trainable == 0:
            logger.info("%s has no trainable parameters: no optimisation, evaluation only", self.config["method"])
            # validate in the run's precision, cast as DeepSpeed would (parameters only), so that summary.json
            # agrees with a later evaluation of the run (core.eval.settings.resolve_eval_dtype)
            if self.precision != "fp32":
                from core.precision import cast_parameters

                self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
                cast_parameters(self.model, self.dtype)
            return
        if self.data.train_shards is None:
            raise ValueError(f"{self.config['method']} has trainable parameters but no training data: pass "
                             f"--train-shards (data.train_shards)")
        import deepspeed

        optim = self.config["optim"]
        groups = checked_param_groups(self.model, optim["lr"], optim["weight_decay"])
        self.base_lrs = [float(g["lr"]) for g in groups]
        for group in groups:
            logger.info("param group %-12s %8d tensors %10d values  lr %.3g  wd %.3g", group["name"],
                        len(group["params"]), sum(p.numel() for p in group["params"]), group["lr"],
                        group["weight_decay"])
        optimizer = build_optimizer(groups, lr=optim["lr"], betas=optim["betas"], eps=optim["eps"],
                                    weight_decay=optim["weight_decay"])
        ds_config = deepspeed_config(batch_size=self.config["train"]["batch_size"],
                                     micro_batch_size=self.config["train"]["micro_batch_size"],
                                     world_size=self.world.world_size, precision=self.precision,
                                     zero_stage=self.config["train"]["zero_stage"], grad_clip=optim["grad_clip"])
        with scalar_params_broadcast(self.model):
            self.engine, self.optimizer, _, _ = deepspeed.initialize(model=TrainStep(self.model),
                                                                     optimizer=optimizer, config=ds_config)
        load_checkpoints_weights_only(self.engine)  # resume never unpickles code from the run directory
        self.dtype = next(p.dtype for p in self.model.parameters())
        # train.compile: the forward of every micro-batch runs compiled; the first call compiles (timed apart)
        self._compile_pending = bool(self.config["train"].get("compile", False))
        if self._compile_pending:
            self.model.training_forward = torch.compile(self.model.training_forward)

    # ------------------------------------------------------------------------------------------- checkpoints
    def _client_state(self) -> dict[str, Any]:
        return {"step": self.step, "data_epoch": self.data_epoch, "epoch_batches_done": self.epoch_batches_done,
                "nonfinite_total": self.guard.total, "resumes": self.resumes, "world_size": self.world.world_size,
                "config_digest": cfg.config_digest(cfg.identity(self.config))}

    def _load_checkpoint(self) -> None:
        self.step, self.data_epoch, self.epoch_batches_done, self.resumes = 0, 0, 0, 0
        self.guard = NonFiniteGuard(self.config["train"]["max_nonfinite"])
        if self.resume_from is None:
            return
        load_dir, tag = self.resume_from
        info = CheckpointDir(load_dir).marker(tag)
        if info.get("world_size") != self.world.world_size and self.config["train"]["zero_stage"] > 0:
            raise ValueError(f"checkpoint {load_dir}/{tag} was written by {info.get('world_size')} ranks with ZeRO "
                             f"stage {self.config['train']['zero_stage']} (optimizer state partitioned per rank); "
                             f"resume with {info.get('world_size')} ranks")
        if self.engine is None:
            return
        path, client = self.engine.load_checkpoint(load_dir, tag=tag, load_optimizer_states=True,
                                                   load_lr_scheduler_states=False)
        if path is None:
            raise RuntimeError(f"DeepSpeed could not load checkpoint {load_dir}/{tag}")
        self.step = int(client["step"])
        self.data_epoch, self.epoch_batches_done = int(client["data_epoch"]), int(client["epoch_batches_done"])
        self.guard.total = int(client["nonfinite_total"])
        self.resumes = int(client["resumes"]) + 1
        self.last_saved_step = self.step  # never rewrite a complete checkpoint in place
        if self.engine.global_steps != self.step:
            raise RuntimeError(f"checkpoint {tag}: DeepSpeed step {self.engine.global_steps} != saved step {self.step}")
        logger.info("resumed from %s/%s at step %d (data epoch %d, %d batches into it)", load_dir, tag, self.step,
                    self.data_epoch, self.epoch_batches_done)
        self.metrics.write({"event": "resume", "step": self.step, "checkpoint": f"{load_dir}/{tag}"})
        if self.is_main:
            # a checkpoint newer than the one resumed from was cut short by the kill: clear it
            for stale in sorted(self.run_dir.checkpoints.path.glob("step_*")):
                if stale.name > tag and stale.name not in self.run_dir.checkpoints.complete_tags():
                    import shutil

                    shutil.rmtree(stale, ignore_errors=True)

    def save_checkpoint(self) -> None:
        """DeepSpeed checkpoint of the current step on every rank; ``latest`` moves once all ranks are done."""
        if self.engine is None:
            return
        checkpoints = self.run_dir.checkpoints
        tag = checkpoints.tag(self.step)
        start = time.perf_counter()
        self.engine.save_checkpoint(str(checkpoints.path), tag=tag, client_state=self._client_state(),
                                    save_latest=False)
        dist.barrier()
        if self.is_main:
            checkpoints.mark_complete(tag, {"step": self.step, "world_size": self.world.world_size,
                                            "time": datetime.datetime.now().isoformat(timespec="seconds")})
            deleted = checkpoints.prune(self.config["checkpoint"]["keep_last"])
            logger.info("checkpoint %s (%.1f s)%s", tag, time.perf_counter() - start,
                        f"; removed {', '.join(deleted)}" if deleted else "")
        dist.barrier()
        self.last_saved_step = self.step

    # ----------------------------------------------------------------------------------------------- training
    def _batches(self) -> Iterator[dict[str, Any]]:
        """Micro-batches forever, epoch after epoch; tracks the data position for checkpoints."""
        train = self.config["train"]
        mean, std = self.model.input_mean, self.model.input_std
        while True:
            remaining = self.epoch_batches - self.epoch_batches_done
            if remaining <= 0:
                self.data_epoch, self.epoch_batches_done = self.data_epoch + 1, 0
                continue
            # a resumed, partly consumed epoch reads its remaining batches with a derived seed rather than
            # decoding and discarding the consumed ones (same step count; a different draw of clips)
            seed = train["seed"] + (1_000_003 * self.resumes if self.epoch_batches_done else 0)
            loader = make_train_loader(self.data, self.config, mean=mean, std=std, world=self.world,
                                       epoch=self.data_epoch, epoch_batches=remaining, seed=seed)
            for batch in loader:
                self.epoch_batches_done += 1
                yield batch
            self.data_epoch, self.epoch_batches_done = self.data_epoch + 1, 0

    def _prepare(self, batch: dict[str, Any], micro_index: int) -> dict[str, Any]:
        from core.data.transforms import MixupCutmix, smooth_one_hot

        data = self.config["data"]
        video = batch["video"].to(self.device, non_blocking=True)
        label = batch["label"].to(self.device, non_blocking=True)
        target = None
        if data["mixup"] is not None:
            # seeded by (seed, rank, step, micro-batch): a resumed run mixes exactly as an uninterrupted one
            seed = [self.config["train"]["seed"], self.world.rank, self.step, micro_index]
            mixer = MixupCutmix(len(self.class_texts), **data["mixup"], seed=int(np.random.SeedSequence(seed)
                                                                                .generate_state(1)[0]))
            video, target = mixer(video, label)
        elif data["label_smoothing"] > 0:
            target = smooth_one_hot(label, len(self.class_texts), data["label_smoothing"])
        out = {"video": video.to(self.dtype), "label": label, "class_texts": self.class_texts}
        if target is not None:
            out["target"] = target
        return out

    @contextlib.contextmanager
    def _sigterm_checkpoints(self) -> Iterator[None]:
        """While training, SIGTERM asks for a checkpoint at the next step boundary (then exit 143)."""
        def handler(signum, frame):
            logger.warning("SIGTERM: checkpointing at the end of this step, then exiting")
            self._stop_requested = True

        try:
            previous = signal.signal(signal.SIGTERM, handler)
        except ValueError:  # not the main thread (an embedding application): keep its handling
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGTERM, previous)

    def run(self) -> int:
        """Train (or only evaluate), save, evaluate; returns the exit code (0, or 143 after SIGTERM)."""
        if self.engine is not None and self.step < self.stop_step:
            with self._sigterm_checkpoints():
                stopped = self._train()
            if stopped:
                return SIGTERM_EXIT
        elif self.engine is not None:
            logger.info("step %d reached already (stop at %d): nothing to train", self.step, self.stop_step)
        if self.engine is not None and getattr(self, "last_saved_step", None) != self.step:
            self.save_checkpoint()
        self.save_model()
        self.summary = self.final_evaluation()
        return 0

    def _train(self) -> bool:
        """The step loop; True when stopped by SIGTERM (after checkpointing)."""
        from tqdm import tqdm

        engine, log_every = self.engine, self.config["log"]["every_steps"]
        batches = self._batches()
        bar = tqdm(total=self.stop_step, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not self.is_main, file=sys.stderr)
        writer = self._tensorboard()
        window, data_wait = _Window(), DataWaitMonitor(self.config)
        self._keys_file = None
        if self.config["log"]["sample_keys"]:
            keys_dir = self.run_dir.path / "sample_keys"
            keys_dir.mkdir(parents=True, exist_ok=True)
            self._keys_file = open(keys_dir / f"rank{self.world.rank}.txt", "a")
        engine.train()
        started_epoch = None
        try:
            while self.step < self.stop_step:
                epoch = self.step // self.steps_per_epoch
                if epoch != started_epoch:  # also on resume, mid-epoch: the hook depends on the epoch only
                    self.model.on_epoch_start(epoch)
                    started_epoch = epoch
                lrs = self.schedule.lrs(self.base_lrs, self.step)
                for group, lr in zip(self.optimizer.param_groups, lrs):
                    group["lr"] = lr
                stop = self._optimizer_step(batches, window)
                self.step = engine.global_steps
                bar.update(1)
                if self.step % log_every == 0 or self.step == self.stop_step:
                    row = self._log_row(window, lrs)
                    bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{lrs[0]:.2e}", wait=f"{row['data_wait']:.0%}")
                    self.metrics.write(row)
                    data_wait.check(row)
                    if writer is not None:
                        for key, value in row.items():
                            if isinstance(value, (int, float)) and key != "step":
                                writer.add_scalar(f"train/{key}", value, self.step)
                    window = _Window()
                if stop:
                    self.save_checkpoint()
                    logger.warning("stopped by SIGTERM at step %d; resume with python -m core.train --resume %s",
                                   self.step, self.run_dir.path)
                    return True
                if self.step % self.config["checkpoint"]["every_steps"] == 0:
                    self.save_checkpoint()
                every = self.config["eval"]["every_epochs"]
                if every and self.step % (every * self.steps_per_epoch) == 0 and self.step < self.stop_step:
                    self.evaluate(tag="val")
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if self._keys_file is not None:
                self._keys_file.close()
        return False

    def _optimizer_step(self, batches: Iterator[dict[str, Any]], window: _Window) -> bool:
        """``accum`` micro-batches through the engine (non-finite ones skipped); True if SIGTERM arrived."""
        engine = self.engine
        done = 0
        stop = torch.zeros(2)
        while done < self.accum:
            start = time.perf_counter()
            batch = next(batches)
            ready = time.perf_counter()
            if self._keys_file is not None:
                self._keys_file.writelines(f"{self.step} {self.data_epoch} {key}\n" for key in batch["key"])
            prepared = self._prepare(batch, done)
            out = engine(prepared)
            loss = out["loss"]
            # every rank must take the same branch: agree on "skip" and on "stop" in one small collective
            stop = torch.tensor([0.0 if torch.isfinite(loss.detach()).all() else 1.0, float(self._stop_requested)])
            dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            if self.guard.update(bool(stop[0]), self.step):
                window.skipped += 1
                continue
            engine.backward(loss)
            engine.step()
            done += 1
            total = time.perf_counter() - start
            if self._compile_pending:  # this micro-batch compiled the forward: report it, keep it out of clips/s
                self._compile_pending = False
                logger.info("train.compile: first micro-batch %.1f s (compilation included)", total - (ready - start))
                self.metrics.write({"event": "compile", "step": self.step, "seconds": total - (ready - start)})
                total = ready - start
            window.add(out, batch, wait=ready - start, total=total)
        return bool(stop[1])

    def _log_row(self, window: _Window, lrs: list[float]) -> dict[str, Any]:
        terms = window.means()
        keys = sorted(terms)
        values = torch.tensor([terms[k] for k in keys] + [window.clips, window.seconds, window.wait,
                                                          window.seconds - window.wait], dtype=torch.float64)
        # mean loss terms over ranks; clips summed; time = the slowest rank's
        summed = values.clone()
        dist.all_reduce(summed)
        slowest = values.clone()
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        world = self.world.world_size
        row: dict[str, Any] = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 4)}
        row.update({k: float(summed[i]) / world for i, k in enumerate(keys)})
        clips, seconds, wait = float(summed[-4]), float(slowest[-3]), float(slowest[-2])
        row.update({"lr": lrs[0], "lrs": lrs, "clips_per_s": clips / seconds if seconds else float("nan"),
                    "data_wait": wait / seconds if seconds else float("nan"),
                    "data_wait_s": wait, "step_s": float(slowest[-1]),
                    "memory_mb": _memory_mb(self.device), "nonfinite_total": self.guard.total,
                    "skipped": window.skipped})
        return row

    def _tensorboard(self):
        if not (self.is_main and self.config["log"]["tensorboard"]):
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ValueError("log.tensorboard=true needs the tensorboard package: pip install tensorboard") from err
        return SummaryWriter(str(self.run_dir.tensorboard_path))

    # --------------------------------------------------------------------------------------------- model file
    def consolidated_state_dict(self) -> dict[str, torch.Tensor] | None:
        """fp32 weights of the whole model on rank 0 (None elsewhere). Collective: call on every rank.

        fp32 runs: the module's own tensors. Half precision: trained tensors from the optimizer's fp32
        master copy (gathered across ZeRO partitions), frozen ones from the copy kept before casting.
        """
        state = self.model.state_dict(keep_vars=True)
        if self.precision == "fp32":
            return {k: v.detach().cpu().clone() for k, v in state.items()} if self.is_main else None
        from deepspeed.utils import safe_get_full_fp32_param

        out: dict[str, torch.Tensor] = {}
        cache: dict[int, torch.Tensor] = {}
        warned = False
        for name, tensor in state.items():  # same order on every rank: the gathers pair up
            if isinstance(tensor, nn.Parameter) and tensor.requires_grad:
                if id(tensor) not in cache:
                    full = safe_get_full_fp32_param(tensor)
                    if full is None:
                        if not warned:
                            logger.warning("no fp32 master copy reachable (fp16 with ZeRO 0): model.pt holds the "
                                           "half-precision weights cast to fp32; use train.zero_stage>=1")
                            warned = True
                        full = tensor.detach().float()
                    cache[id(tensor)] = full.cpu()
                out[name] = cache[id(tensor)]
            elif name in self._frozen_fp32:
                out[name] = self._frozen_fp32[name].cpu()
            else:
                out[name] = tensor.detach().cpu().to(self._orig_dtypes[name])
        return out if self.is_main else None

    def save_model(self) -> None:
        """Write ``model.pt`` (rank 0; the gather of the weights involves every rank)."""
        state = self.consolidated_state_dict()
        if not self.is_main:
            dist.barrier()
            return
        payload = model_file_payload(method=self.config["method"], clip_config=self.clip_config,
                                     num_frames=self.config["data"]["num_frames"],
                                     method_options=self.config.get("method_options") or {},
                                     class_names=self.data.class_names, descriptions=self.data.descriptions,
                                     state_dict=state, step=self.step, config=cfg.public(self.config))
        atomic_torch_save(payload, self.run_dir.model_path)
        logger.info("model file %s (step %d)", self.run_dir.model_path, self.step)
        dist.barrier()

    # --------------------------------------------------------------------------------------------- evaluation
    def evaluate(self, tag: str = "val") -> dict[str, Any]:
        """Top-1 in percent (and the time-reversal pair accuracy where defined) on every evaluation split, by
        ``core.eval.engine.evaluate_set`` with the run's test settings; rank 0 gets the numbers."""
        results: dict[str, Any] = {}
        dtype = getattr(self, "dtype", torch.float32)
        for eval_set in self.data.eval_sets:
            result = evaluate_set(
                self.model, eval_set, self.eval_texts[eval_set.name], self.eval_settings,
                input_size=self.config["data"]["input_size"], batch_size=self.config["eval"]["batch_size"],
                device=self.device, dtype=dtype, num_workers=self.config["data"]["num_workers"],
                rank=self.world.rank, world_size=self.world.world_size, timeout=self.config["data"]["decode_timeout"],
                progress=f"eval {eval_set.name}" if self.is_main else False, require_videos=False,
                decoder=self.config["data"]["decoder"])
            results[f"{eval_set.name}/top1"] = result.top1
            results[f"{eval_set.name}/samples"] = result.num_videos
            results[f"{eval_set.name}/classes"] = result.num_classes
            if eval_set.reversal_pairs:
                results[f"{eval_set.name}/reversal_pair_top1"] = result.reversal_pair_accuracy
        if self.is_main and results:
            self.metrics.write({"event": tag, "step": self.step, "unit": "%", **results})
            logger.info("%s at step %d: %s", tag, self.step,
                        ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()))
        return results if self.is_main else {}

    def final_evaluation(self) -> dict[str, Any] | None:
        """Evaluate and write ``summary.json`` (rank 0 returns it)."""
        results = self.evaluate(tag="final")
        if not self.is_main:
            return None
        from core.eval.metrics import harmonic_mean
        from core.precision import dtype_name

        settings = self.eval_settings
        summary = {"method": self.config["method"], "step": self.step, "total_steps": self.total_steps,
                   "synthetic": self.data.synthetic, "nonfinite_total": self.guard.total, "unit": "%",
                   "peak_memory_mb": _memory_mb(self.device), "memory_kind": _memory_kind(self.device),
                   "test": {"frames": settings.frames, "views": f"{settings.clips}x{settings.crops}",
                            "sampling": settings.sampling, "aggregation": settings.aggregation,
                            "precision": dtype_name(getattr(self, "dtype", torch.float32))}, **results}
        if self.data.synthetic:
            base, novel = results.get("val_base/top1"), results.get("val_novel/top1")
            summary.update({"base_top1": base, "novel_top1": novel,
                            "hm": harmonic_mean(base, novel) if base is not None and novel is not None else None,
                            "reversal_pair_top1": _mean(results.get("val_base/reversal_pair_top1"),
                                                        results.get("val_novel/reversal_pair_top1"))})
        elif self.data.eval_sets:
            summary["val_top1"] = results.get("val/top1")
        import json

        atomic_write_text(self.run_dir.summary_path, json.dumps(summary, indent=1) + "\n")
        return summary

    def cleanup(self, *, wait_for_others: bool = False) -> None:
        """Leave the process group (see :func:`shutdown_distributed`) and detach the run's log file."""
        shutdown_distributed(wait_for_others=wait_for_others)
        detach_file_logging()


class DataWaitMonitor:
    """Warns (rank 0) when a logging window spent more than ``train.data_wait_warn`` of its time waiting for data.

    The first window is not judged (it includes starting the loader workers and filling the shuffle buffer);
    after a warning, the next comes at the earliest ``repeat`` windows later.
    """

    def __init__(self, config: Mapping[str, Any], repeat: int = 10):
        self.config, self.repeat = config, repeat
        self.windows, self.last_warning = 0, None

    def check(self, row: Mapping[str, Any]) -> bool:
        """Judge one logged row; True when it warned."""
        self.windows += 1
        limit, share = self.config["train"]["data_wait_warn"], row["data_wait"]
        if limit is None or self.windows == 1 or not share > limit:
            return False
        if self.last_warning is not None and self.windows - self.last_warning < self.repeat:
            return False
        self.last_warning = self.windows
        data = self.config["data"]
        logger.warning(
            "step %d: waiting for data took %.0f%% of the last logging window (%.2f s waiting, %.2f s in the step; "
            "train.data_wait_warn=%g): the model is starved. Raise data.num_workers (now %d), re-encode the shards "
            "for fast seeking (chronoclip-shards --reencode --keyint 16 --short-side 256), or try another decoder "
            "(data.decoder=decord|pyav|torchcodec, now %s)", row["step"], 100 * share, row["data_wait_s"],
            row["step_s"], limit, data["num_workers"], data["decoder"])
        return True


class _Window:
    """Loss terms, clips and time since the last logged step (this rank)."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0
        self.clips = 0
        self.seconds = 0.0
        self.wait = 0.0
        self.skipped = 0

    def add(self, out: Mapping[str, Any], batch: Mapping[str, Any], *, wait: float, total: float) -> None:
        for key, value in out.items():
            if key == "logits" or not isinstance(value, torch.Tensor) or value.numel() != 1:
                continue
            self.sums[key] = self.sums.get(key, 0.0) + float(value.detach())
        logits = out.get("logits")
        if isinstance(logits, torch.Tensor) and logits.ndim == 2 and logits.shape[0] == batch["label"].shape[0]:
            hits = (logits.detach().argmax(-1).cpu() == batch["label"]).float().mean()
            self.sums["train_top1"] = self.sums.get("train_top1", 0.0) + float(hits)
        self.count += 1
        self.clips += int(batch["label"].shape[0])
        self.seconds += total
        self.wait += wait

    def means(self) -> dict[str, float]:
        return {k: v / max(self.count, 1) for k, v in self.sums.items()}


def _mean(*values: float | None) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return sum(values) / len(values) if values else None


def _unique_default_dir(method: str) -> Path:
    from core.training.rundir import default_output_dir

    path = default_output_dir(method)
    suffix = 1
    while path.exists():
        path = path.with_name(f"{path.name.split('~')[0]}~{suffix}")
        suffix += 1
    return path
