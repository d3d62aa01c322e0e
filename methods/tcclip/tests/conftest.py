"""Shared fixtures of the tcclip tests: the golden numbers and the authors'-format tiny files (see fixtures/README.md)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def golden() -> dict:
    """Inputs (fp16 videos, class names) and the official float64 outputs on the tiny checkpoint."""
    return torch.load(FIXTURES / "golden.pt", weights_only=True)


@pytest.fixture(scope="session")
def official_checkpoint() -> Path:
    """The tiny TC-CLIP in the authors' epoch_saving format (module. prefix, pickled DictConfig inside)."""
    return FIXTURES / "tcclip_tiny_official.pth"


@pytest.fixture(scope="session")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The matching OpenAI-layout CLIP state dict (fp16), un-gzipped: what users pass as ``clip=``."""
    out = tmp_path_factory.mktemp("tcclip_clip") / "openai_clip_tiny.pt"
    with gzip.open(FIXTURES / "openai_clip_tiny.pt.gz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out
