"""Parameter groups (frozen tensors never reach AdamW) and the DeepSpeed config of a run."""

from __future__ import annotations

import pytest
import torch

from core.clip import build_clip
from core.method import VideoModel, list_methods, load_method
from core.training.optim import build_optimizer, checked_param_groups, deepspeed_config, resolve_precision


@pytest.mark.parametrize("name", sorted(list_methods()))
def test_groups_hold_exactly_the_trainable_parameters(name):
    torch.manual_seed(0)
    method = load_method(name)
    # the tiny preset with the method's synthetic-recipe options: the geometry its embedded default uses
    options = method.load_config("synthetic").get("method_options") or {} if "synthetic" in method.configs() else {}
    model = method.build(build_clip("tiny"), num_frames=4, **options)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    frozen = {id(p) for p in model.parameters() if not p.requires_grad}
    groups = checked_param_groups(model, 1e-3, 0.05)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert len(grouped) == len(set(grouped)) == len(trainable)
    assert set(grouped) == trainable and not set(grouped) & frozen
    if not trainable:  # the frozen `clip` baseline: the trainer only evaluates it
        assert groups == []
        return
    optimizer = build_optimizer(groups, lr=1e-3, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.05)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_optimizer == trainable
    for group, built in zip(groups, optimizer.param_groups):
        assert (built["lr"], built["weight_decay"]) == (group["lr"], group["weight_decay"])


class _Model(VideoModel):
    """Two modules; ``leak`` puts the frozen one in a group, ``drop`` leaves the trainable one out."""

    method = "probe"

    def __init__(self, mode: str) -> None:
        super().__init__(num_frames=2)
        self.new = torch.nn.Linear(2, 2)
        self.backbone = torch.nn.Linear(2, 2).requires_grad_(False)
        self.mode = mode

    def param_groups(self, weight_decay):
        if self.mode == "leak":
            return [{"params": [*self.new.parameters(), self.backbone.weight], "lr_scale": 1.0, "weight_decay": 0.0}]
        if self.mode == "drop":
            return [{"params": [self.new.weight], "lr_scale": 1.0, "weight_decay": 0.0}]
        if self.mode == "absolute":  # the old contract: an absolute lr instead of a scale
            return [{"params": list(self.new.parameters()), "lr": 1e-3, "weight_decay": 0.0}]
        return [{"params": list(self.new.parameters()), "lr_scale": 10.0, "weight_decay": weight_decay, "name": "new"},
                {"params": [], "lr_scale": 1.0, "weight_decay": 0.0, "name": "empty"}]


def test_group_errors_name_the_parameter():
    with pytest.raises(ValueError, match="frozen parameter backbone.weight"):
        checked_param_groups(_Model("leak"), 1e-3, 0.1)
    with pytest.raises(ValueError, match=r"leaves trainable parameters out of every group: \['new.bias'\]"):
        checked_param_groups(_Model("drop"), 1e-3, 0.1)
    with pytest.raises(ValueError, match=r"group 0 lacks \['lr_scale'\]"):
        checked_param_groups(_Model("absolute"), 1e-3, 0.1)
    groups = checked_param_groups(_Model("ok"), 1e-3, 0.1)
    # lr = optim.lr x the group's lr_scale; the empty group is dropped
    assert [(g["name"], g["lr"], g["weight_decay"]) for g in groups] == [("new", 1e-2, 0.1)]


def test_deepspeed_config():
    ds = deepspeed_config(batch_size=256, micro_batch_size=8, world_size=4, precision="bf16", zero_stage=1,
                          grad_clip=None)
    assert ds["gradient_accumulation_steps"] == 8
    assert ds["train_batch_size"] == 256 and ds["train_micro_batch_size_per_gpu"] == 8
    assert ds["bf16"] == {"enabled": True} and ds["data_types"] == {"grad_accum_dtype": "fp32"}
    assert ds["gradient_clipping"] == 0.0 and ds["zero_optimization"] == {"stage": 1}
    fp32 = deepspeed_config(batch_size=16, micro_batch_size=8, world_size=2, precision="fp32", zero_stage=0,
                            grad_clip=1.0)
    assert fp32["gradient_accumulation_steps"] == 1 and "data_types" not in fp32 and not fp32["fp16"]["enabled"]
    with pytest.raises(ValueError, match="not a multiple of train.micro_batch_size x ranks = 8 x 3"):
        deepspeed_config(batch_size=16, micro_batch_size=8, world_size=3, precision="fp32", zero_stage=0,
                         grad_clip=1.0)
    with pytest.raises(ValueError, match="zero_stage >= 1"):
        deepspeed_config(batch_size=16, micro_batch_size=8, world_size=1, precision="bf16", zero_stage=0,
                         grad_clip=1.0)


def test_precision(monkeypatch):
    import core.precision

    monkeypatch.setattr(core.precision, "cpu_has_fast_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(core.precision, "cpu_has_fast_bf16", lambda: True)   # AMX / AVX512-BF16
    assert resolve_precision("auto", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu", zero_stage=0) == "fp32"  # bf16 training needs ZeRO >= 1
    assert resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="needs a GPU"):
        resolve_precision("fp16", "cpu")
