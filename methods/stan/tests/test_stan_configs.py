"""Every shipped recipe parses, names this method, and its method_options build a model."""

from __future__ import annotations

import pytest
import torch
from chronoclip_stan import STAN

from core.clip import build_clip

RECIPES = sorted(STAN().configs())
KEYS = {"method", "clip", "method_options", "data", "optim", "schedule", "train"}


def test_expected_protocols_ship() -> None:
    assert {"k400_8f", "k400_16f", "ssv2_8f", "ssv2_16f", "k400_conv_8f", "ssv2_conv_8f", "msrvtt_retrieval_b32",
            "synthetic"} <= set(RECIPES)


@pytest.mark.parametrize("protocol", RECIPES)
def test_recipe_builds(protocol: str) -> None:
    recipe = STAN().load_config(protocol)
    assert set(recipe) == KEYS and recipe["method"] == "stan"
    options = recipe["method_options"]
    torch.manual_seed(0)
    clip = build_clip("test", vision_cfg={"layers": max(options.get("depth", 4), 2)})
    model = STAN().build(clip, num_frames=recipe["data"]["num_frames"], **options)
    assert model.branch.depth == options.get("depth", 4)
    assert model.branch_lr_mult == options.get("branch_lr_mult", 10.0)
    assert recipe["optim"]["lr"] > 0 and recipe["schedule"]["epochs"] >= recipe["schedule"]["warmup_epochs"]


def test_paper_protocol_values() -> None:
    ssv2, k400 = STAN().load_config("ssv2_16f"), STAN().load_config("k400_8f")
    assert ssv2["method_options"]["depth"] == 6 and ssv2["data"]["num_frames"] == 16
    assert k400["method_options"]["depth"] == 4 and k400["data"]["num_frames"] == 8
    for recipe in (ssv2, k400):
        assert recipe["clip"]["model"] == "ViT-B-16-quickgelu"
        assert recipe["optim"]["lr"] == 2.0e-6 and recipe["method_options"]["branch_lr_mult"] == 10.0
        assert recipe["data"]["test_views"] == [1, 3] and recipe["train"]["batch_size"] == 128
    assert STAN().load_config("k400_conv_8f")["method_options"]["time_module"] == "conv"
    assert STAN().load_config("msrvtt_retrieval_b32")["method_options"]["task"] == "retrieval"


@pytest.mark.parametrize("protocol", [p for p in RECIPES if p != "synthetic"])
def test_effective_lrs_are_the_official_ones(protocol: str) -> None:
    """optim.lr x lr_scale: CLIP at the official lr (2e-6), every branch tensor at lr_mult 10 (2e-5)."""
    from core.training.optim import checked_param_groups

    recipe = STAN().load_config(protocol)
    options = recipe["method_options"]
    clip = build_clip("test", vision_cfg={"layers": max(options.get("depth", 4), 2)})
    model = STAN().build(clip, num_frames=recipe["data"]["num_frames"], **options)
    lrs = {g["name"]: g["lr"] for g in checked_param_groups(model, recipe["optim"]["lr"], 0.02)}
    assert lrs["clip"] == lrs["clip_no_decay"] == 2e-6 and lrs["stan"] == pytest.approx(2e-5, rel=1e-12)
