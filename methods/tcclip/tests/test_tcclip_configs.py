"""The shipped recipes: one per official protocol (+ LLM names and the synthetic default), valid for the trainer."""

from __future__ import annotations

import pytest

import core
from core.config import resolve_config, validate

# protocol -> (epochs, warm-up, lr, global batch), official configs/*.yaml
OFFICIAL = {
    "zero_shot": (10, 5, 8e-6, 256),
    "zero_shot_llm": (10, 5, 8e-6, 256),
    "few_shot": (50, 5, 2e-6, 64),
    "base2novel": (12, 2, 3.33e-6, 64),
    "fully_supervised": (30, 5, 2.2e-5, 512),
}


def test_every_protocol_is_shipped():
    assert set(core.load_method("tcclip").configs()) == {*OFFICIAL, "synthetic"}


@pytest.mark.parametrize("protocol", sorted(OFFICIAL))
def test_protocol_recipes_match_the_official_values(protocol):
    config = resolve_config("tcclip", protocol, [])
    validate(config)   # method_options build TCCLIPOptions
    epochs, warmup, lr, batch = OFFICIAL[protocol]
    assert (config["schedule"]["epochs"], config["schedule"]["warmup_epochs"]) == (epochs, warmup)
    assert config["optim"]["lr"] == lr and config["train"]["batch_size"] == batch
    assert config["optim"]["weight_decay"] == 0.001 and config["optim"]["betas"] == [0.9, 0.98]
    assert config["optim"]["grad_clip"] is None and config["schedule"]["cosine_from"] == "start"
    assert config["schedule"]["min_lr_ratio"] == 0.01 and config["schedule"]["warmup_start_factor"] == 0.0
    assert config["data"]["num_frames"] == 16 and config["data"]["input_size"] == 224
    assert config["data"]["mixup"]["label_smoothing"] == 0.1 and config["data"]["mixup"]["partner"] == "permutation"
    options = config["method_options"]
    assert (options["context_token_k"], options["tome_r"], options["seed_token_a"]) == (96, 100, 0.3)
    assert options["context_length"] == (77 if protocol.endswith("_llm") else 30)


def test_synthetic_recipe_builds_a_merging_model():
    config = resolve_config("tcclip", "synthetic", [])
    validate(config)
    assert config["clip"]["model"] == "tiny" and config["data"]["augment"]["flip"] == 0.0
    from core.clip import build_clip

    model = core.load_method("tcclip").build(build_clip("tiny"), num_frames=config["data"]["num_frames"],
                                             **config["method_options"])
    # 8 frames x 4 seeds = 32 seeds, merged to 16 context tokens per block
    assert model.settings.num_seeds * 8 == 32 and model.settings.num_context == 16


@pytest.mark.parametrize("protocol", sorted(OFFICIAL))
def test_effective_lrs_are_the_official_ones(protocol):
    """optim.lr x lr_scale: the official base LR, and 10x it for the prompt learner and VP (lr_10x)."""
    from core.clip import build_clip
    from core.training.optim import checked_param_groups

    config = resolve_config("tcclip", protocol, [])
    model = core.load_method("tcclip").build(build_clip("test"), num_frames=4,
                                             **{**config["method_options"], "prompt_generation_layer_level": None})
    lr = OFFICIAL[protocol][2]
    lrs = {g["name"]: g["lr"] for g in checked_param_groups(model, config["optim"]["lr"], 0.001)}
    assert lrs == {"base": lr, "prompt_learner": pytest.approx(10 * lr, rel=1e-12),
                   "prompt_generation": pytest.approx(10 * lr, rel=1e-12)}
