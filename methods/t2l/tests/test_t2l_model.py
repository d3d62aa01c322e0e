"""The T2L model built by the plugin: what trains, what it counts, how it reads texts and frames."""

from __future__ import annotations

import math

import pytest
import torch
from chronoclip_t2l import T2LModel
from chronoclip_t2l.model import TEXT_TEMPLATES

import core
from core.clip import build_clip

TRAINABLE_PREFIXES = ("temporal_tokens", "visual_adapters.", "text_adapters.")


def _tiny(num_frames: int = 4, **options) -> T2LModel:
    torch.manual_seed(0)
    return core.load_method("t2l").build(build_clip("test"), num_frames=num_frames, **options)


def _randomise_adapters(model: T2LModel) -> None:
    # D_fc2 starts at zero (identity adapters), which would also block every gradient into D_fc1.
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for adapter in [*model.visual_adapters, *model.text_adapters]:
            adapter.D_fc2.weight.copy_(0.1 * torch.randn(adapter.D_fc2.weight.shape, generator=gen))


def _batch(videos: int = 3, frames: int = 4) -> dict:
    gen = torch.Generator().manual_seed(2)
    return {"video": torch.randn(videos, frames, 3, 32, 32, generator=gen), "label": torch.tensor([0, 1, 0])[:videos],
            "class_texts": ["a person jumps over a rope", "someone plays a guitar"]}


def test_entry_point_builds_a_t2l_model():
    assert core.list_methods()["t2l"].startswith("chronoclip-t2l")
    model = _tiny()
    assert isinstance(model, T2LModel) and model.method == "t2l" and model.num_frames == 4


def test_gradients_reach_exactly_the_trainable_tensors():
    model = _tiny(drop_path_rate=0.1)
    _randomise_adapters(model)
    model.train()
    out = model.training_forward(_batch())
    out["loss"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert trainable == with_grad
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(TRAINABLE_PREFIXES)}
    # The CLIP backbone, logit_scale and the temporal embedding stay frozen.
    assert not model.clip.logit_scale.requires_grad and not model.temporal_embedding.requires_grad
    assert torch.isfinite(out["loss"]) and out["logits"].shape == (3, 2)


def test_new_modules_start_as_the_official_init():
    model = _tiny()
    bound = math.sqrt(6 / (3 * 16 * 16 + 64))   # hard-coded 16x16 patch in the official bound
    assert model.temporal_tokens.shape == (2, 4, 64)
    assert model.temporal_tokens.abs().max() <= bound and model.temporal_tokens.abs().max() > 0.8 * bound
    assert torch.count_nonzero(model.temporal_embedding) == 0
    for adapter in [*model.visual_adapters, *model.text_adapters]:
        assert torch.count_nonzero(adapter.D_fc2.weight) == 0 and torch.count_nonzero(adapter.D_fc2.bias) == 0
    x = torch.randn(5, 64)
    torch.testing.assert_close(model.visual_adapters[0](x), x)    # identity before training


def test_frame_order_matters():
    model = _tiny().eval()
    video = _batch()["video"]
    with torch.no_grad():
        forward, backward = model.encode_video(video), model.encode_video(video.flip(1))
    assert (forward - backward).abs().max() > 1e-3
    # Without temporal tokens the only order-dependent part is the (zero) temporal embedding: a frame mean.
    plain = _tiny(temporal_tokens=False).eval()
    with torch.no_grad():
        torch.testing.assert_close(plain.encode_video(video), plain.encode_video(video.flip(1)), atol=1e-5, rtol=1e-5)


def test_wrong_frame_count_is_a_clear_error():
    with pytest.raises(ValueError, match="takes 4 frames"):
        _tiny().classify(torch.zeros(1, 8, 3, 32, 32), ["x"])


def test_parameter_counts_at_vit_b16():
    model = core.load_method("t2l").build(build_clip("ViT-B-16-quickgelu"), num_frames=8)
    counts = {prefix: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))
              for prefix in TRAINABLE_PREFIXES}
    print("ViT-B/16 x 8 trainable:", counts, model.trainable_parameter_count())
    assert counts == {"temporal_tokens": 12 * 8 * 768, "visual_adapters.": 3_550_464, "text_adapters.": 1_580_544}
    assert model.trainable_parameter_count() == 5_204_736                    # the paper's "5.2M"
    assert sum(p.numel() for p in model.parameters()) == 154_831_617        # official model, temporal_embedding incl.


def test_param_groups_are_the_official_two_groups_with_decay_everywhere():
    model = _tiny()
    groups = model.param_groups(weight_decay=0.2)
    assert [g["name"] for g in groups] == ["text", "visual"]
    assert all(g["lr_scale"] == 1.0 and g["weight_decay"] == 0.2 for g in groups)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
    assert any(p is model.temporal_tokens for p in groups[1]["params"])


