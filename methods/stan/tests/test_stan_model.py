"""STAN built from a CLIP: initialisation, token layout, trainable set, LR groups, losses, parameter counts."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from chronoclip_stan import STAN, STANModel
from chronoclip_stan.branch import SpatialLayer, TemporalAttention, TemporalConv
from torch import nn

import core
from core.clip import build_clip

NAMES = ["red circle moving left", "red circle moving right", "blue square growing"]


def tiny_clip(seed: int = 0, layers: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return build_clip("test", vision_cfg={"layers": layers})  # width 64, one head, 32 px, patch 8


def video(b: int = 2, t: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn((b, t, 3, 32, 32), generator=torch.Generator().manual_seed(seed))


def randomize_(module: nn.Module, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


def test_entry_point_and_build() -> None:
    method = core.load_method("stan")
    assert isinstance(method, STAN)
    model = method.build(tiny_clip(), num_frames=8, depth=2)
    assert isinstance(model, STANModel) and model.method == "stan" and model.num_frames is None
    with pytest.raises(ValueError, match="1..64 frames"):
        method.build(tiny_clip(), num_frames=65)
    with pytest.raises(ValueError, match="unknown option 'temporal'"):
        method.build(tiny_clip(), num_frames=8, temporal="conv")
    with pytest.raises(ValueError, match=r"unknown option 'tua' \(did you mean 'tau'\?\)"):
        method.build(tiny_clip(), num_frames=8, tua=0.02)
    with pytest.raises(ValueError, match="option 'tau' must be a number, got 'big'"):
        method.build(tiny_clip(), num_frames=8, tau="big")
    with pytest.raises(ValueError, match="time_module"):
        method.build(tiny_clip(), num_frames=8, depth=2, time_module="swin")
    with pytest.raises(ValueError, match="depth 4 must be between 1 and the CLIP depth 3"):
        method.build(tiny_clip(), num_frames=8)


def test_fresh_branch_copies_clip_blocks_and_temporal_is_identity() -> None:
    clip = tiny_clip(layers=4)
    model = STAN().build(clip, num_frames=8, depth=3)
    blocks = clip.visual.transformer.resblocks
    for k, layer in enumerate(model.branch.spatial):
        reference = blocks[1 + k].state_dict()  # layer k sits beside block Lc - K + k
        copied = layer.block.state_dict()
        assert copied.keys() == reference.keys()
        assert all(torch.equal(copied[n], reference[n]) for n in reference)
        assert layer.block is not blocks[1 + k]  # a copy: training the branch leaves CLIP alone
    u = torch.randn(2, 1 + 16 * 4, 64)
    for temporal in model.branch.temporal:
        assert torch.count_nonzero(temporal.temporal_fc.weight) == 0
        assert torch.equal(temporal(u, 4), u)  # zero-initialised temporal_fc: exactly the identity
    # nn.Embedding default N(0, 1), not CLIP's 0.02
    assert 0.8 < model.branch.time_embed.weight.std().item() < 1.2
    conv = STAN().build(tiny_clip(), num_frames=8, depth=2, time_module="conv")
    assert all(torch.equal(t(u, 4), u) for t in conv.branch.temporal)


def test_branch_input_layout_is_patch_major_time_minor() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2)
    visual, branch = model.clip.visual, model.branch
    b, t, n, d = 2, 4, 16, 64
    h = torch.randn(b * t, 1 + n, d)
    u = branch.branch_input(visual, h, None, 0, t)
    pos, time = visual.positional_embedding, branch.time_embed.weight
    for bi, ti, li in [(0, 0, 0), (1, 3, 15), (0, 2, 7), (1, 1, 9)]:
        expected = h[bi * t + ti, 1 + li] + pos[1 + li] + time[ti]
        torch.testing.assert_close(u[bi, 1 + li * t + ti], expected)
    cls = (h.view(b, t, 1 + n, d)[:, :, 0].mean(1) + visual.class_embedding + pos[0]) / 2
    torch.testing.assert_close(u[:, 0], cls)
    # later layers: previous branch output plus the raw block output, nothing re-added
    nxt = branch.branch_input(visual, h, u, 1, t)
    torch.testing.assert_close(nxt[1, 1 + 9 * t + 1] - u[1, 1 + 9 * t + 1], h[1 * t + 1, 1 + 9])
    torch.testing.assert_close(nxt[:, 0] - u[:, 0], h.view(b, t, 1 + n, d)[:, :, 0].mean(1))


def _reference_mha(x: torch.Tensor, attn: nn.MultiheadAttention) -> torch.Tensor:
    """Textbook multi-head attention written out per head (q scaled by 1/sqrt(d_head))."""
    d = x.shape[-1]
    heads = attn.num_heads
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = attn.in_proj_bias.chunk(3)
    q, k, v = x @ wq.t() + bq, x @ wk.t() + bk, x @ wv.t() + bv
    outs = []
    for h in range(heads):
        sl = slice(h * d // heads, (h + 1) * d // heads)
        scores = q[..., sl] @ k[..., sl].transpose(-1, -2) / math.sqrt(d // heads)
        outs.append(scores.softmax(-1) @ v[..., sl])
    return torch.cat(outs, -1) @ attn.out_proj.weight.t() + attn.out_proj.bias


def test_temporal_attention_mixes_frames_of_one_patch_only() -> None:
    torch.manual_seed(0)
    layer = TemporalAttention(width=8, heads=2)
    randomize_(layer)
    b, n, t = 2, 3, 5
    u = torch.randn(b, 1 + n * t, 8)
    out = layer(u, t)
    assert torch.equal(out[:, 0], u[:, 0])  # the video CLS is untouched
    for bi in range(b):
        for li in range(n):
            tokens = u[bi, 1 + li * t: 1 + (li + 1) * t]  # the T tokens of patch li
            a = _reference_mha(layer.ln(tokens), layer.attn)
            expected = tokens + layer.temporal_fc(a)
            torch.testing.assert_close(out[bi, 1 + li * t: 1 + (li + 1) * t], expected, atol=1e-5, rtol=1e-5)


def test_spatial_layer_attends_per_frame_and_averages_cls() -> None:
    torch.manual_seed(0)
    clip = tiny_clip()
    layer = SpatialLayer(clip.visual.transformer.resblocks[0])
    b, n, t = 2, 16, 3
    u = torch.randn(b, 1 + n * t, 64)
    out = layer(u, t)
    block = layer.block
    for bi in range(b):
        cls_updates = []
        mid = u[bi].clone()
        for ti in range(t):
            frame = torch.cat([u[bi, :1], u[bi, 1 + ti::t]])          # CLS + the N patches of frame ti
            a = _reference_mha(block.ln_1(frame), block.attn)
            cls_updates.append(a[0])
            mid[1 + ti::t] = u[bi, 1 + ti::t] + a[1:]
        mid[0] = u[bi, 0] + torch.stack(cls_updates).mean(0)
        expected = mid + block.mlp(block.ln_2(mid))
        torch.testing.assert_close(out[bi], expected, atol=1e-5, rtol=1e-5)


def test_conv_temporal_matches_conv3d_on_the_patch_grid() -> None:
    torch.manual_seed(0)
    layer = TemporalConv(width=8, grid=4)
    randomize_(layer)
    b, t = 2, 5
    u = torch.randn(b, 1 + 16 * t, 8)
    out = layer(u, t)
    grid = torch.stack([u[:, 1 + ti::t] for ti in range(t)], dim=1)        # (B, T, N, D)
    volume = grid.view(b, t, 4, 4, 8).permute(0, 4, 1, 2, 3)              # (B, D, T, rows, cols)
    conv = F.conv3d(volume, layer.conv.weight, layer.conv.bias, padding=1).permute(0, 2, 3, 4, 1).reshape(b, t, 16, 8)
    for ti in range(t):
        torch.testing.assert_close(out[:, 1 + ti::t], u[:, 1 + ti::t] + layer.temporal_fc(conv[:, ti]),
                                   atol=1e-5, rtol=1e-5)


def test_fusion_adds_branch_cls_to_every_frame_before_ln_post() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2).eval()
    x = video()
    seen = {}
    model.clip.visual.ln_post.register_forward_hook(lambda m, i, o: seen.setdefault("ln_post_in", i[0]))
    with torch.no_grad():
        emb = model.encode_video(x)
    g = seen["ln_post_in"]                                                  # (B*T, D)
    assert g.shape == (8, 64)
    expected = (model.clip.visual.ln_post(g) @ model.clip.visual.proj).view(2, 4, -1).mean(1)
    torch.testing.assert_close(emb, expected)


def test_gradients_reach_exactly_the_trainable_tensors() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2, drop_path_rate=0.0)
    for t in model.branch.temporal:  # away from the zero init so every branch tensor gets a non-zero gradient
        randomize_(t.temporal_fc)
    model.train()
    out = model.training_forward({"video": video(), "label": torch.tensor([0, 2]), "class_texts": NAMES})
    out["loss"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert with_grad == trainable
    text = {n for n in dict(model.named_parameters()) if not n.startswith("clip.visual.") and not n.startswith("branch.")}
    assert text and not (text & trainable)  # recognition: the text tower (and logit_scale) never trains
    assert {n for n in trainable if n.startswith("clip.visual.")} == {
        f"clip.visual.{n}" for n, _ in model.clip.visual.named_parameters()}


def test_retrieval_trains_the_text_tower() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2, task="retrieval", drop_path_rate=0.0)
    out = model.training_forward({"video": video(), "captions": ["a red circle moves left", "a blue square grows"]})
    out["loss"].backward()
    assert model.clip.token_embedding.weight.grad is not None
    assert model.clip.transformer.resblocks[0].attn.in_proj_weight.grad.abs().sum() > 0
    assert model.clip.logit_scale.grad is None


def test_recognition_loss_is_cross_entropy_of_100x_cosine() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2).eval()
    x, label = video(), torch.tensor([1, 0])
    with torch.no_grad():
        out = model.training_forward({"video": x, "label": label, "class_texts": NAMES})
        v = model.encode_video(x)
        c = model.encode_text(NAMES)
    loss = 0.0
    for i in range(2):
        cos = [float(v[i] @ c[j] / (v[i].norm() * c[j].norm())) for j in range(3)]
        logits = [100 * s for s in cos]
        loss += -(logits[label[i]] - math.log(sum(math.exp(z) for z in logits))) / 2
    assert out["loss"].item() == pytest.approx(loss, rel=1e-5, abs=1e-5)
    assert out["logits"].shape == (2, 3)


def test_retrieval_loss_sums_both_directions() -> None:
    """NormSoftmaxLoss on a 2x2 case worked by hand: S = cos / tau with tau 1 here."""
    from core.objectives import symmetric_infonce

    v = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    r = 1 / math.sqrt(2)
    s = [[1.0, r], [0.0, r]]                                         # cos(v_i, t_j)
    rows = -(s[0][0] - math.log(math.exp(s[0][0]) + math.exp(s[0][1]))
             + s[1][1] - math.log(math.exp(s[1][0]) + math.exp(s[1][1]))) / 2
    cols = -(s[0][0] - math.log(math.exp(s[0][0]) + math.exp(s[1][0]))
             + s[1][1] - math.log(math.exp(s[0][1]) + math.exp(s[1][1]))) / 2
    # what STANModel.retrieval_forward computes: 2 x core's mean-of-directions objective
    assert (2 * symmetric_infonce(v, t, 1.0, gather=False)).item() == pytest.approx(rows + cols, rel=1e-6)


def test_param_groups_follow_the_official_paramwise_cfg() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2)
    groups = {g["name"]: g for g in model.param_groups(weight_decay=0.02)}
    assert groups["stan"]["lr_scale"] == 10.0 and groups["stan"]["weight_decay"] == 0.02
    assert groups["clip"]["lr_scale"] == 1.0 and groups["clip"]["weight_decay"] == 0.02
    assert groups["clip_no_decay"]["weight_decay"] == 0.0
    ids = {name: {id(p) for p in g["params"]} for name, g in groups.items()}
    params = dict(model.named_parameters())
    # the branch's norms and biases decay (custom key wins); CLIP's do not; CLIP's embeddings do
    assert id(params["branch.temporal.0.ln.bias"]) in ids["stan"]
    assert id(params["branch.spatial.1.block.ln_1.weight"]) in ids["stan"]
    assert id(params["clip.visual.transformer.resblocks.0.ln_1.weight"]) in ids["clip_no_decay"]
    assert id(params["clip.visual.transformer.resblocks.0.attn.in_proj_bias"]) in ids["clip_no_decay"]
    assert id(params["clip.visual.class_embedding"]) in ids["clip"]
    assert id(params["clip.visual.positional_embedding"]) in ids["clip"]
    listed = [id(p) for g in groups.values() for p in g["params"]]
    assert len(listed) == len(set(listed)) == sum(p.requires_grad for p in model.parameters())


@pytest.fixture(scope="module")
def vit_b16() -> nn.Module:
    """ViT-B/16 with random weights (no file needed: the counts depend on shapes only)."""
    return build_clip("ViT-B-16-quickgelu")


@pytest.mark.parametrize(("depth", "time_module", "expected"), [
    (4, "selfattn", 40_218_624),    # spec: 4 x 7,087,872 + 4 x 2,954,496 + 49,152 = 40.2 M
    (6, "selfattn", 60_303_360),    # SSv2 recipe
    (4, "conv", 4 * (7_087_872 + 768 * 768 * 27 + 768 + 768 * 768 + 768) + 49_152),
])
def test_branch_parameter_count_at_vit_b16(vit_b16: nn.Module, depth: int, time_module: str, expected: int) -> None:
    clip = vit_b16
    model = STAN().build(clip, num_frames=8, depth=depth, time_module=time_module)
    assert sum(p.numel() for p in model.branch.parameters()) == expected
    trainable = model.trainable_parameter_count()
    visual = sum(p.numel() for p in clip.visual.parameters())
    assert trainable == visual + expected  # ViT-B/16 vision tower + branch; text frozen


def test_clips_longer_than_the_time_table_are_refused() -> None:
    model = STAN().build(tiny_clip(), num_frames=8, depth=1)
    with pytest.raises(ValueError, match="64 rows"):
        model.encode_video(torch.zeros(1, 65, 3, 32, 32))


def test_class_text_cache_follows_the_class_list() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2).eval()
    first = model.class_embeddings(NAMES)
    assert model.class_embeddings(NAMES) is first
    other = model.class_embeddings(NAMES[:2])
    assert other.shape[0] == 2 and not other.requires_grad
    assert model.class_texts(["Abseiling"]) == ["Abseiling"]  # raw names, no template


def test_cache_made_under_inference_mode_does_not_break_training() -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2, drop_path_rate=0.0).eval()
    with torch.inference_mode():
        model.classify(video(), NAMES)                      # evaluation fills the cache with inference tensors
    model.train()
    out = model.training_forward({"video": video(), "label": torch.tensor([0, 1]), "class_texts": NAMES})
    out["loss"].backward()                                  # would raise if the inference tensor were reused
    assert model.branch.spatial[0].block.attn.in_proj_weight.grad is not None


def test_cache_ignores_the_grad_mode_and_follows_the_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    model = STAN().build(tiny_clip(), num_frames=4, depth=2).eval()
    calls = []
    encode = model.encode_text
    monkeypatch.setattr(model, "encode_text", lambda texts: calls.append(len(texts)) or encode(texts))
    with torch.inference_mode():
        first = model.classify(video(), NAMES)
    with torch.no_grad():
        again = model.classify(video(), NAMES)               # used to re-encode: cache keyed on the grad mode
    assert calls == [3] and torch.equal(first, again)
    with torch.no_grad():
        model.clip.token_embedding.weight.mul_(2.0)          # new text weights: the features must follow
        changed = model.classify(video(), NAMES)
    assert calls == [3, 3] and not torch.allclose(changed, first)
