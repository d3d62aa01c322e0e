"""Transforms: crop geometry against hand-computed boxes, pixel paths, Mixup/CutMix against hand values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.data import transforms as tf


class ScriptedRng:
    """Returns the queued values from ``integers`` (to pick a specific MultiScaleCrop candidate)."""

    def __init__(self, values):
        self.values = list(values)

    def integers(self, *args, **kwargs):
        return self.values.pop(0)


def test_short_side_size():
    assert tf.short_side_size(256, 340, 256) == (256, 340)
    assert tf.short_side_size(240, 320, 256) == (256, 341)  # 320 * 256/240 = 341.33 -> 341
    assert tf.short_side_size(400, 300, 36) == (48, 36)


def test_multiscale_crop_candidates():
    # base 256: sides int(256 s) = 256 224 192 168; (w, h) pairs with scale indices at most 1 apart,
    # enumerated h-major: (256,256) (224,256) (256,224) (224,224) (192,224) (224,192) (192,192) (168,192) ...
    assert tf.multiscale_crop_box(256, 340, 224, ScriptedRng([3, 4])) == (58, 16, 224, 224)  # centre offset
    # pair 7 = (168, 192): w_step = (340-168)//4 = 43, h_step = (256-192)//4 = 16; offset 12 of 13 = (3ws, 3hs)
    assert tf.multiscale_crop_box(256, 340, 224, ScriptedRng([7, 12]), num_fixed_crops=13) == (129, 48, 168, 192)
    # offset 1 = upper right (4 ws, 0)
    assert tf.multiscale_crop_box(256, 340, 224, ScriptedRng([0, 1])) == (84, 0, 256, 256)
    # snapping: base 36, sides 36 31 27 23; 31 is within 3 px of 32 -> 32
    assert tf.multiscale_crop_box(36, 48, 32, ScriptedRng([3, 0])) == (0, 0, 32, 32)
    rng = np.random.default_rng(0)
    sizes = {tf.multiscale_crop_box(256, 340, 224, rng)[2:] for _ in range(300)}
    assert sizes == {(256, 256), (224, 256), (256, 224), (224, 224), (192, 224), (224, 192), (192, 192),
                     (168, 192), (192, 168), (168, 168)}


def test_fixed_boxes():
    assert tf.center_crop_box(256, 340, 224) == (58, 16, 224, 224)
    assert tf.three_crop_boxes(224, 298, 224) == [(0, 0, 224, 224), (74, 0, 224, 224), (37, 0, 224, 224)]
    assert tf.three_crop_boxes(300, 224, 224) == [(0, 0, 224, 224), (0, 76, 224, 224), (0, 38, 224, 224)]
    # random_resized: an impossible area falls back to the centred square
    assert tf.random_resized_crop_box(100, 200, np.random.default_rng(0), area=(2.0, 2.0)) == (50, 0, 100, 100)
    x, y, w, h = tf.random_resized_crop_box(100, 200, np.random.default_rng(1))
    assert 0 <= x <= 200 - w and 0 <= y <= 100 - h and 0.08 * 2e4 * 0.9 <= w * h <= 2e4


def _coordinate_clip(frames: int = 2, size: int = 36) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    clip = torch.stack([xs * 7 % 256, ys * 5 % 256, (xs + ys) % 256], dim=-1).to(torch.uint8)
    return clip.expand(frames, size, size, 3).clone()


def test_train_transform_exact_pixels():
    video = _coordinate_clip()
    # S = 32: the short side is resized to int(256/224 * 32) = 36 (identity here), centre box (2, 2, 32, 32),
    # no resampling, flip always, no colour ops, identity normalisation
    transform = tf.TrainTransform(32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), crop="center", flip=1.0, color_jitter=0.0,
                                  grayscale=0.0)
    out = transform(video, np.random.default_rng(0))
    expected = video[:, 2:34, 2:34].flip(2).permute(0, 3, 1, 2).float() / 255
    assert out.shape == (2, 3, 32, 32)
    torch.testing.assert_close(out, expected)
    gray = tf.TrainTransform(32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), crop="center", flip=0.0, color_jitter=0.0,
                             grayscale=1.0)(video, np.random.default_rng(0))
    weights = torch.tensor([0.2989, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (video[:, 2:34, 2:34].permute(0, 3, 1, 2).float() / 255 * weights).sum(1, keepdim=True)
    torch.testing.assert_close(gray, luma.expand(-1, 3, -1, -1), atol=2e-3, rtol=0)


@pytest.mark.parametrize("flip", [False, True])
def test_crop_resize_matches_float_first_path(flip):
    # the fast path (flip the resized uint8, convert straight to the contiguous float layout) gives exactly the
    # values of the plain order: resize, convert to float in [0, 1], then flip the float clip
    video = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (3, 40, 52, 3), dtype=np.uint8))
    box = (5, 3, 37, 33)
    out = tf._crop_resize(video, box, 24, flip=flip)
    crop = video[:, 3:36, 5:42].permute(0, 3, 1, 2)
    resized = torch.nn.functional.interpolate(crop, size=(24, 24), mode="bilinear", align_corners=False,
                                              antialias=True)
    expected = resized.float().div(255.0).contiguous()
    expected = expected.flip(-1) if flip else expected
    assert out.is_contiguous() and out.shape == (3, 3, 24, 24)
    assert torch.equal(out, expected)


def test_train_transform_jitter_per_frame_and_seeded():
    video = _coordinate_clip(frames=4)
    transform = tf.TrainTransform(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), color_jitter=1.0, grayscale=0.0)
    a = transform(video, np.random.default_rng(5))
    b = transform(video, np.random.default_rng(5))
    torch.testing.assert_close(a, b)  # reproducible from the seed
    # identical input frames, jitter re-drawn per frame: every output frame differs from the others
    assert all(not torch.allclose(a[i], a[j]) for i in range(4) for j in range(i + 1, 4))
    # normalisation uses the given statistics: undo it and pixels are back in [0, 1]
    assert (a * 0.25 + 0.5).min() >= -1e-6 and (a * 0.25 + 0.5).max() <= 1 + 1e-6


def test_eval_transform_views():
    video = _coordinate_clip(frames=3, size=36)
    one = tf.EvalTransform(32, (0.0,) * 3, (1.0,) * 3)(video)
    torch.testing.assert_close(one[0], video[:, 2:34, 2:34].permute(0, 3, 1, 2).float() / 255)
    wide = torch.cat([video, video[:, :, :12]], dim=2)  # 36 x 48: short side -> 32, three crops on 32 x 43
    three = tf.EvalTransform(32, (0.0,) * 3, (1.0,) * 3, num_crops=3)
    assert three.crop_boxes(36, 48) == [(0, 0, 36, 36), (11, 0, 36, 36), (6, 0, 36, 36)]
    assert three(wide).shape == (3, 3, 3, 32, 32)
    with pytest.raises(ValueError, match="0-1 scale"):
        tf.EvalTransform(32, (123.7, 116.3, 103.5), (58.4, 57.1, 57.4))


def test_smooth_one_hot():
    target = tf.smooth_one_hot(torch.tensor([1, 0]), 4, 0.1)
    torch.testing.assert_close(target, torch.tensor([[0.025, 0.925, 0.025, 0.025], [0.925, 0.025, 0.025, 0.025]]))


def test_mixup_hand_values():
    video = torch.stack([torch.full((2, 3, 4, 4), 1.0), torch.full((2, 3, 4, 4), 3.0)])
    target = torch.eye(2)
    mixed, mixed_target = tf.mixup(video, target, 0.7, torch.tensor([1, 0]))
    assert mixed[0].unique().tolist() == pytest.approx([1.6]) and mixed[1].unique().tolist() == pytest.approx([2.4])
    torch.testing.assert_close(mixed_target, torch.tensor([[0.7, 0.3], [0.3, 0.7]]))


def test_cutmix_hand_values():
    # 10 x 10, lam 0.64: cut side int(10 * 0.6) = 6; centre (cy, cx) = (2, 8) -> rows 0..5, columns 5..10 clipped
    assert tf.cutmix_box(10, 10, 0.64, ScriptedRng([2, 8])) == (0, 5, 5, 10)
    video = torch.stack([torch.zeros(3, 3, 4, 4), torch.ones(3, 3, 4, 4)])  # (B=2, T=3, 3, 4, 4)
    out, target, lam = tf.cutmix(video, torch.eye(2), (1, 3, 0, 2), torch.tensor([1, 0]))
    assert lam == 0.75  # 1 - 2*2/16
    expected = torch.zeros(3, 3, 4, 4)
    expected[..., 1:3, 0:2] = 1.0
    torch.testing.assert_close(out[0], expected)  # the same box in every frame
    torch.testing.assert_close(target, torch.tensor([[0.75, 0.25], [0.25, 0.75]]))


def test_mixup_cutmix_batch():
    label = torch.tensor([0, 1, 2, 3])
    video = torch.arange(4.0).view(4, 1, 1, 1, 1).expand(4, 2, 3, 8, 8).clone()
    off = tf.MixupCutmix(5, prob=0.0, label_smoothing=0.1)
    same, target = off(video.clone(), label)
    torch.testing.assert_close(same, video)
    torch.testing.assert_close(target, tf.smooth_one_hot(label, 5, 0.1))
    mixer = tf.MixupCutmix(5, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1, partner="flip", seed=1)
    mixed, target = mixer(video.clone(), label)
    lam = float(target[0, 0] - 0.02) / 0.9  # row 0 = lam * onehot(0) + (1 - lam) * onehot(3), smoothed
    torch.testing.assert_close(mixed[0], lam * video[0] + (1 - lam) * video[3])
    torch.testing.assert_close(target.sum(1), torch.ones(4))


def _random_clip(frames: int, size: int, seed: int) -> torch.Tensor:
    """Float clip in [0, 1] with grey pixels, saturated pixels and exact channel ties (hue edge cases)."""
    gen = torch.Generator().manual_seed(seed)
    clip = torch.rand(frames, 3, size, size, generator=gen)
    clip[:, :, :4] = clip[:, :1, :4]                               # grey rows (chroma 0)
    clip[:, 0, 4:8] = 1.0                                          # saturated red
    clip[:, 1, 8:12] = clip[:, 0, 8:12]                            # red = green ties
    return clip


@pytest.mark.parametrize("seed", range(4))
def test_fused_jitter_matches_the_torch_ops(seed):
    pytest.importorskip("numba")
    clip = _random_clip(6, 24, seed)
    strength = (0.4, 0.4, 0.2, 0.1)
    fused = tf._color_jitter(clip.clone(), np.random.default_rng(seed), strength, fused=True)
    reference = tf._color_jitter(clip.clone(), np.random.default_rng(seed), strength, fused=False)
    assert not torch.allclose(fused, clip, atol=1e-2)              # it did jitter
    torch.testing.assert_close(fused, reference, atol=1e-5, rtol=0)


def test_jittered_value_distribution_is_unchanged(monkeypatch):
    """The full training transform's output values: fused jitter against the torch implementation, per quantile."""
    pytest.importorskip("numba")
    video = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 40, 52, 3), dtype=np.uint8))
    transform = tf.TrainTransform(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), color_jitter=1.0, grayscale=0.0)

    def values() -> torch.Tensor:
        return torch.cat([transform(video, np.random.default_rng(seed)).flatten() for seed in range(24)])

    fused = values()
    monkeypatch.setattr(tf, "_jitter_kernel", lambda: None)       # the torch path
    reference = values()
    q = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    torch.testing.assert_close(torch.quantile(fused.double(), q), torch.quantile(reference.double(), q),
                               atol=1e-4, rtol=0)
    assert abs(fused.mean() - reference.mean()) < 1e-5 and abs(fused.std() - reference.std()) < 1e-5


def test_jitter_strength_limits():
    with pytest.raises(ValueError, match="hue <= 0.5"):
        tf.TrainTransform(32, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), jitter_strength=(0.4, 0.4, 0.2, 0.6))
