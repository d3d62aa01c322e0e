"""Every shipped recipe is valid for the trainer and builds a model with its method_options."""

from __future__ import annotations

import pytest

import core
from core.clip import build_clip
from core.config import resolve_config, validate
from core.training.data import read_descriptions

PROTOCOLS = ["k400_zero_shot", "base2novel_k400", "base2novel_hmdb", "base2novel_ucf", "base2novel_ssv2",
             "few_shot_hmdb", "few_shot_ucf", "synthetic"]


def test_shipped_recipes():
    assert sorted(core.load_method("t2l").configs()) == sorted(PROTOCOLS)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_recipe_validates_and_builds(protocol):
    config = resolve_config("t2l", protocol, [])
    validate(config)
    assert config["method"] == "t2l" and config["data"]["mixup"] is None
    model = core.load_method("t2l").build(build_clip("test"), num_frames=config["data"]["num_frames"],
                                          **config["method_options"])
    assert model.num_frames == config["data"]["num_frames"]
    # The in-batch loss sees one optimizer batch only without gradient accumulation on a single process.
    if protocol.startswith("few_shot"):
        assert config["train"]["micro_batch_size"] == config["train"]["batch_size"]
    # Real-data recipes classify with the catalog's LLM descriptions, which must load.
    if protocol != "synthetic":
        descriptions = read_descriptions(config["data"]["descriptions"])
        assert len(descriptions) >= 51 and all("\n" not in text for text in descriptions.values())


def test_official_values_of_the_k400_recipe():
    config = resolve_config("t2l", "k400_zero_shot", [])
    assert config["optim"]["lr"] == 1e-4 and config["optim"]["weight_decay"] == 0.2
    assert config["schedule"]["epochs"] == 150 and config["schedule"]["warmup_epochs"] == 5
    assert config["schedule"]["cosine_from"] == "warmup_end" and config["schedule"]["min_lr_ratio"] == 0.0
    assert config["train"]["batch_size"] == 80 and config["data"]["train_sampling"] == "segment_t2l"
    assert config["method_options"]["drop_path_rate"] == 0.1 and config["clip"]["model"] == "ViT-B-16-quickgelu"
