"""Parity with the authors' code: tiny official checkpoints and the outputs their code computed (fixtures/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from chronoclip_ila import ILAModel, ILASSv2Model, read_official_checkpoint, to_official_state_dict

import core
from core.clip import tokenize

ATOL = 1e-4  # the tolerance on fp32 logits


def _ssv2_classes(n: int = 400) -> list[str]:
    return [f"class {i}" for i in range(n)]


@pytest.fixture(scope="module")
def k400(golden_k400: tuple[Path, dict]) -> tuple[ILAModel, dict]:
    path, io = golden_k400
    return core.load_official("ila", path), io


@pytest.fixture(scope="module")
def ssv2(golden_ssv2: tuple[Path, dict]) -> tuple[ILASSv2Model, dict]:
    path, io = golden_ssv2
    return core.load_official("ila", path), io


def test_reads_pickled_yacs_config_without_yacs(golden_k400: tuple[Path, dict]) -> None:
    state, extra = read_official_checkpoint(golden_k400[0])
    assert sorted(extra) == ["config", "epoch", "lr_scheduler", "max_accuracy", "optimizer"]
    config = extra["config"]
    assert config.qualname == "yacs.config.CfgNode"  # an inert placeholder, not the real class
    assert config["DATA"]["NUM_FRAMES"] == 8 and config["DATA"]["INPUT_SIZE"] == 56
    assert extra["epoch"] == 3 and extra["max_accuracy"] == 12.5
    assert len(extra["optimizer"]["param_groups"]) == 6  # the official six AdamW groups
    assert "yacs" not in sys.modules
    assert state["mit.positional_embedding"].shape == (1, 8, 128)


def test_k400_tokens_match_official_tokenizer(k400: tuple[ILAModel, dict]) -> None:
    _, io = k400
    assert torch.equal(tokenize(io["class_names"]), io["tokens"])


def test_k400_architecture_inferred_from_weights(k400: tuple[ILAModel, dict]) -> None:
    model, _ = k400
    assert isinstance(model, ILAModel) and not model.training
    assert model.num_frames == 8
    assert model.clip.visual.image_size == (56, 56) and len(model.blocks) == 2
    assert model.clip.visual.transformer.resblocks[0].attn.num_heads == 2
    assert model.mit.resblocks[0].attn.num_heads == 2
    assert len(model.prompts_generator.decoder) == 2 and model.prompts_generator.decoder[0].cross_attn.num_heads == 2


def test_k400_eval_logits_match_official(k400: tuple[ILAModel, dict]) -> None:
    model, io = k400
    video = io["video"].float()
    with torch.no_grad():
        features = model.forward_features(video)
        logits = model.classify(video, io["class_names"])
    torch.testing.assert_close(logits, io["eval_logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.stack(features["points"]), io["eval_points"], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(features["align_losses"]), io["eval_cos_losses"], atol=1e-5, rtol=0)
    # the logits really depend on the clip: the two clips of the fixture differ by more than the tolerance
    assert (io["eval_logits"][0] - io["eval_logits"][1]).abs().max() > 50 * ATOL


def test_k400_train_mode_matches_official(k400: tuple[ILAModel, dict]) -> None:
    """Training forward: 9-point mask jitter, BatchNorm on batch statistics (running stats restored after)."""
    model, io = k400
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    video = io["video"].float()
    try:
        model.train()
        with torch.no_grad():
            features = model.forward_features(video)
            logits = model.logits(features, io["class_names"])
    finally:
        model.load_state_dict(saved)
        model.eval()
    torch.testing.assert_close(logits, io["train_logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.stack(features["align_losses"]), io["train_cos_losses"], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(features["points"]), io["train_points"], atol=1e-5, rtol=0)
    assert (io["train_logits"] - io["eval_logits"]).abs().max() > 50 * ATOL


def test_ssv2_eval_and_train_match_official(ssv2: tuple[ILASSv2Model, dict]) -> None:
    model, io = ssv2
    video = io["video"].float()
    assert isinstance(model, ILASSv2Model) and model.num_classes == 400  # the branch's unpatched head size
    assert not hasattr(model.clip, "token_embedding")
    with torch.no_grad():
        logits = model.classify(video, _ssv2_classes())
        features = model.forward_features(video)
    torch.testing.assert_close(logits, io["eval_logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.stack(features["points"]), io["eval_points"], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.stack(features["align_losses"]), io["eval_cos_losses"], atol=1e-5, rtol=0)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        model.train()
        model.mit.classify_head[1].eval()  # as recorded: the head's Dropout(0.5) off
        with torch.no_grad():
            features = model.forward_features(video)
            train_logits = model.mit.classify_head_logits(features["video"])
    finally:
        model.load_state_dict(saved)
        model.eval()
    torch.testing.assert_close(train_logits, io["train_logits"], atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.stack(features["align_losses"]), io["train_cos_losses"], atol=1e-5, rtol=0)


def test_every_official_key_is_accounted_for(golden_k400: tuple[Path, dict], k400: tuple[ILAModel, dict]) -> None:
    state, _ = read_official_checkpoint(golden_k400[0])
    model, _ = k400
    ours = to_official_state_dict(model.state_dict())
    assert set(ours) == set(state)
    for key, value in state.items():
        assert torch.equal(ours[key].to(value.dtype), value), key


def test_unexpected_and_missing_keys_are_named(golden_k400: tuple[Path, dict], tmp_path: Path) -> None:
    state, extra = read_official_checkpoint(golden_k400[0])
    extra_key = dict(state)
    extra_key["visual.transformer.resblocks.0.message_attn.new_layer.weight"] = torch.zeros(2)
    torch.save({"model": extra_key}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"unexpected \(1\): visual\.transformer\.resblocks\.0\.message_attn\.new_layer"):
        core.load_official("ila", tmp_path / "extra.pth")
    missing = {k: v for k, v in state.items() if k != "prompts_generator.alpha"}
    torch.save({"model": missing}, tmp_path / "missing.pth")
    with pytest.raises(ValueError, match=r"missing \(1\): prompts_generator\.alpha"):
        core.load_official("ila", tmp_path / "missing.pth")
    unknown = dict(state)
    unknown["module_that_does_not_exist.weight"] = torch.zeros(2)
    torch.save({"model": unknown}, tmp_path / "unknown.pth")
    with pytest.raises(ValueError, match="module_that_does_not_exist"):
        core.load_official("ila", tmp_path / "unknown.pth")


def test_config_disagreeing_with_weights_is_reported(golden_k400: tuple[Path, dict], tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    state, _ = read_official_checkpoint(golden_k400[0])
    torch.save({"model": state, "config": {"DATA": {"NUM_FRAMES": 16, "INPUT_SIZE": 56}}}, tmp_path / "ckpt.pth")
    with caplog.at_level("WARNING", logger="chronoclip_ila.convert"):
        model = core.load_official("ila", tmp_path / "ckpt.pth")
    assert model.num_frames == 8  # the weights win
    assert "DATA.NUM_FRAMES = 16 but the weights say 8" in caplog.text and "INPUT_SIZE" not in caplog.text


def test_not_an_ila_checkpoint(tmp_path: Path) -> None:
    torch.save({"model": {"visual.conv1.weight": torch.zeros(64, 3, 8, 8)}}, tmp_path / "clip.pth")
    with pytest.raises(ValueError, match="not an ILA checkpoint"):
        core.load_official("ila", tmp_path / "clip.pth")
    with pytest.raises(FileNotFoundError):
        core.load_official("ila", tmp_path / "absent.pth")
