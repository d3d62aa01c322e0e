"""Shared fixtures of the ila tests: the official-format golden checkpoints and a tiny random ILA model."""

from __future__ import annotations

import lzma
import shutil
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


def decompress(name: str, dest: Path) -> Path:
    """Decompress ``fixtures/<name>.pth.xz`` to ``dest/<name>.pth`` (the official file, byte for byte)."""
    out = dest / f"{name}.pth"
    with lzma.open(FIXTURES / f"{name}.pth.xz", "rb") as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.fixture(scope="session")
def golden_k400(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(official K400 checkpoint path, io dict)."""
    path = decompress("ila_k400_tiny", tmp_path_factory.mktemp("ila_k400"))
    return path, torch.load(FIXTURES / "ila_k400_tiny_io.pt", weights_only=True)


@pytest.fixture(scope="session")
def golden_ssv2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(official SSv2 checkpoint path, io dict)."""
    path = decompress("ila_ssv2_tiny", tmp_path_factory.mktemp("ila_ssv2"))
    return path, torch.load(FIXTURES / "ila_ssv2_tiny_io.pt", weights_only=True)
