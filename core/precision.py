"""Numeric precision and compilation, decided in one place for evaluation, prediction, profiling and training.

``--dtype auto`` means bf16 where the hardware runs it fast (a CUDA device with bf16, or a CPU with AMX or
AVX512-BF16 instructions) and fp32 elsewhere. fp32 matmuls on GPUs may use TF32 (:func:`allow_tf32`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["DTYPES", "allow_tf32", "cast_parameters", "compile_module", "cpu_has_fast_bf16", "dtype_name",
           "resolve_dtype"]

DTYPES = ("auto", "fp32", "bf16")
_BY_NAME = {"fp32": torch.float32, "float32": torch.float32, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when this CPU has native bf16 matmul instructions (AMX-BF16 or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


def resolve_dtype(name: str | torch.dtype, device: str | torch.device = "cpu") -> torch.dtype:
    """``"auto" | "fp32" | "bf16"`` (or a torch dtype) -> the torch dtype to run in on ``device``."""
    if isinstance(name, torch.dtype):
        if name not in (torch.float32, torch.bfloat16):
            raise ValueError(f"unsupported dtype {name}; use one of {', '.join(DTYPES)}")
        return name
    key = str(name).lower()
    if key == "auto":
        device = torch.device(device)
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if device.type == "cpu" and cpu_has_fast_bf16() else torch.float32
    if key not in _BY_NAME:
        raise ValueError(f"unknown dtype {name!r}; use one of {', '.join(DTYPES)}")
    return _BY_NAME[key]


def cast_parameters(module: torch.nn.Module, dtype: torch.dtype, device: str | torch.device | None = None
                    ) -> torch.nn.Module:
    """``module`` on ``device`` with its floating parameters in ``dtype`` and its buffers left as they are.

    This is what DeepSpeed's bf16/fp16 engine does to the model it trains (0.19 casts parameters, not
    buffers), so an evaluation of a run computes what the run's own validation computed: BatchNorm running
    statistics, for instance, stay fp32 (``module.to(dtype)`` would round them to bf16 and move a
    run's top-1 by a tie here and there). Returns ``module`` (changed in place).
    """
    if device is not None:
        module.to(device)
    for param in module.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
    return module


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bf16"``; the name reports use."""
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


def allow_tf32(enabled: bool = True) -> None:
    """Let fp32 matmuls and convolutions on CUDA use TF32 tensor cores (no effect on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def compile_module(module: torch.nn.Module, warmup: Callable[[Any], Any] | None = None,
                   **options: Any) -> tuple[torch.nn.Module, float]:
    """``torch.compile(module, **options)``; with ``warmup``, call ``warmup(compiled)`` once so the compile
    happens now, and return the seconds it took (0.0 without a warmup) to report apart from steady speed."""
    compiled = torch.compile(module, **options)
    if warmup is None:
        return compiled, 0.0
    start = time.perf_counter()
    warmup(compiled)
    return compiled, time.perf_counter() - start
