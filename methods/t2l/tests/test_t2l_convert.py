"""Reading the authors' checkpoint format: every key accounted for, variants, clear errors."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch
from chronoclip_t2l.convert import read_official_state_dict, to_official_state_dict

import core
from core.clip import build_clip

FIXTURE = Path(__file__).parent / "fixtures" / "t2l_tiny_official.pt"


def _official_state() -> dict[str, torch.Tensor]:
    return read_official_state_dict(FIXTURE)


def _save(path: Path, state: dict, wrap: bool = True) -> Path:
    torch.save({"epoch": 3, "model_state_dict": collections.OrderedDict(state), "optimizer_state_dict": {}}
               if wrap else state, path)
    return path


def test_fixture_has_the_official_layout():
    state = _official_state()
    assert len(state) == 80
    assert {v.dtype for v in state.values()} == {torch.float16, torch.float32}      # as a GPU run writes it
    assert state["visual.transformer.T_prompt_embeddings"].shape == (2, 4, 128)


def test_round_trip_through_the_official_format(tmp_path):
    torch.manual_seed(0)
    model = core.load_method("t2l").build(build_clip("test"), num_frames=3).eval()
    with torch.no_grad():
        model.temporal_embedding.normal_()
        for adapter in model.text_adapters:
            adapter.D_fc2.weight.normal_()
    path = _save(tmp_path / "last_model.pt", to_official_state_dict(model))
    loaded = core.load_official("t2l", path)
    assert loaded.num_frames == 3
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.classify(video, ["a", "b c"]), model.classify(video, ["a", "b c"]))


def test_bare_state_dict_with_module_prefix(tmp_path):
    state = {f"module.{k}": v for k, v in _official_state().items()}
    path = _save(tmp_path / "bare.pt", state, wrap=False)
    loaded = core.load_official("t2l", path)
    torch.testing.assert_close(loaded.temporal_tokens, state["module.visual.transformer.T_prompt_embeddings"].float())


def test_checkpoint_without_temporal_tokens(tmp_path):
    # configs with prompt.use: False (HMDB few-shot) save no T_prompt_embeddings; T comes from temporal_embedding.
    state = {k: v for k, v in _official_state().items() if "T_prompt" not in k}
    loaded = core.load_official("t2l", _save(tmp_path / "no_tokens.pt", state))
    assert loaded.temporal_tokens is None and loaded.num_frames == 4
    assert loaded.trainable_parameter_count() == sum(v.numel() for k, v in state.items() if "Adapter" in k)


def test_unexpected_and_missing_keys_are_listed(tmp_path):
    state = _official_state()
    state["visual.transformer.resblocks.0.T_Adapter.D_fc1.weight"] = torch.zeros(32, 128)
    del state["transformer.resblocks.1.Adapter.D_fc2.bias"]
    with pytest.raises(ValueError) as err:
        core.load_official("t2l", _save(tmp_path / "bad.pt", state))
    message = str(err.value)
    assert "unexpected (1): visual.transformer.resblocks.0.T_Adapter.D_fc1.weight" in message
    assert "missing (1): transformer.resblocks.1.Adapter.D_fc2.bias" in message


def test_inconsistent_frame_counts_are_rejected(tmp_path):
    state = _official_state()
    state["visual.temporal_embedding"] = torch.zeros(1, 8, 128)
    with pytest.raises(ValueError, match="4 frames but temporal_embedding for 8"):
        core.load_official("t2l", _save(tmp_path / "frames.pt", state))


def test_foreign_top_level_entries_are_rejected(tmp_path):
    path = tmp_path / "extra.pt"
    torch.save({"epoch": 0, "model_state_dict": _official_state(), "config": {"lr": 1}}, path)
    with pytest.raises(ValueError, match=r"unexpected top-level entries \['config'\]"):
        core.load_official("t2l", path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        core.load_official("t2l", "no/such/last_model.pt")
