"""Config layers (defaults < recipe < command line), typed overrides, unknown keys, validation, shipped recipes."""

from __future__ import annotations

import pytest
import yaml

from core import config as cfg
from core.method import list_methods, load_method


def _resolved(tokens, method="vifi", config=None):
    return cfg.resolve_config(method, config, cfg.parse_override_tokens(tokens))


def test_layers_and_typed_overrides():
    config = _resolved(["optim.lr=1e-4", "--train.micro-batch-size", "4", "--log.every_steps=5",
                        "data.test_views=[2,3]", "data.augment.flip=0.5", "data.mixup.cutmix_alpha=0"])
    assert config["_source"] == "vifi:synthetic"  # no data keys: the synthetic recipe
    assert config["optim"]["lr"] == 1e-4 and isinstance(config["optim"]["lr"], float)  # YAML alone gives "1e-4"
    assert config["train"]["micro_batch_size"] == 4
    assert config["log"]["every_steps"] == 5
    assert config["data"]["test_views"] == [2, 3]
    assert config["data"]["augment"]["flip"] == 0.5
    assert config["data"]["augment"]["crop"] == "center"  # the recipe's other augment keys stay
    # a null mixup gets the defaults, then the override
    assert config["data"]["mixup"] == {**cfg.MIXUP_DEFAULTS, "cutmix_alpha": 0}
    # defaults fill what the recipe omits
    assert config["train"]["max_nonfinite"] == cfg.SCHEMA["train.max_nonfinite"].default
    assert config["method"] == "vifi"


def test_real_data_keys_skip_the_synthetic_recipe(tmp_path):
    config = _resolved([f"data.train_shards={tmp_path}", "optim.lr=2e-6"])
    assert config["_source"] == "defaults"
    assert config["clip"]["model"] == "ViT-B-16"
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"method": "vifi", "optim": {"lr": 3e-6}, "data": {"num_frames": 16}}))
    config = _resolved([], config=str(recipe))
    assert (config["optim"]["lr"], config["data"]["num_frames"], config["optim"]["weight_decay"]) == (3e-6, 16, 0.001)


@pytest.mark.parametrize("tokens, message", [
    (["optim.lrr=1"], "unknown config key 'optim.lrr' on the command line. Did you mean 'optim.lr'? Valid keys: "
                      "optim.betas, optim.eps, optim.grad_clip, optim.lr, optim.weight_decay"),
    (["--data.augment.flipp", "1"], "unknown config key 'data.augment.flipp'"),
    (["optim=3"], "optim is a section; override one of its keys"),
    (["loose"], "cannot parse argument 'loose'"),
    (["--optim.lr"], "--optim.lr needs a value"),
    (["optim.lr=fast"], "optim.lr takes a number, got 'fast'"),
])
def test_override_errors_name_the_key(tokens, message):
    with pytest.raises(cfg.ConfigError) as err:
        _resolved(tokens)
    assert message in str(err.value)


def test_recipe_with_unknown_key_is_rejected(tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text("method: vifi\ntrain: {batch_size: 8, epochs: 3}\n")
    with pytest.raises(cfg.ConfigError, match=r"unknown config key 'train.epochs' in recipe .*bad.yaml.*"
                                              r"Valid keys: .*train.batch_size"):
        _resolved([], config=str(recipe))


@pytest.mark.parametrize("tokens, message", [
    (["train.precision=bf16", "train.zero_stage=0"], "set train.zero_stage=1"),
    (["train.batch_size=10", "train.micro_batch_size=4"], "must be a multiple of train.micro_batch_size"),
    (["schedule.warmup_epochs=20"], "exceeds schedule.epochs"),
    (["data.train_sampling=zigzag"], "data.train_sampling"),
    (["data.test_views=[2,2]"], "data.test_views must be"),
    (["data.augment.flip=1.5"], "data.augment.flip is a probability"),
    (["method_options.colour=3"], "method_options of method 'vifi': unknown option 'colour'; valid: template"),
    (["method_options.templat=x"], "unknown option 'templat' (did you mean 'template'?)"),
    (["method_options.template=3"], "option 'template' must be a string, got 3 (int)"),
    (["train.seed=-1"], "train.seed must be >= 0"),
    (["schedule.cosine_from=middle"], "schedule.cosine_from"),
])
def test_validation_errors(tokens, message):
    with pytest.raises(cfg.ConfigError) as err:
        cfg.validate(_resolved(tokens))
    assert message in str(err.value)


def test_protocol_needs_a_method_and_must_exist():
    with pytest.raises(cfg.ConfigError, match="pass --method too"):
        cfg.resolve_config(None, "zero_shot", [])
    with pytest.raises(cfg.ConfigError, match=r"ships no recipe 'nope'; shipped: .*synthetic"):
        cfg.resolve_config("vifi", "nope", [])


def test_identity_ignores_runtime_keys():
    a = _resolved([])
    b = _resolved(["train.max_steps=7", "log.every_steps=3", "output_dir=/x"])
    c = _resolved(["optim.lr=1e-3"])
    assert cfg.differences(a, b) == []
    assert cfg.differences(a, c) == ["optim.lr: 0.0001 -> 0.001"]


def _shipped_recipes():
    out = []
    for name in list_methods():
        for protocol in sorted(load_method(name).configs()):
            out.append(pytest.param(name, protocol, id=f"{name}-{protocol}"))
    return out


@pytest.mark.parametrize("method, protocol", _shipped_recipes())
def test_every_shipped_recipe_validates(method, protocol):
    """Every recipe of every installed method: known keys only, valid values, method_options bind to build()."""
    config = cfg.resolve_config(method, protocol, [])
    cfg.validate(config)
    assert config["method"] == method
    text = load_method(method).configs()[protocol].read_text()
    assert text.lstrip().startswith("#"), f"{method}:{protocol} must open with a comment (what it reproduces, command)"


def test_every_method_ships_a_synthetic_recipe():
    missing = [name for name in list_methods() if "synthetic" not in load_method(name).configs()]
    assert not missing, f"methods without synthetic.yaml (the embedded default): {missing}"
