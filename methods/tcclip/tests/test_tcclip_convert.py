"""The converter of the authors' checkpoint format: key map, q/k/v packing, config reading, clear errors."""

from __future__ import annotations

import pytest
import torch
from chronoclip_tcclip.convert import (
    DROPPED_KEYS,
    OUTSIDE_OFFICIAL_MODEL,
    config_to_dict,
    convert_state_dict,
    read_official,
    to_official_state_dict,
)

import core
from core.serialization import safe_load


@pytest.fixture(scope="module")
def official(official_checkpoint) -> dict:
    state, _ = read_official(official_checkpoint)
    return state


def test_every_official_key_is_mapped_or_dropped_on_purpose(official):
    ours, dropped = convert_state_dict(official)
    assert sorted(dropped) == ["prompt_learner.token_prefix", "prompt_learner.token_suffix"]
    assert set(dropped) <= set(DROPPED_KEYS)
    # 3 split q/k/v Linears (weight + bias) per vision block become one packed in_proj pair
    assert len(ours) == len(official) - len(dropped) - 3 * 4
    assert "local_global_bias_table.2" in ours and "prompt_generation_layer.0.ln_1_kv.bias" in ours
    assert not any(k.startswith(("image_encoder", "text_encoder")) for k in ours)


def test_qkv_packed_in_q_k_v_order(official):
    ours, _ = convert_state_dict(official)
    packed = ours["clip.visual.transformer.resblocks.1.attn.in_proj_weight"]
    prefix = "image_encoder.transformer.resblocks.1.attn."
    width = packed.shape[1]
    for i, part in enumerate("qkv"):
        assert torch.equal(packed[i * width:(i + 1) * width], official[prefix + f"{part}_proj.weight"])
        bias = ours["clip.visual.transformer.resblocks.1.attn.in_proj_bias"][i * width:(i + 1) * width]
        assert torch.equal(bias, official[prefix + f"{part}_proj.bias"])


def test_to_official_is_the_inverse_of_convert(official):
    ours, dropped = convert_state_dict(official)
    back = to_official_state_dict(ours)
    assert back.keys() == official.keys() - set(dropped)
    assert all(torch.equal(back[k], official[k]) for k in back)
    # and the other way round, on a model's full state dict (its token table has no official place)
    model_state = {**ours, "clip.token_embedding.weight": torch.zeros(3, 2)}
    again, _ = convert_state_dict(to_official_state_dict(model_state))
    assert again.keys() == model_state.keys() - set(OUTSIDE_OFFICIAL_MODEL)
    assert all(torch.equal(again[k], model_state[k]) for k in again)


def test_to_official_names_unknown_weights(official):
    ours, _ = convert_state_dict(official)
    with pytest.raises(ValueError, match="no place in the official TC-CLIP model.*'extra.weight'"):
        to_official_state_dict({**ours, "extra.weight": torch.zeros(1)})


def test_pickled_dictconfig_is_read_as_plain_values(official_checkpoint):
    raw = safe_load(official_checkpoint)
    assert set(raw) == {"model", "optimizer", "lr_scheduler", "max_accuracy", "epoch", "config"}
    assert all(k.startswith("module.") for k in raw["model"])
    config = config_to_dict(raw["config"])
    assert config["trainer_name"] == "TCCLIP" and config["num_frames"] == 4 and config["context_token_k"] == 96
    assert config["betas"] == [0.9, 0.98] and config["aug"]["mixup"] == 0.8
    assert config["selected_option"] == "${hydra:runtime.choices}"   # interpolations stay unresolved strings


def test_bare_state_dict_loads_with_the_defaults(tmp_path, official, clip_file, golden):
    # no config: frame count from the caller, K = 96 and the last text block for VP by default
    path = tmp_path / "bare.pth"
    torch.save({"module." + k: v for k, v in official.items()}, path)
    model = core.load_official("tcclip", path, clip=clip_file, num_frames=4).double()
    with torch.no_grad():
        logits = model.classify(golden["video4"], model.class_texts(golden["eval_names"]))
    torch.testing.assert_close(logits, golden["logits_t4"], rtol=0, atol=1e-8)
    assert core.load_official("tcclip", path, clip=clip_file).num_frames == 16   # the released models' count


def test_unknown_and_missing_keys_are_listed(tmp_path, official, clip_file):
    extra = dict(official, **{"image_encoder.temporal_embedding": torch.zeros(3)})
    torch.save({"model": extra}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="image_encoder.temporal_embedding"):
        core.load_official("tcclip", tmp_path / "extra.pth", clip=clip_file, num_frames=4)
    partial = {k: v for k, v in official.items() if k != "text_encoder.ln_final.bias"}
    torch.save({"model": partial}, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="ln_final.bias"):
        core.load_official("tcclip", tmp_path / "partial.pth", clip=clip_file, num_frames=4)
    no_v = {k: v for k, v in official.items() if k != "image_encoder.transformer.resblocks.0.attn.v_proj.bias"}
    with pytest.raises(ValueError, match="q, k and v"):
        convert_state_dict(no_v)


def test_wrong_clip_file_and_missing_file(tmp_path, official_checkpoint):
    wrong = tmp_path / "clip_wide.pt"
    torch.save({"token_embedding.weight": torch.zeros(49408, 32)}, wrong)
    with pytest.raises(ValueError, match="width 32"):
        core.load_official("tcclip", official_checkpoint, clip=wrong)
    with pytest.raises(FileNotFoundError):
        core.load_official("tcclip", tmp_path / "nope.pth", clip=wrong)
    with pytest.raises(ValueError, match="clip=<OpenAI CLIP"):
        core.load_official("tcclip", official_checkpoint)
    with pytest.raises(ValueError, match="not understood"):
        core.load_official("tcclip", official_checkpoint, clip=wrong, frames=4)