def test_class_texts_are_descriptions_with_newlines_deleted():
    model = _tiny()
    texts = model.class_texts(["Yo_Yo", "Drum"], {"Yo_Yo": "\n\nYoYo is a toy.\nIt spins.", "Drum": "Drumming."})
    assert texts == ["YoYo is a toy.It spins.", "Drumming."]
    with pytest.raises(ValueError, match="no description for classes"):
        model.class_texts(["Yo_Yo", "Harp"], {"Yo_Yo": "x"})
    assert model.class_texts(["red circle moving left"]) == ["red circle moving left"]   # no LLM texts: the name


def test_template_mode_averages_probabilities_over_templates():
    model = _tiny(text_mode="templates").eval()
    names = model.class_texts(["jump_rope", "yo_yo"])
    assert names == ["jump rope", "yo yo"]
    video = _batch(videos=2)["video"]
    with torch.no_grad():
        logits = model.classify(video, names)
        video_emb = torch.nn.functional.normalize(model.encode_video(video), dim=-1)
        probs = torch.zeros(2, 2)
        for template in TEXT_TEMPLATES:
            text = torch.nn.functional.normalize(model.encode_texts([template.format(n) for n in names]), dim=-1)
            probs += (100 * video_emb @ text.t()).softmax(-1) / len(TEXT_TEMPLATES)
    torch.testing.assert_close(logits.softmax(-1), probs, atol=1e-5, rtol=1e-5)


def test_eval_text_cache_follows_weight_updates():
    model = _tiny().eval()
    _randomise_adapters(model)
    video = _batch(videos=1)["video"]
    texts = ["a person jumps over a rope", "someone plays a guitar"]
    with torch.no_grad():
        first = model.classify(video, texts)
        assert model.text_cache._entry is not None
        model.text_adapters[0].D_fc2.bias.add_(0.5)     # in place, as an optimizer step
        second = model.classify(video, texts)
        # DeepSpeed rewrites weights through .data (no version bump); a train/eval round trip drops the cache.
        bias = model.text_adapters[0].D_fc2.bias
        bias.data = bias.data + 0.5
        model.train()
        model.eval()
        third = model.classify(video, texts)
    assert (first - second).abs().max() > 1e-4 and (second - third).abs().max() > 1e-4


def test_soft_targets_are_rejected():
    batch = {**_batch(), "target": torch.full((3, 2), 0.5)}
    with pytest.raises(ValueError, match="hard labels"):
        _tiny().train().training_forward(batch)


def test_cached_class_texts_follow_a_cast_to_bf16():
    """An fp32 evaluation caches text features; the same model cast to bf16 must re-encode, not reuse them."""
    torch.manual_seed(0)
    model = core.load_method("t2l").build(build_clip("test"), num_frames=2).eval()
    video = torch.randn(1, 2, 3, 32, 32)
    texts = ["juggling balls", "archery"]
    with torch.no_grad():
        fp32 = model.classify(video, texts)
        model.to(torch.bfloat16)
        bf16 = model.classify(video.bfloat16(), texts)
        assert model.encode_texts(texts).dtype == torch.bfloat16  # re-encoded by the bf16 text tower
    assert bf16.dtype == torch.float32  # the similarity head runs in fp32 (core.objectives.head_precision)
    assert torch.allclose(bf16, fp32, atol=0.5)


def test_frame_order_comes_only_from_differences_between_the_frames_tokens():
    # Same token at every frame position: the per-frame blocks, the position-free attention across frames
    # and the frame mean treat the frames as a set, so a clip and its time reversal embed identically.
    model = _tiny().eval()
    _randomise_adapters(model)
    with torch.no_grad():
        model.temporal_tokens.copy_(model.temporal_tokens[:, :1].expand_as(model.temporal_tokens))
        video = _batch()["video"]
        torch.testing.assert_close(model.encode_video(video), model.encode_video(video.flip(1)), atol=1e-5, rtol=1e-5)


def test_token_lr_scale_puts_the_temporal_tokens_in_their_own_group():
    model = _tiny(token_lr_scale=10.0)
    groups = model.param_groups(weight_decay=0.2)
    assert [g["name"] for g in groups] == ["text", "visual", "temporal_tokens"]
    assert groups[2]["params"] == [model.temporal_tokens] and groups[2]["lr_scale"] == pytest.approx(10.0)
    assert not any(p is model.temporal_tokens for p in groups[1]["params"])
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters() if p.requires_grad)
