"""ViFi-CLIP's cached class-text features follow the model's device and dtype."""

import torch

import core
from core.clip import build_clip


def test_vifi_text_cache_follows_a_cast_to_bf16():
    """An fp32 evaluation caches text features; the same model cast to bf16 must re-encode, not reuse them."""
    torch.manual_seed(0)
    model = core.load_method("vifi").build(build_clip("test"), num_frames=2).eval()
    video = torch.randn(1, 2, 3, 32, 32)
    texts = ["a photo of a juggling.", "a photo of a archery."]
    with torch.no_grad():
        fp32 = model.classify(video, texts)
        model.to(torch.bfloat16)
        bf16 = model.classify(video.bfloat16(), texts)
    assert bf16.dtype == torch.bfloat16
    assert torch.allclose(bf16.float(), fp32, atol=0.5)
