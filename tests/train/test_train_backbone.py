"""Which CLIP a run builds: named presets, OpenAI-format files (architecture read from the weights), errors."""

from __future__ import annotations

import pytest
import torch

from core.clip import build_clip, named_clip_config
from core.training.backbone import build_backbone


@pytest.fixture
def openai_file(tmp_path):
    """The ``test`` preset's weights saved the way OpenAI's plain state dicts are (with their metadata keys)."""
    torch.manual_seed(3)
    state = build_clip("test").state_dict()
    state.update(input_resolution=torch.tensor(32), context_length=torch.tensor(77), vocab_size=torch.tensor(49408))
    path = tmp_path / "openai.pt"
    torch.save(state, path)
    return path, state


def test_openai_weights_fix_the_architecture(openai_file):
    path, state = openai_file
    for name in ("test", None):  # a matching name, or none: inferred from the weights
        clip, cfg = build_backbone(name, str(path))
        assert cfg["quick_gelu"] is True and cfg["vision_cfg"]["width"] == 64 and cfg["vision_cfg"]["layers"] == 2
        torch.testing.assert_close(clip.visual.conv1.weight, state["visual.conv1.weight"])
        rebuilt = build_clip(cfg)  # the saved config rebuilds the same architecture (model.pt relies on it)
        assert rebuilt.state_dict().keys() == clip.state_dict().keys()
    with pytest.raises(ValueError, match="--model tiny does not match the weights"):
        build_backbone("tiny", str(path))


def test_backbone_errors(tmp_path):
    with pytest.raises(ValueError, match="pretrains a small preset"):
        build_backbone("ViT-B-16", "synthetic")
    with pytest.raises(FileNotFoundError):
        build_backbone("test", str(tmp_path / "missing.pt"))
    with pytest.raises(ValueError, match="unknown CLIP architecture 'ViT-Q-99'"):
        named_clip_config("ViT-Q-99")
    clip, cfg = build_backbone("test", None)
    assert cfg == named_clip_config("test") and clip.visual.conv1.weight.shape == (64, 3, 8, 8)
