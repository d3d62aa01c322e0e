"""Shared fixtures: a small synthetic dataset (16 classes, 32 px, 8 frames) generated once per session."""

from __future__ import annotations

import pytest

from core.data.synthetic import SyntheticRecipe, synthetic_dataset

SMALL_RECIPE = SyntheticRecipe(colors=("red", "green"), shapes=("square", "triangle"),
                               motions=("moving left", "moving right", "moving up", "moving down"), size=32,
                               num_frames=8, train_per_class=1, val_per_class=2, samples_per_shard=8, seed=0)


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory):
    """Cache root holding the small synthetic dataset (built once for the session)."""
    root = tmp_path_factory.mktemp("chronoclip-cache")
    synthetic_dataset(root, SMALL_RECIPE)
    return root


@pytest.fixture
def small_synthetic(synthetic_cache, monkeypatch):
    """Point evaluation's synthetic stand-in at the small dataset; returns the dataset."""
    import evaluation.datasets  # the protocols' synthetic stand-ins

    monkeypatch.setenv("CHRONOCLIP_CACHE", str(synthetic_cache))
    monkeypatch.setattr(evaluation.datasets, "SYNTHETIC_RECIPE", SMALL_RECIPE)
    return synthetic_dataset(synthetic_cache, SMALL_RECIPE)


# Multiply-adds of one 32x32 frame through the `test` CLIP vision tower (width 64, 2 blocks, patch 8,
# 16 patches + CLS = 17 tokens, MLP 256, embed 64), counted by hand:
PATCH_MACS = 16 * 64 * (3 * 8 * 8)  # conv1
BLOCK_MACS = 17 * 64 * 192 + 2 * 17 * 17 * 64 + 17 * 64 * 64 + 2 * 17 * 64 * 256  # qkv, q@k + a@v, out, mlp
HEAD_MACS = 64 * 64  # proj of the CLS token


@pytest.fixture
def test_clip_macs_per_frame() -> int:
    """1,945,856 multiply-adds per frame for the `test` preset's vision tower."""
    return PATCH_MACS + 2 * BLOCK_MACS + HEAD_MACS
