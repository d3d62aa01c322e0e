"""The ILA models on a tiny CLIP: what trains, the losses, text cache, eval mode, errors; counts at ViT-B/16."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from chronoclip_ila import ILAModel, ILASSv2Model, jitter_delta_at, to_official_state_dict
from chronoclip_ila.block import token_drop_path

import core
from core.clip import IMAGENET_MEAN, IMAGENET_STD, build_clip
from core.clip import layers as L
from core.training.optim import checked_param_groups

NAMES = ["red circle moving left", "red circle moving right", "blue square growing"]


def _tiny(variant: str = "k400", frames: int = 4, **options) -> ILAModel | ILASSv2Model:
    torch.manual_seed(0)
    return core.load_method("ila").build(build_clip("test"), num_frames=frames, variant=variant, **options)


def _randomise_zero_init(model: torch.nn.Module) -> None:
    """Give the zero-initialised layers values, as after training, so every branch carries signal."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for block in model.blocks:
            for layer in (block.temporal_skip_fc, block.temporal_skip_align_fc, block.message_attn.prediction_block[12]):
                for p in layer.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def _video(b: int = 2, t: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, t, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_untrained_ila_is_clip_plus_mit() -> None:
    model = _tiny().eval()
    video = _video()
    with torch.no_grad():
        features = model.forward_features(video)
        plain = L.encode_frames(model.clip, video)
    torch.testing.assert_close(features["frames"], plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features["video"], model.mit(plain), atol=1e-5, rtol=1e-5)
    # ... and the alignment already produces a loss (the points start at the frame centre)
    assert all(loss.item() > 0 for loss in features["align_losses"])
    assert all(torch.equal(p, torch.zeros_like(p)) for p in features["points"])


def test_gradients_reach_exactly_the_trainable_tensors() -> None:
    model = _tiny().train()
    _randomise_zero_init(model)
    out = model.training_forward({"video": _video(), "label": torch.tensor([0, 2]), "class_texts": NAMES})
    out["loss"].backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(("blocks.", "mit."))}
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, name
    # frozen but load-bearing: the prompt generator and prompts_visual_* (never trained by the official code)
    assert not model.prompts_visual_proj.requires_grad and not model.prompts_generator.alpha.requires_grad
    assert not any(p.requires_grad for p in model.clip.parameters())


