"""The one text-feature cache rule (core.text_cache) and ViFi-CLIP's cached features following a cast."""

import torch
from torch import nn

import core
from core.clip import build_clip
from core.text_cache import TextFeatureCache


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
        assert model.encode_texts(texts).dtype == torch.bfloat16  # re-encoded by the bf16 text tower
    assert bf16.dtype == torch.float32  # the similarity head runs in fp32 (core.objectives.head_precision)
    assert torch.allclose(bf16, fp32, atol=0.5)


class _Text(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(4))
        self.cache = TextFeatureCache()
        self.calls = 0

    def features(self, texts: list[str], frozen: bool = False) -> torch.Tensor:
        def compute() -> torch.Tensor:
            self.calls += 1
            return self.weight * len(texts)
        return self.cache.get(texts, compute, [self.weight], frozen=frozen)


def test_text_feature_cache_rule():
    """Reused across no_grad/inference_mode; re-encoded after a weight change, a cast, or train(); never
    cached while the features need gradients; a value filled under inference_mode still trains."""
    text = _Text().eval()
    with torch.inference_mode():
        first = text.features(["a", "b"])
    with torch.no_grad():
        assert text.features(["a", "b"]) is first and text.calls == 1
        text.features(["a"])
        assert text.calls == 2
        text.features(["a", "b"])
        text.weight.mul_(2.0)                     # an in-place update (optimizer step, load_state_dict)
        changed = text.features(["a", "b"])
    assert text.calls == 4 and torch.equal(changed, 2 * first)
    assert not first.is_inference()               # an ordinary tensor: usable by autograd later
    text.to(torch.bfloat16)
    with torch.no_grad():
        assert text.features(["a", "b"]).dtype == torch.bfloat16 and text.calls == 5
    text.train()                                  # DeepSpeed writes through .data: train() drops the cache
    with torch.no_grad():
        text.features(["a", "b"])
    assert text.calls == 6
    grad = text.features(["a", "b"])              # gradients needed: computed every call, nothing kept
    grad2 = text.features(["a", "b"])
    assert text.calls == 8 and grad.requires_grad and grad2.requires_grad
    frozen = text.features(["a", "b"], frozen=True)
    assert text.features(["a", "b"], frozen=True) is frozen and not frozen.requires_grad and text.calls == 9
    assert text.state_dict().keys() == {"weight"}
