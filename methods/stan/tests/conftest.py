"""Shared fixtures: the golden numbers and the authors'-format tiny checkpoints (unpacked once per session)."""

from __future__ import annotations

import lzma
import tarfile
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def golden() -> dict:
    """Inputs and outputs of the official code on the tiny checkpoints (see fixtures/README.md)."""
    return torch.load(FIXTURES / "stan_golden.pt", weights_only=True)


@pytest.fixture(scope="session")
def official_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"selfattn": path, "conv": path}``: mmengine-format .pth files as the authors' Runner writes them."""
    out = tmp_path_factory.mktemp("stan_official")
    with lzma.open(FIXTURES / "stan_checkpoints.tar.xz") as xz, tarfile.open(fileobj=xz) as tar:
        # the "data" filter (Python >= 3.10.12 / 3.11.4) refuses links and absolute paths
        tar.extractall(out, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return {tm: out / f"stan_{tm}_tiny_mmengine.pth" for tm in ("selfattn", "conv")}
