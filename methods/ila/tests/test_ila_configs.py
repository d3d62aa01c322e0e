"""Every shipped recipe resolves, validates and binds to ILA.build; the official values are where they belong."""

from __future__ import annotations

import pytest

import core
from core import config as cfg
from core.clip import build_clip
from core.training.optim import checked_param_groups

RECIPES = sorted(core.load_method("ila").configs())


def test_the_recipes_are_shipped() -> None:
    assert set(RECIPES) == {"synthetic", "k400_b32_8f", "k400_b32_16f", "k400_b16_8f", "k400_b16_16f", "k400_l14_8f",
                            "k400_l14_336_16f", "ssv2_b16_8f", "ssv2_b16_16f", "ssv2_b16_32f", "ssv2_l14_8f",
                            "ssv2_l14_336_16f"}


@pytest.mark.parametrize("protocol", RECIPES)
def test_recipe_resolves_and_validates(protocol: str) -> None:
    config = cfg.resolve_config("ila", protocol, [])
    cfg.validate(config)  # includes building ILAOptions from method_options
    text = core.load_method("ila").configs()[protocol].read_text()
    assert text.startswith("# ILA")
    assert f"core.train --method ila{'' if protocol == 'synthetic' else f' --config {protocol}'}" in text
    assert config["method"] == "ila"


@pytest.mark.parametrize("protocol", [p for p in RECIPES if p != "synthetic"])
def test_official_recipe_values(protocol: str) -> None:
    config = cfg.resolve_config("ila", protocol, [])
    data, optim, schedule, train = config["data"], config["optim"], config["schedule"], config["train"]
    assert (optim["lr"], optim["weight_decay"], optim["betas"], optim["grad_clip"]) == (8e-6, 0.003, [0.9, 0.98], None)
    assert (schedule["epochs"], schedule["warmup_epochs"], schedule["min_lr_ratio"], schedule["cosine_from"]) == \
        (50, 5, 0.01, "start")
    assert train["batch_size"] == 256 and 256 % train["micro_batch_size"] == 0
    assert data["mixup"] == {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "switch_prob": 0.5, "label_smoothing": 0.1,
                             "prob": 1.0, "partner": "permutation"}
    assert data["augment"] == {"crop": "multiscale", "num_fixed_crops": 5, "flip": 0.0, "color_jitter": 0.8,
                               "grayscale": 0.2, "random_erasing": 0.25}
    assert (data["train_sampling"], data["test_sampling"], data["test_views"]) == ("uniform", "segment", [4, 3])
    frames = int(protocol.rsplit("_", 1)[1].removesuffix("f"))
    assert data["num_frames"] == frames and data["input_size"] == (336 if "_336_" in protocol else 224)
    options = config["method_options"]
    if protocol.startswith("ssv2"):
        assert options["variant"] == "ssv2" and options["num_classes"] == 174
    else:
        assert options["variant"] == "k400"


def test_synthetic_recipe_builds_on_the_tiny_preset() -> None:
    config = cfg.resolve_config("ila", "synthetic", [])
    assert config["clip"] == {"model": "tiny", "pretrained": "synthetic"}
    assert config["data"]["augment"]["flip"] == 0.0  # a flip would swap left/right classes
    model = core.load_method("ila").build(build_clip("tiny"), num_frames=config["data"]["num_frames"],
                                          **config["method_options"])
    groups = {g["name"]: g["lr"] for g in checked_param_groups(model, config["optim"]["lr"],
                                                                config["optim"]["weight_decay"])}
    assert groups["message"] == pytest.approx(1e-3) and groups["mit"] == pytest.approx(1e-3)
    assert groups["temporal"] == pytest.approx(1e-3)


@pytest.mark.parametrize("protocol", [p for p in RECIPES if p != "synthetic"])
def test_effective_lrs_of_the_shipped_recipes_are_the_official_ones(protocol: str) -> None:
    """optim.lr x each group's lr_scale = the official build_optimizer's absolute LRs (spec §7)."""
    config = cfg.resolve_config("ila", protocol, [])
    model = core.load_method("ila").build(build_clip("test"), num_frames=config["data"]["num_frames"],
                                          **config["method_options"])
    groups = {g["name"]: (g["lr"], g["weight_decay"])
              for g in checked_param_groups(model, config["optim"]["lr"], config["optim"]["weight_decay"])}
    official = {"message": (5e-4, 0.01), "message_no_decay": (5e-4, 0.0), "temporal": (8e-5, 0.001),
                "temporal_no_decay": (8e-5, 0.0), "mit": (4e-4, 0.003), "mit_no_decay": (4e-4, 0.0)}
    assert groups == {name: (pytest.approx(lr, rel=1e-12), wd) for name, (lr, wd) in official.items()}
