"""TC-CLIP model behaviour on the smallest CLIP preset (`test`): gradients, stop-gradient, LR groups, prompts, invariants."""

from __future__ import annotations

import pytest
import torch
from chronoclip_tcclip import TCCLIPModel, normalize_class_name
from chronoclip_tcclip.merge import merge_schedule

import core
from core.clip import build_clip, tokenize
from core.clip import layers as L

NAMES = ["ApplyEyeMakeup", "brush_hair", "playing guitar"]
T, K = 4, 6   # test preset: 16 patches -> 4 seeds per frame, 16 seeds -> 6 context tokens (rounds 8, 2)


def _tiny_model(seed: int = 0, **options) -> TCCLIPModel:
    torch.manual_seed(seed)
    options.setdefault("context_token_k", K)
    return core.load_method("tcclip").build(build_clip("test"), num_frames=T, **options)


def _video(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, T, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny() -> TCCLIPModel:
    return _tiny_model().double()


def _batch(model: TCCLIPModel) -> dict:
    return {"video": _video().double(), "label": torch.tensor([0, 2]), "class_texts": model.class_texts(NAMES)}


def test_gradients_reach_exactly_the_trainable_tensors():
    model = _tiny_model().double()
    out = model.training_forward(_batch(model))
    out["loss"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {n for n, p in model.named_parameters() if not p.requires_grad} == {"clip.token_embedding.weight"}
    assert model.clip.token_embedding.weight.grad is None
    no_grad = sorted(n for n in trainable if dict(model.named_parameters())[n].grad is None
                     or dict(model.named_parameters())[n].grad.abs().sum() == 0)
    assert no_grad == []
    # the method's own tensors are among them: both bias tables, the prompt vectors, VP, logit scale
    for name in ["local_global_bias_table.1", "prompt_learner.ctx", "prompt_generation_layer.0.ln_1_kv.weight",
                 "prompt_generation_layer.0.attn.in_proj_weight", "clip.logit_scale", "clip.visual.conv1.weight"]:
        assert name in trainable
    assert sorted(model.local_global_bias_table.keys()) == ["1"]   # block 0 has no table


def test_stop_gradient_keeps_text_side_gradients_out_of_the_vision_tower():
    """With im_stop_grad the vision tower gets gradient only through the video embedding."""
    def vision_grads(model, detach_text):
        model.zero_grad()
        video, texts = _video().double(), model.class_texts(NAMES)
        out = model._vision(video)
        v = model._video_embedding(out.frames)
        text = model.text_features([out.context[i] for i in model.vp_levels], texts)
        if detach_text:
            text = text.detach()
        logits = (model.clip.logit_scale.exp() * v).unsqueeze(1) @ text.transpose(1, 2)
        torch.nn.functional.cross_entropy(logits.squeeze(1), torch.tensor([0, 2])).backward()
        return {n: p.grad.clone() for n, p in model.clip.visual.named_parameters()}

    stopped = _tiny_model().double()
    full, video_only = vision_grads(stopped, False), vision_grads(stopped, True)
    for name in full:
        torch.testing.assert_close(full[name], video_only[name], rtol=0, atol=1e-14, msg=name)
    flowing = _tiny_model(im_stop_grad=False).double()
    full, video_only = vision_grads(flowing, False), vision_grads(flowing, True)
    assert (full["ln_post.weight"] - video_only["ln_post.weight"]).abs().max() > 1e-6


def test_param_groups_follow_the_official_recipe(tiny):
    groups = {g["name"]: g for g in tiny.param_groups(1e-3)}
    assert set(groups) == {"base", "prompt_learner", "prompt_generation"}
    assert [groups[n]["lr_scale"] for n in ("base", "prompt_learner", "prompt_generation")] == [1.0, 10.0, 10.0]
    assert {g["weight_decay"] for g in groups.values()} == {1e-3}   # decay on every tensor, biases and LNs too
    assert groups["prompt_learner"]["params"] == [tiny.prompt_learner.ctx]
    assert sum(p.numel() for p in groups["prompt_generation"]["params"]) == sum(
        p.numel() for p in tiny.prompt_generation_layer.parameters())
    counted = sum(p.numel() for g in groups.values() for p in g["params"])
    assert counted == tiny.trainable_parameter_count()
    single = _tiny_model(lr_10x=False).param_groups(1e-3)
    assert [g["name"] for g in single] == ["base"]


def test_vit_b16_parameter_counts_and_constants():
    model = core.load_method("tcclip").build(build_clip("ViT-B-16-quickgelu"), num_frames=16)
    assert model.trainable_parameter_count() == 127_479_561          # the official checkpoint's 127.5 M
    assert model.clip.token_embedding.weight.numel() == 49408 * 512  # frozen, outside the official model
    assert sum(p.numel() for p in model.prompt_generation_layer.parameters()) == 3_153_408
    assert model.prompt_learner.ctx.shape == (4, 512)
    assert sum(t.numel() for t in model.local_global_bias_table.values()) == 11 * 12 * 2
    s = model.settings
    assert (s.num_patches, s.num_seeds, s.num_context) == (196, 58, 96)
    assert merge_schedule(16 * s.num_seeds, s.num_context, s.merge_r[0]) == [100] * 8 + [32]
    assert model.vp_levels == (11,)


@pytest.mark.parametrize(("name", "text"), [
    ("ApplyEyeMakeup", "Apply Eye Makeup"), ("TaiChi", "Tai Chi"), ("YoYo", "Yo Yo"), ("brush_hair", "brush hair"),
    ("abseiling", "abseiling"), ("Watching TV", "Watching  T V"),
])
def test_class_name_normalisation(name, text):
    assert normalize_class_name(name) == text


def test_llm_descriptions_are_normalised_too(tiny):
    texts = tiny.class_texts(["Abseiling"], {"Abseiling": "Abseiling: a person descends a rope"})
    assert texts == ["Abseiling: a person descends a rope"]
    with pytest.raises(ValueError, match="no description"):
        tiny.class_texts(["yoga"], {})


def test_initial_prompt_is_the_hand_written_template(tiny):
    # ctx starts as the (fp16-rounded) token embeddings of "a photo of a", so the prompt embeds like the template
    tokens, embeddings = tiny.prompt_learner.tokens_and_embeddings(tiny.clip, ["brush hair"])
    prompts = tiny.prompt_learner(embeddings)
    template = tokenize(["a photo of a brush hair."])[:, : tokens.shape[1]]
    assert torch.equal(tokens, template)
    expected = tiny.clip.token_embedding(template).half().double()
    torch.testing.assert_close(prompts, expected, rtol=0, atol=0)


def test_vp_starts_as_a_copy_of_the_last_text_block(tiny):
    vp, last = tiny.prompt_generation_layer[0].state_dict(), tiny.clip.transformer.resblocks[-1].state_dict()
    for key, value in last.items():
        assert torch.equal(vp[key], value), key
    assert torch.equal(vp["ln_1_kv.weight"], last["ln_1.weight"]) and torch.equal(vp["ln_1_kv.bias"], last["ln_1.bias"])


def test_context_token_count_and_sizes(tiny):
    with torch.no_grad():
        out = tiny._vision(_video(3).double())
    last = len(tiny.clip.visual.transformer.resblocks) - 1
    assert out.frames.shape == (3, T, 64)
    assert out.context[last].shape == (3, K, 64)
    # 4 seeds per frame x 4 frames, every seed in exactly one context token
    assert out.sizes[last].sum(dim=1).flatten().tolist() == [16.0] * 3
    assert out.sizes[last].min() >= 1


def test_masking_the_context_by_the_bias_gives_per_frame_clip():
    """A context bias of -1e4 removes the context keys: every frame then runs the plain CLIP ViT."""
    model = _tiny_model().double()
    with torch.no_grad():
        for table in model.local_global_bias_table.values():
            table[:, :, 0], table[:, :, 1] = 0.0, -1e4
        video = _video().double()
        frames = model._vision(video).frames
        plain = L.encode_frames(model.clip, video)
    torch.testing.assert_close(frames, plain, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("seed_ratio", "k", "order_free"), [
    (0.3, 6, True),     # 4 seeds per frame (even): frame blocks keep the A/B parity of every merge round
    (0.2, 12, True),    # 3 seeds per frame, 12 >= 12 seeds: no merge at all, the context is a set
    (0.2, 5, False),    # 3 seeds per frame (odd) and merging: reordering frames changes the A/B split
])
def test_frame_order_enters_only_through_the_merge_split(seed_ratio, k, order_free):
    """The official design has no temporal position: each frame sees itself plus an unordered set of context
    tokens and the video embedding is a frame mean, so the only order signal is the positional A/B split of the
    bipartite merge (the released 58 seeds per frame keep it from the second round on)."""
    model = _tiny_model(context_token_k=k, seed_token_a=seed_ratio).double()
    video = _video().double()
    with torch.no_grad():
        forward = model.encode_video(video)
        changes = [(forward - model.encode_video(video[:, order])).abs().max()
                   for order in (torch.tensor([3, 2, 1, 0]), torch.tensor([2, 0, 3, 1]))]
    assert all(c < 1e-12 for c in changes) if order_free else all(c > 1e-6 for c in changes)


def test_text_features_are_per_video_and_batching_is_exact(tiny):
    video, texts = _video(3, seed=4).double(), tiny.class_texts(NAMES)
    with torch.no_grad():
        batched = tiny.classify(video, texts)
        alone = torch.cat([tiny.classify(video[b:b + 1], texts) for b in range(3)])
        out = tiny._vision(video)
        text = tiny.text_features([out.context[i] for i in tiny.vp_levels], texts)
    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-12)
    assert (text[0] - text[1]).abs().max() > 1e-6   # VP conditions the class features on each video


def test_train_and_eval_forward_agree():
    model = _tiny_model()
    video, texts = _video(), model.class_texts(NAMES)
    with torch.no_grad():
        train = model.train().classify(video, texts)
        evaluation = model.eval().classify(video, texts)
    assert torch.equal(train, evaluation)   # no dropout or drop-path anywhere


def test_user_errors(tiny):
    with pytest.raises(ValueError, match="4 frames"):
        tiny.classify(torch.zeros(1, 8, 3, 32, 32, dtype=torch.float64), ["yoga"])
    with pytest.raises(ValueError, match="do not fit"):
        _tiny_model(context_length=12).classify(_video(1), ["a very long class name " * 3])
    with pytest.raises(ValueError, match="text blocks 1..2"):
        _tiny_model(prompt_generation_layer_level=3)
    with pytest.raises(ValueError, match="n_ctx"):
        _tiny_model(n_ctx=2)
    with pytest.raises(ValueError, match=r"method_options .*unknown option 'context_tokens' \(did you mean "
                                         r"'context_token_k'"):
        core.load_method("tcclip").build(build_clip("test"), num_frames=T, context_tokens=8)
