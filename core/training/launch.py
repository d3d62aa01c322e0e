"""Process-group setup for ``core.train``: plain ``python``, ``deepspeed`` and ``torchrun`` alike.

``deepspeed`` and ``torchrun`` set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT (torchrun also LOCAL_WORLD_SIZE,
the DeepSpeed launcher LOCAL_SIZE); a plain ``python`` process becomes rank 0 of 1 on a free local port.
The backend is DeepSpeed's for the machine (NCCL on GPUs; gloo with DeepSpeed's CPU accelerator).
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from core.distributed import WorldInfo, world_info

logger = logging.getLogger("core.train")

__all__ = ["broadcast_object", "configure_file_logging", "detach_file_logging", "init_distributed",
           "load_checkpoints_weights_only", "scalar_params_broadcast", "shutdown_distributed"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Environment variables this process set for a plain ``python`` run; removed again at shutdown so the
# process (e.g. a test session) is left as it was found.
_OWN_ENV: list[str] = []
# Whether this process created its own 1-rank group. DeepSpeed keeps module-level handles to the groups it
# was given, so a second run in the same process (tests, notebooks) must reuse that group, not a new one;
# it is destroyed when the interpreter exits.
_OWN_GROUP: list[bool] = []


def init_distributed() -> WorldInfo:
    """Join (or, for plain ``python``, create) the process group with DeepSpeed's backend for this machine.

    ``deepspeed`` and ``torchrun`` set RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT; a plain ``python`` process
    becomes rank 0 of 1 on a free local port.
    """
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    launched = "WORLD_SIZE" in os.environ or "OMPI_COMM_WORLD_SIZE" in os.environ
    if not launched:
        env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": str(_free_port())}
        _OWN_ENV.extend(k for k in env if k not in os.environ)
        os.environ.update(env)
    accelerator = get_accelerator()
    if not (dist.is_available() and dist.is_initialized()):
        with _without_shm_comm_op(int(os.environ.get("WORLD_SIZE", "1")) == 1):
            deepspeed.init_distributed(dist_backend=accelerator.communication_backend_name(), verbose=False,
                                       timeout=datetime.timedelta(minutes=60))
        if not launched:
            _OWN_GROUP.append(True)
            atexit.register(_destroy_group)
    world = world_info()
    if accelerator.device_name() != "cpu":
        accelerator.set_device(world.local_rank)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(cpu_threads())
    return world


@contextlib.contextmanager
def _without_shm_comm_op(single_rank: bool) -> Iterator[None]:
    """For one rank, start DeepSpeed's communication backend without its shared-memory all-reduce op.

    On CPU, DeepSpeed 0.19's ``TorchBackend`` JIT-compiles that C++ op (``deepspeed_shm_comm``: about a minute
    with g++, once per environment) when the backend starts, although one rank has no peer to share memory
    with; its collectives fall back to torch.distributed (gloo) without it. The engine stays DeepSpeed's.
    """
    if not single_rank:
        yield
        return
    import importlib

    ds_torch_comm = importlib.import_module("deepspeed.comm.torch")  # the module, not deepspeed.comm's torch
    build = ds_torch_comm.build_shm_op
    ds_torch_comm.build_shm_op = lambda: None
    try:
        yield
    finally:
        ds_torch_comm.build_shm_op = build


def cpu_threads() -> int:
    """Intra-op threads of one CPU rank: the machine's cores shared by its local ranks, or 1 on a machine
    that is already busy (OpenMP threads spin while they wait for each other, and with more runnable threads
    than cores a multi-threaded step can take ten times longer than a single-threaded one).
    ``OMP_NUM_THREADS`` overrides this."""
    cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("LOCAL_SIZE") or 1)
    threads = max(1, cores // local)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if threads > 1 and load >= cores:
        logger.info("machine busy (load %.1f on %d cores): 1 thread per rank (set OMP_NUM_THREADS to choose)",
                    load, cores)
        return 1
    return threads


def _destroy_group() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shutdown_distributed(*, wait_for_others: bool = False) -> None:
    """Leave the process group (``wait_for_others``: barrier first, only on success: after a failure on one
    rank a barrier would hang the others) and drop the environment :func:`init_distributed` set.

    A launcher's group is destroyed now; a plain ``python`` process keeps its own 1-rank group for a later
    run in the same process (destroyed at exit).
    """
    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            dist.barrier()
        if not _OWN_GROUP:
            dist.destroy_process_group()
    while _OWN_ENV:
        os.environ.pop(_OWN_ENV.pop(), None)


@contextlib.contextmanager
def scalar_params_broadcast(model: nn.Module) -> Iterator[None]:
    """Let ``deepspeed.initialize`` run on a model with 0-dim parameters (CLIP's ``logit_scale``).

    DeepSpeed 0.19's initial parameter broadcast views every parameter as bytes, which fails for 0-dim
    tensors. We broadcast those from rank 0 ourselves and, for the duration of ``initialize`` only, tag them
    with the attribute its broadcast skips (it marks parameters that are unique per rank elsewhere).
    """
    scalars = [p for p in model.parameters() if p.dim() == 0]
    for p in scalars:
        if dist.get_world_size() > 1:
            dist.broadcast(p.data, src=0)
        p.ds_optim_param = True
    try:
        yield
    finally:
        for p in scalars:
            del p.ds_optim_param


def broadcast_object(obj: Any) -> Any:
    """rank 0's ``obj`` on every rank."""
    if dist.get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


_FILE_HANDLERS: list[logging.Handler] = []


def configure_file_logging(path: Path | None) -> None:
    """Copy the log of rank 0 into ``<run>/train.log``."""
    if path is None:
        return
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger().addHandler(handler)
    _FILE_HANDLERS.append(handler)


def detach_file_logging() -> None:
    while _FILE_HANDLERS:
        handler = _FILE_HANDLERS.pop()
        logging.getLogger().removeHandler(handler)
        handler.close()


def load_checkpoints_weights_only(engine: Any) -> None:
    """Make ``engine`` read its checkpoint files with ``torch.load(weights_only=True)`` (resume never unpickles).

    DeepSpeed's ``TorchCheckpointEngine.load`` calls ``torch.load(weights_only=False)`` on every file of a
    checkpoint (model states, ZeRO optimizer partitions), so a tampered run directory would run code on
    resume. This engine's instance gets a subclass whose ``load`` goes through
    :func:`core.serialization.load_weights` with the few DeepSpeed classes its checkpoints pickle
    (``DEEPSPEED_CHECKPOINT_CLASSES``): anything else is refused with the file's name. Nothing global changes.

    Raises:
        ValueError: the engine uses another checkpoint engine (nebula, fast/decoupled writers), which
            chronoclip does not configure and whose loading it cannot vouch for.
    """
    from deepspeed.runtime.checkpoint_engine import TorchCheckpointEngine

    current = engine.checkpoint_engine
    if isinstance(current, _weights_only_engine_class()):
        return
    if type(current) is not TorchCheckpointEngine:
        raise ValueError(f"DeepSpeed checkpoint engine {type(current).__name__} is not supported: chronoclip "
                         f"resumes only through TorchCheckpointEngine (remove checkpoint engine options)")
    current.__class__ = _weights_only_engine_class()


_ENGINE_CLASS: list[type] = []


def _weights_only_engine_class() -> type:
    """The engine subclass, defined on first use (DeepSpeed is imported lazily)."""
    if not _ENGINE_CLASS:
        from deepspeed.runtime.checkpoint_engine import TorchCheckpointEngine

        from core.serialization import DEEPSPEED_CHECKPOINT_CLASSES, load_weights

        class WeightsOnlyCheckpointEngine(TorchCheckpointEngine):
            """``TorchCheckpointEngine`` whose ``load`` is ``load_weights`` with DeepSpeed's classes allowed."""

            def load(self, path: str, map_location: Any = None) -> Any:
                return load_weights(path, map_location, allow=DEEPSPEED_CHECKPOINT_CLASSES)

        _ENGINE_CLASS.append(WeightsOnlyCheckpointEngine)
    return _ENGINE_CLASS[0]
