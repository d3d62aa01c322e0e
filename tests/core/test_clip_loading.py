"""The CLIP core loads OpenAI-format files (TorchScript and plain) and reproduces open_clip's embeddings."""

from __future__ import annotations

import pytest
import torch

from core.clip import build_clip, infer_clip_config, is_openai_state_dict, read_clip_state_dict, tokenize
from core.clip import layers as L


class _OpenAIArchive(torch.nn.Module):
    """CLIP's modules at the top level plus the metadata tensors OpenAI's TorchScript archives carry."""

    def __init__(self, clip: torch.nn.Module) -> None:
        super().__init__()
        for name, child in clip.named_children():
            setattr(self, name, child)
        for name, param in clip.named_parameters(recurse=False):
            self.register_parameter(name, param)
        self.register_buffer("input_resolution", torch.tensor(32))
        self.register_buffer("context_length", torch.tensor(77))
        self.register_buffer("vocab_size", torch.tensor(49408))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.visual(images)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    model = build_clip("test").eval()
    images = torch.randn(3, 3, 32, 32)
    tokens = tokenize(["a red circle moving left", "a blue square", "growing"])
    with torch.no_grad():
        return model, images, tokens, model.encode_image(images), model.encode_text(tokens)


def test_torchscript_archive_reproduces_open_clip_embeddings(reference, tmp_path):
    model, images, tokens, image_ref, text_ref = reference
    traced = torch.jit.trace(_OpenAIArchive(model), images, check_trace=False)
    path = tmp_path / "ViT-test.pt"
    torch.jit.save(traced, str(path))

    state = read_clip_state_dict(path)
    assert is_openai_state_dict(state)
    loaded = build_clip(None, pretrained=path).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode_image(images), image_ref, rtol=0, atol=1e-6)
        torch.testing.assert_close(loaded.encode_text(tokens), text_ref, rtol=0, atol=1e-6)
        # The pieces methods reuse give the same embeddings as open_clip's own forward.
        torch.testing.assert_close(L.encode_frames(loaded, images[None]).squeeze(0), image_ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(L.encode_text(loaded, tokens), text_ref, rtol=0, atol=1e-5)


def test_plain_state_dict_with_architecture_inferred(reference, tmp_path):
    model, images, _, image_ref, _ = reference
    path = tmp_path / "clip.pt"
    torch.save({"state_dict": {f"module.{k}": v.half() for k, v in model.state_dict().items()}}, path)
    cfg = infer_clip_config(read_clip_state_dict(path))
    assert cfg["vision_cfg"] == {"image_size": 32, "patch_size": 8, "width": 64, "layers": 2, "head_width": 64}
    assert cfg["text_cfg"]["heads"] == 1 and cfg["embed_dim"] == 64
    loaded = build_clip(None, pretrained=path).eval()
    with torch.no_grad():
        # fp16 storage rounds the weights; the embeddings stay close.
        torch.testing.assert_close(loaded.encode_image(images), image_ref, rtol=0, atol=5e-3)


def test_openai_weights_with_plain_gelu_config_is_an_error(reference, tmp_path):
    model = reference[0]
    state = dict(model.state_dict(), input_resolution=torch.tensor(32), context_length=torch.tensor(77),
                 vocab_size=torch.tensor(49408))
    path = tmp_path / "openai.pt"
    torch.save(state, path)
    with pytest.raises(ValueError, match="QuickGELU"):
        build_clip("test", pretrained=path, quick_gelu=False)
    build_clip("test", pretrained=path)  # the QuickGELU preset is fine


def test_mismatched_weights_list_the_keys(reference, tmp_path):
    path = tmp_path / "clip.pt"
    torch.save(reference[0].state_dict(), path)
    with pytest.raises(ValueError) as info:
        build_clip("tiny", pretrained=path)
    message = str(info.value)
    # tiny has 4 blocks per tower and width 128; test has 2 blocks and width 64.
    assert "missing (" in message and "transformer.resblocks.2.attn.in_proj_weight" in message
    assert "shape of ln_final.weight: file (64,) vs model (128,)" in message
    assert "unexpected" not in message


def test_missing_file_and_unknown_architecture():
    with pytest.raises(FileNotFoundError, match="not found"):
        build_clip("ViT-B-16-quickgelu", pretrained="/nonexistent/ViT-B-16.pt")
    with pytest.raises(ValueError, match="unknown CLIP architecture 'ViT-X'"):
        build_clip("ViT-X")


def test_open_clip_architectures_by_name():
    model = build_clip("ViT-B-32-quickgelu")
    assert model.visual.conv1.weight.shape == (768, 3, 32, 32)
    assert model.visual.transformer.resblocks[0].mlp.gelu.__class__.__name__ == "QuickGELU"
    small = build_clip("test", vision_cfg={"layers": 3})
    assert len(small.visual.transformer.resblocks) == 3
