"""Fixtures of the trainer tests: an isolated cache (synthetic data, pretrained CLIPs) and tiny-run arguments."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory):
    """``CHRONOCLIP_CACHE`` for the whole session: the synthetic dataset is generated once, under tmp."""
    root = tmp_path_factory.mktemp("chronoclip-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHRONOCLIP_CACHE", str(root))
        yield root


@pytest.fixture
def tiny_args():
    """Overrides for a seconds-long run: ``test`` CLIP preset, random init, 16-clip epochs of 2 steps."""
    return ["clip.model=test", "clip.pretrained=null", "data.train_size=16", "train.batch_size=8",
            "train.micro_batch_size=4", "schedule.epochs=3", "schedule.warmup_epochs=1", "log.every_steps=1",
            "checkpoint.every_steps=2", "eval.batch_size=56", "data.num_workers=0",
            "train.precision=fp32"]  # exact fp32 arithmetic (auto is bf16 on CPUs with bf16 instructions)