def test_training_loss_is_ce_plus_alignment_by_hand() -> None:
    model = _tiny().eval()  # eval: deterministic and no running-stat updates between the two forwards
    _randomise_zero_init(model)
    video = _video()
    target = torch.tensor([[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    out = model.training_forward({"video": video, "label": torch.tensor([0, 2]), "target": target,
                                  "class_texts": NAMES})
    with torch.no_grad():
        features = model.forward_features(video)
    logits = out["logits"].detach()
    ce = -(target * F.log_softmax(logits, dim=-1)).sum(-1).mean()
    align = sum(features["align_losses"])
    assert out["ce"].item() == pytest.approx(ce.item(), abs=1e-6)
    assert out["align"].item() == pytest.approx(align.item(), abs=1e-6)
    assert out["loss"].item() == pytest.approx(ce.item() + align.item(), abs=1e-5)
    hard = model.training_forward({"video": video, "label": torch.tensor([0, 2]), "class_texts": NAMES})
    assert hard["ce"].item() == pytest.approx(F.cross_entropy(logits, torch.tensor([0, 2])).item(), abs=1e-6)


def test_eval_keeps_running_batchnorm_statistics_and_text_cache_follows_labels() -> None:
    model = _tiny().eval()
    _randomise_zero_init(model)
    video = _video()
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "num_batches" in k}
    with torch.no_grad():
        first = model.classify(video, NAMES)
        second = model.classify(video, NAMES)  # the official cache_text() would have left train() on here
        other = model.classify(video, NAMES[::-1])
    assert not model.training
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    for key, value in stats.items():
        assert torch.equal(model.state_dict()[key], value), key
    # a new label set is encoded, not served from the old cache
    torch.testing.assert_close(other, first.flip(-1), atol=1e-6, rtol=0)
    model.text_cache.clear()
    with torch.no_grad():
        torch.testing.assert_close(model.classify(video, NAMES[::-1]), other, atol=0, rtol=0)


def test_jitter_follows_module_mode_and_decays_from_epoch_30() -> None:
    assert [jitter_delta_at(e) for e in (0, 29, 30, 31, 32)] == [0.2, 0.2, 0.1, 0.05, 0.025]
    model = _tiny().eval()
    _randomise_zero_init(model)
    video = _video()
    with torch.no_grad():
        eval_loss = model.forward_features(video)["align_losses"][0]
        model.train()
        model.on_epoch_start(31)
        assert model.jitter_delta == 0.05
        train_loss = model.forward_features(video)["align_losses"][0]
    assert not torch.allclose(eval_loss, train_loss)


def test_param_groups_tiny() -> None:
    model = _tiny()
    groups = model.param_groups(weight_decay=0.5)
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"message", "message_no_decay", "temporal", "temporal_no_decay", "mit", "mit_no_decay"}
    assert by_name["temporal"]["lr_scale"] == 10.0 and by_name["temporal"]["weight_decay"] == 0.001
    assert by_name["message"]["lr_scale"] == 62.5 and by_name["message"]["weight_decay"] == 0.01
    assert by_name["mit"]["lr_scale"] == 50.0 and by_name["mit"]["weight_decay"] == 0.5
    assert model.mit.positional_embedding in by_name["mit_no_decay"]["params"]
    custom = _tiny(optim={"message_lr_scale": 1.0, "temporal_lr_scale": 1.0})
    by_name = {g["name"]: g for g in custom.param_groups(weight_decay=0.0)}
    assert by_name["message"]["lr_scale"] == 1.0 and by_name["temporal"]["lr_scale"] == 1.0
    with pytest.raises(ValueError, match=r"method_options of method 'ila'\.optim: unknown option 'message_lr' "
                                         r"\(did you mean 'message_lr_scale'"):
        _tiny(optim={"message_lr": 1e-3})


def test_token_drop_path_drops_positions_for_every_frame() -> None:
    torch.manual_seed(3)
    x = torch.ones(6, 10, 4)
    out = token_drop_path(x, 0.5, training=True)
    kept = out[0, :, 0] > 0
    assert 0 < kept.sum() < 10
    assert torch.equal(out, (x * 2) * kept[None, :, None])  # the same positions in every row
    assert torch.equal(token_drop_path(x, 0.5, training=False), x)


def test_inputs_and_errors() -> None:
    model = _tiny()
    assert model.input_mean == IMAGENET_MEAN and model.input_std == IMAGENET_STD
    with pytest.raises(ValueError, match="takes 4 frames"):
        model.classify(_video(t=8), NAMES)
    with pytest.raises(ValueError, match="longer than the 77-token context"):
        model.classify(_video(), ["very long " * 60])
    method = core.load_method("ila")
    with pytest.raises(ValueError, match="num_classes"):
        method.build(build_clip("test"), num_frames=4, variant="ssv2")
    with pytest.raises(ValueError, match="option 'variant' must be one of 'k400', 'ssv2', got 'ucf'"):
        method.build(build_clip("test"), num_frames=4, variant="ucf")
    with pytest.raises(ValueError, match="unknown option 'prompt_depth'"):
        method.build(build_clip("test"), num_frames=4, prompt_depth=3)


def test_ssv2_variant() -> None:
    model = _tiny("ssv2", num_classes=5).eval()
    assert not hasattr(model.clip, "transformer") and not hasattr(model.clip, "logit_scale")
    first = model.blocks[0].message_attn.interactive_block
    assert isinstance(first[0], torch.nn.Conv2d) and first[0].weight.shape == (256, 128, 3, 3)
    names = [f"c{i}" for i in range(5)]
    video = _video()
    with torch.no_grad():
        logits = model.classify(video, names)
        v = model.encode_video(video)
    head = model.mit.classify_head
    torch.testing.assert_close(logits, head[2](head[0](v / v.norm(dim=-1, keepdim=True))))
    with pytest.raises(ValueError, match="5-way linear head"):
        model.classify(video, names[:3])
    model.train()
    out = model.training_forward({"video": video, "label": torch.tensor([1, 4]), "class_texts": names})
    out["loss"].backward()
    assert all((p.grad is not None) == p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("variant", ["k400", "ssv2"])
def test_official_format_round_trip_infers_the_architecture(variant: str, tmp_path) -> None:
    options = {"num_classes": 3} if variant == "ssv2" else {}
    model = _tiny(variant, frames=3, alignment_channels=64, mit_layers=2, **options).eval()
    _randomise_zero_init(model)
    torch.save({"model": to_official_state_dict(model.state_dict()), "epoch": 0}, tmp_path / "ckpt.pth")
    loaded = core.load_official("ila", tmp_path / "ckpt.pth")
    assert type(loaded) is type(model) and loaded.num_frames == 3 and len(loaded.mit.resblocks) == 2
    assert loaded.blocks[0].message_attn.channels == 64
    video = _video(t=3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.classify(video, NAMES), model.classify(video, NAMES), rtol=0, atol=1e-6)


def _group_sizes(groups: list[dict]) -> list[tuple[str, int, int, float, float]]:
    return [(g["name"], len(g["params"]), sum(p.numel() for p in g["params"]), g["lr"], g["weight_decay"])
            for g in groups]


def test_vit_b16_counts_match_the_official_model() -> None:
    """Figures of the official build_model + build_optimizer at ViT-B/16, 8 frames (K400 branch)."""
    model = core.load_method("ila").build(build_clip("ViT-B-16-quickgelu"), num_frames=8)
    state = model.state_dict()
    assert len(state) == 959 and sum(v.numel() for v in state.values()) == 199_995_757
    assert model.trainable_parameter_count() == 43_621_680
    # the official absolute LRs at the official optim.lr (TRAIN.LR) 8e-6, through the trainer's lr = lr x lr_scale
    groups = _group_sizes(checked_param_groups(model, 8e-6, 0.003))
    assert groups == [("message", 120, 26_168_832, pytest.approx(5e-4), 0.01),
                      ("message_no_decay", 264, 122_160, pytest.approx(5e-4), 0.0),
                      ("temporal", 24, 14_155_776, pytest.approx(8e-5), 0.001),
                      ("temporal_no_decay", 24, 18_432, pytest.approx(8e-5), 0.0),
                      ("mit", 4, 3_145_728, pytest.approx(4e-4), 0.003), ("mit_no_decay", 9, 10_752, pytest.approx(4e-4), 0.0)]


def test_vit_b16_ssv2_counts() -> None:
    """SSV2 branch figures at ViT-B/16, 8 frames (official head: 400 outputs; ours: 174, 226 * 513 fewer)."""
    model = core.load_method("ila").build(build_clip("ViT-B-16-quickgelu"), num_frames=8, variant="ssv2",
                                          num_classes=174)
    state = model.state_dict()
    assert len(state) == 697 and sum(v.numel() for v in state.values()) == 167_566_576 - 226 * 513
    assert model.trainable_parameter_count() == 81_355_456 - 226 * 513


def test_eval_folds_the_stacked_skip_linears_without_changing_outputs() -> None:
    model = _tiny().eval()
    _randomise_zero_init(model)
    video = _video()
    with torch.no_grad():
        folded = model.encode_video(video)                   # no_grad eval: temporal_skip_fc ∘ fc folded
        for block in model.blocks:
            block.fold_linears = False
        unfolded = model.encode_video(video)
        for block in model.blocks:
            block.fold_linears = True
    torch.testing.assert_close(folded, unfolded, rtol=0, atol=1e-5)
    assert (folded - unfolded).abs().max() > 0                # the folded path really ran (other rounding)
    align = model.blocks[0].message_attn
    weight, bias = align.folded_fc(model.blocks[0].temporal_skip_fc)
    assert weight.shape == (align.width, align.channels // 2)
    with torch.no_grad():                                     # new weights (a training step): the fold follows
        model.blocks[0].temporal_skip_fc.weight.mul_(2.0)
        changed = model.encode_video(video)
        for block in model.blocks:
            block.fold_linears = False
        expected = model.encode_video(video)
    torch.testing.assert_close(changed, expected, rtol=0, atol=1e-5)
    assert not torch.allclose(changed, folded, atol=1e-4)
    # training (and any call with autograd) runs the two layers, so gradients reach both
    model.train()
    for block in model.blocks:
        block.fold_linears = True
    model.encode_video(video).sum().backward()
    assert model.blocks[0].message_attn.fc.weight.grad is not None
