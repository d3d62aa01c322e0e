"""The authors' code on a tiny random STAN vs ours loaded through ``core.load_official`` (fixtures/README.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from chronoclip_stan import STANModel
from chronoclip_stan.convert import DROPPED_KEYS

import core
from core.serialization import Opaque, safe_load

TOL = 1e-4  # on the x100 logits, fp32 (the bound); observed ~2e-5


@pytest.fixture(scope="module")
def selfattn(official_checkpoints: dict[str, Path]) -> STANModel:
    return core.load_official("stan", official_checkpoints["selfattn"])


def test_recognition_logits_match_official(selfattn: STANModel, golden: dict) -> None:
    with torch.no_grad():
        logits = selfattn.classify(golden["video"], golden["class_names"])
    torch.testing.assert_close(logits, golden["logits"], atol=TOL, rtol=0)
    # the fixture is not degenerate: the classes are told apart by margins far above the tolerance
    assert golden["logits"].max(dim=1).values.min() - golden["logits"].min() > 10


def test_video_and_text_features_match_official(selfattn: STANModel, golden: dict) -> None:
    with torch.no_grad():
        torch.testing.assert_close(selfattn.encode_video(golden["video"]), golden["video_features"], atol=1e-5, rtol=0)
        torch.testing.assert_close(selfattn.encode_text(golden["class_names"]), golden["text_features"],
                                   atol=1e-5, rtol=0)


def test_class_tokens_are_official_77_then_cut_to_32(selfattn: STANModel, golden: dict) -> None:
    tokens = selfattn.tokenize(golden["class_names"])
    assert torch.equal(tokens, golden["tokens"])
    # the long name loses its EOT in the cut, so pooling falls on its largest BPE id (argmax), as in HF CLIP
    assert tokens.shape[1] == 32 and 49407 not in tokens[4].tolist() and 49407 in tokens[0].tolist()


def test_retrieval_loss_matches_official_norm_softmax_loss(official_checkpoints: dict[str, Path], golden: dict) -> None:
    model = core.load_official("stan", official_checkpoints["selfattn"], task="retrieval")
    with torch.no_grad():
        out = model.training_forward({"video": golden["video"], "captions": golden["captions"]})
        captions = model.encode_text(golden["captions"])
    torch.testing.assert_close(captions, golden["caption_features"], atol=1e-5, rtol=0)
    torch.testing.assert_close(out["loss"], golden["retrieval_loss"], atol=1e-4, rtol=0)


def test_conv_variant_matches_official_2023_module(official_checkpoints: dict[str, Path], golden: dict) -> None:
    model = core.load_official("stan", official_checkpoints["conv"])
    assert model.branch.time_module == "conv"
    with torch.no_grad():
        logits = model.classify(golden["video"], golden["class_names"])
        torch.testing.assert_close(model.encode_video(golden["video"]), golden["conv_video_features"],
                                   atol=1e-5, rtol=0)
    torch.testing.assert_close(logits, golden["conv_logits"], atol=TOL, rtol=0)


def test_geometry_is_read_from_weight_shapes(selfattn: STANModel) -> None:
    visual = selfattn.clip.visual
    assert visual.conv1.kernel_size == (8, 8) and tuple(visual.image_size) == (32, 32)
    assert len(visual.transformer.resblocks) == 4 and selfattn.branch.depth == 3
    assert selfattn.branch.first_block == 1 and selfattn.branch.time_module == "selfattn"
    assert selfattn.clip.text_projection.shape == (64, 32) and not selfattn.training


def test_mmengine_objects_stay_inert(official_checkpoints: dict[str, Path]) -> None:
    """The file pickles mmengine HistoryBuffers and numpy scalars; they load as placeholders, nothing imported."""
    checkpoint = safe_load(official_checkpoints["selfattn"])
    assert set(checkpoint) == {"meta", "state_dict", "message_hub"}
    buffer = checkpoint["message_hub"]["log_scalars"]["train/loss"]
    assert isinstance(buffer, Opaque) and buffer.qualname == "mmengine.logging.history_buffer.HistoryBuffer"
    assert isinstance(checkpoint["message_hub"]["runtime_info"]["best_score"], Opaque)
    assert "mmengine" not in sys.modules


def _rewrite(path: Path, out: Path, edit) -> Path:
    checkpoint = safe_load(path)
    state = edit(dict(checkpoint["state_dict"]))
    torch.save({"meta": {"epoch": 1}, "state_dict": state}, out)
    return out


def test_legacy_timesfpn_checkpoint_gives_same_logits(official_checkpoints: dict[str, Path], golden: dict,
                                                      tmp_path: Path) -> None:
    """2023 names (timesFPN_*), their two unused tensors, and an old transformers position_ids buffer."""
    def to_legacy(state: dict) -> dict:
        state = {k.replace("backbone.STAN_", "backbone.timesFPN_"): v for k, v in state.items()}
        width = state["backbone.class_embedding"].shape[0]
        state["backbone.timesFPN_pos_embed.weight"] = torch.randn(17, width)
        state["backbone.timesFPN_cls_token"] = torch.zeros(1, 1, width)
        state["text_backbone.text_model.embeddings.position_ids"] = torch.arange(77)[None]
        return state

    legacy = _rewrite(official_checkpoints["selfattn"], tmp_path / "legacy.pth", to_legacy)
    assert set(DROPPED_KEYS) <= set(safe_load(legacy)["state_dict"])
    model = core.load_official("stan", legacy)
    with torch.no_grad():
        logits = model.classify(golden["video"], golden["class_names"])
    torch.testing.assert_close(logits, golden["logits"], atol=TOL, rtol=0)


def test_unknown_tensor_is_an_error_naming_it(official_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    def add_head(state: dict) -> dict:
        state["backbone.Mug_head.proj.weight"] = torch.zeros(2, 2)
        return state

    bad = _rewrite(official_checkpoints["selfattn"], tmp_path / "extra.pth", add_head)
    with pytest.raises(ValueError, match="backbone.Mug_head.proj.weight"):
        core.load_official("stan", bad)


def test_missing_tensor_is_an_error_naming_it(official_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    def drop(state: dict) -> dict:
        del state["backbone.STAN_T_layers.1.temporal_fc.bias"]
        return state

    bad = _rewrite(official_checkpoints["selfattn"], tmp_path / "missing.pth", drop)
    with pytest.raises(ValueError, match=r"STAN_T_layers\.1\.temporal_fc\.bias"):
        core.load_official("stan", bad)


def test_plain_clip_file_is_refused(official_checkpoints: dict[str, Path], tmp_path: Path) -> None:
    def strip_branch(state: dict) -> dict:
        return {k: v for k, v in state.items() if "STAN_" not in k}

    bad = _rewrite(official_checkpoints["selfattn"], tmp_path / "clip.pth", strip_branch)
    with pytest.raises(ValueError, match="no STAN branch"):
        core.load_official("stan", bad)
