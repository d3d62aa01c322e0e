"""A single-process run starts DeepSpeed's communication backend without JIT-compiling its shared-memory
all-reduce op (a C++ build of about a minute that one rank has no use for)."""

from __future__ import annotations

import importlib

from core.training import launch


def test_single_rank_skips_the_shm_comm_op_build(monkeypatch):
    module = importlib.import_module("deepspeed.comm.torch")
    calls = []
    monkeypatch.setattr(module, "build_shm_op", lambda: calls.append("built") or "op")
    with launch._without_shm_comm_op(True):
        assert module.build_shm_op() is None
    assert module.build_shm_op() == "op" and calls == ["built"]  # restored afterwards
    with launch._without_shm_comm_op(False):  # several ranks: DeepSpeed's own behaviour
        assert module.build_shm_op() == "op"
