"""Contract tests every method package has (rename NAME / Name; keep them, add the golden test)."""

from __future__ import annotations

from importlib import resources

import pytest
import torch
import yaml
from chronoclip_NAME import Name, NameOptions

from core.clip import build_clip
from core.training.optim import checked_param_groups


def _model(**options):
    torch.manual_seed(0)
    return Name().build(build_clip("test"), num_frames=4, **options)


def test_options_are_checked():
    assert Name().options({}) == NameOptions()
    with pytest.raises(ValueError, match=r"unknown option 'new_lr' \(did you mean 'new_lr_scale'"):
        _model(new_lr=1.0)
    with pytest.raises(ValueError, match="option 'residual_init' must be a number"):
        _model(residual_init="zero")


def test_only_the_new_parameters_train_and_get_gradients():
    model = _model(residual_init=0.01).train()
    batch = {"video": torch.randn(2, 4, 3, 32, 32), "label": torch.tensor([0, 1]), "class_texts": ["a", "b"]}
    model.training_forward(batch)["loss"].backward()
    for name, param in model.named_parameters():
        assert (param.grad is not None) == param.requires_grad, name
    groups = checked_param_groups(model, 1e-4, 0.0)  # every trainable tensor once, lr = optim.lr x lr_scale
    assert [g["lr"] for g in groups] == [pytest.approx(1e-3)]


def test_example_recipe_builds():
    recipe = yaml.safe_load((resources.files("chronoclip_NAME.configs") / "synthetic.yaml").read_text())
    model = Name().build(build_clip("test"), num_frames=recipe["data"]["num_frames"], **recipe["method_options"])
    assert model.method == "NAME"


@pytest.mark.skip(reason="template: compare with numbers produced by the authors' code (see the other methods)")
def test_golden_against_the_authors_code():
    raise AssertionError
