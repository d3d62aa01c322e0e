"""Clip transforms of the reference recipes, on uint8 clips ``(T, H, W, 3)`` -> float ``(T, 3, S, S)``.

Training (:class:`TrainTransform`), in the references' order: resize the short side to
``int(256/224 * S)`` -> crop (``multiscale``: TSN ``MultiScaleCrop`` with scales (1, .875, .75, .66),
at most one scale step between width and height, sides within 3 px of ``S`` snapped to ``S``, one of
5 or 13 fixed offsets; ``random_resized``: area (0.08, 1), aspect (3/4, 4/3), 10 tries, then a
centre square; ``center``) -> resize to ``S x S`` (aspect ignored) -> horizontal flip -> colour
jitter (brightness .4, contrast .4, saturation .2, hue .1) applied to the clip with probability
``color_jitter`` and **re-sampled for every frame** (TC-CLIP, ILA, T2L) -> grayscale for the whole
clip with probability ``grayscale`` -> normalise -> optional random erasing (timm, constant 0, one
box for every frame, as ILA).

Evaluation (:class:`EvalTransform`): short side ``int(256/224 * S)`` + centre crop ``S`` for one
crop; short side ``S`` + left/right/centre (or top/bottom/centre) ``S x S`` crops for three
(mmaction ``ThreeCrop``, in its order).

Deliberate differences from the references: all crop boxes are computed exactly as they do, on the
short-side-resized frame, but each frame is then resampled **once** (the box is mapped back to the
decoded frame and rounded to whole pixels) with antialiased bilinear interpolation in float, instead
of the references' two uint8 resizes with OpenCV or PIL; pixel values therefore differ by
interpolation rounding, never by geometry. When the decoded short side already equals the resize
target (Kinetics' 340x256 at S = 224) the mapping is the identity.

All randomness comes from the ``np.random.Generator`` passed in, so a clip's augmentation is
reproducible from its seed. Batched Mixup/CutMix with label smoothing is :class:`MixupCutmix`.
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "MULTISCALE_SCALES",
    "EvalTransform",
    "MixupCutmix",
    "TrainTransform",
    "center_crop_box",
    "cutmix",
    "cutmix_box",
    "mixup",
    "multiscale_crop_box",
    "random_resized_crop_box",
    "short_side_size",
    "smooth_one_hot",
    "three_crop_boxes",
]

MULTISCALE_SCALES = (1.0, 0.875, 0.75, 0.66)
RESIZE_RATIO = 256 / 224  # references resize the short side to int(256/224 * S) before cropping S

Box = tuple[int, int, int, int]  # (x, y, width, height) in pixels


# ---------------------------------------------------------------------------------------------------------------
# Geometry: pure functions of sizes (and an rng), tested against hand-computed boxes.


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """(new_height, new_width) with the short side ``short``, aspect kept (mmcv ``rescale_size`` rounding)."""
    scale = short / min(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def multiscale_crop_box(
    height: int, width: int, input_size: int, rng: np.random.Generator, *, scales: Sequence[float] = MULTISCALE_SCALES,
    max_scale_gap: int = 1, num_fixed_crops: int = 5,
) -> Box:
    """TSN ``MultiScaleCrop`` box on a ``height x width`` frame.

    Crop sides are ``int(min(h, w) * s)`` for ``s`` in ``scales``, width and height picked as a pair
    whose scale indices differ by at most ``max_scale_gap``; a side within 3 px of ``input_size``
    becomes ``input_size``. The offset is one of the fixed positions on a 4x4 step grid: 5 (corners,
    centre: TC-CLIP, ILA) or 13 (+ edge centres and quarter points: T2L), in the reference order.
    """
    if num_fixed_crops not in (5, 13):
        raise ValueError(f"num_fixed_crops must be 5 or 13, got {num_fixed_crops}")
    base = min(height, width)
    sides = [int(base * s) for s in scales]
    sides = [input_size if abs(s - input_size) < 3 else s for s in sides]
    pairs = [(w, h) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_scale_gap]
    crop_w, crop_h = pairs[int(rng.integers(len(pairs)))]
    crop_w, crop_h = min(crop_w, width), min(crop_h, height)
    ws, hs = (width - crop_w) // 4, (height - crop_h) // 4
    offsets = [(0, 0), (4 * ws, 0), (0, 4 * hs), (4 * ws, 4 * hs), (2 * ws, 2 * hs)]
    if num_fixed_crops == 13:
        offsets += [(0, 2 * hs), (4 * ws, 2 * hs), (2 * ws, 4 * hs), (2 * ws, 0),
                    (ws, hs), (3 * ws, hs), (ws, 3 * hs), (3 * ws, 3 * hs)]
    x, y = offsets[int(rng.integers(len(offsets)))]
    return x, y, crop_w, crop_h


def random_resized_crop_box(
    height: int, width: int, rng: np.random.Generator, *, area: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10,
) -> Box:
    """mmaction ``RandomResizedCrop`` box: ``attempts`` (area, log-uniform aspect) draws, first that fits.

    Falls back to the centred square of side ``min(h, w)``.
    """
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), size=attempts))
    target = rng.uniform(area[0], area[1], size=attempts) * height * width
    crop_w = np.round(np.sqrt(target * aspect)).astype(int)
    crop_h = np.round(np.sqrt(target / aspect)).astype(int)
    for cw, ch in zip(crop_w, crop_h):
        if 0 < ch <= height and 0 < cw <= width:
            return int(rng.integers(0, width - cw + 1)), int(rng.integers(0, height - ch + 1)), int(cw), int(ch)
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side, side


def center_crop_box(height: int, width: int, size: int) -> Box:
    """Centred ``size x size`` box, offsets ``(W - size) // 2`` and ``(H - size) // 2`` (mmaction ``CenterCrop``)."""
    size_h, size_w = min(size, height), min(size, width)
    return (width - size_w) // 2, (height - size_h) // 2, size_w, size_h


def three_crop_boxes(height: int, width: int, size: int) -> list[Box]:
    """mmaction ``ThreeCrop`` on a frame whose short side is ``size``: left, right, middle (or top, bottom, middle)."""
    if width >= height:
        step = (width - size) // 2
        return [(0, 0, size, height), (2 * step, 0, size, height), (step, 0, size, height)]
    step = (height - size) // 2
    return [(0, 0, width, size), (0, 2 * step, width, size), (0, step, width, size)]


def _map_box(box: Box, resized_hw: tuple[int, int], frame_hw: tuple[int, int]) -> Box:
    """A box on the short-side-resized frame, mapped to the decoded frame: offset and size rounded separately
    (so equal boxes stay equal), then kept inside the frame."""
    sy, sx = frame_hw[0] / resized_hw[0], frame_hw[1] / resized_hw[1]
    w = min(frame_hw[1], max(1, round(box[2] * sx)))
    h = min(frame_hw[0], max(1, round(box[3] * sy)))
    x = min(round(box[0] * sx), frame_hw[1] - w)
    y = min(round(box[1] * sy), frame_hw[0] - h)
    return x, y, w, h


# ---------------------------------------------------------------------------------------------------------------
# Pixel operations on float clips (T, 3, H, W) in [0, 1].


def _check_clip(video: torch.Tensor) -> None:
    if video.dtype != torch.uint8 or video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"expected a uint8 clip (T, H, W, 3), got {tuple(video.shape)} {video.dtype}")


def _crop_resize(video: torch.Tensor, box: Box, size: int, flip: bool = False) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, size, size) in [0, 1]: crop ``box``, one antialiased bilinear resize,
    then a horizontal flip when ``flip`` (on the resized uint8 pixels: a quarter of the bytes of the float clip,
    and the same values as flipping the float result).

    The resize runs on uint8 (as the references resize uint8 images), which is also ~9x faster than in float.
    The uint8 -> float conversion writes the contiguous (T, 3, S, S) layout in the same pass: converting the
    channels-last tensor first and calling ``.contiguous()`` after costs ~13x more (7 ms for 8 frames of 224 px
    on one core, 3x the resize itself).
    """
    x, y, w, h = box
    clip = video[:, y:y + h, x:x + w].permute(0, 3, 1, 2)  # a channels-last view: no copy
    if (h, w) != (size, size):
        clip = F.interpolate(clip, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    if flip:
        clip = clip.flip(-1)
    return clip.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)


_GRAY = (0.2989, 0.587, 0.114)  # torchvision rgb_to_grayscale weights


def _gray(clip: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 1, H, W) luma."""
    return (clip[:, 0:1] * _GRAY[0] + clip[:, 1:2] * _GRAY[1] + clip[:, 2:3] * _GRAY[2])


def _blend(clip: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """torchvision ``_blend`` for floats: ``factor * clip + (1 - factor) * other``, clamped to [0, 1]."""
    factor = factor.view(-1, 1, 1, 1)
    return (factor * clip + (1 - factor) * other).clamp_(0.0, 1.0)


def _shift_hue(clip: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """torchvision ``adjust_hue`` (HSV hue rotation by ``shift`` turns), vectorised over frames (N, 3, H, W).

    Same arithmetic as RGB -> HSV -> RGB with fewer passes over the pixels: hue in sextants is
    ``(g - b)/chroma``, ``2 + (b - r)/chroma`` or ``4 + (r - g)/chroma`` (max channel r, g, b), and the
    inverse is the closed form ``c_n = v - chroma * clamp(min(k, 4 - k), 0, 1)``, ``k = (n + 6h) mod 6``
    for n = 5, 3, 1. Grey pixels (chroma 0) are left unchanged, as in torchvision.
    """
    r, g, b = clip[:, 0], clip[:, 1], clip[:, 2]
    maxc, minc = clip.amax(dim=1), clip.amin(dim=1)
    chroma = maxc - minc
    # sextant selection with float masks: torch.where is several times slower than a multiply on CPU
    red_max = (maxc == r).to(clip.dtype)
    green_max = (maxc == g).to(clip.dtype).mul_(1.0 - red_max)
    blue_max = 1.0 - red_max - green_max
    hue = (g - b).mul_(red_max)
    hue += (b - r).add_(chroma, alpha=2.0).mul_(green_max)
    hue += (r - g).add_(chroma, alpha=4.0).mul_(blue_max)
    hue.div_(chroma + (chroma == 0).to(clip.dtype))  # grey pixels: 0 / 1
    hue.add_(6.0 * shift.view(-1, 1, 1)).remainder_(6.0)
    out = torch.empty_like(clip)
    for channel, n in enumerate((5.0, 3.0, 1.0)):
        k = torch.remainder(hue + n, 6.0)
        k = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        torch.sub(maxc, k.mul_(chroma), out=out[:, channel])
    return out


def _jitter_draws(frames: int, rng: np.random.Generator, strength: tuple[float, float, float, float]):
    """Per frame: (brightness, contrast, saturation, hue) factors (T, 4) and the op order (T, 4), drawn as
    torchvision ``ColorJitter.get_params`` does (a random permutation of the four ops, then the factors)."""
    b, c, s, h = strength
    factors = np.empty((frames, 4))
    order = np.empty((frames, 4), dtype=np.int64)
    for t in range(frames):
        factors[t] = (rng.uniform(max(0.0, 1 - b), 1 + b), rng.uniform(max(0.0, 1 - c), 1 + c),
                      rng.uniform(max(0.0, 1 - s), 1 + s), rng.uniform(-h, h))
        order[t] = rng.permutation(4)
    return factors, order


def _color_jitter_torch(clip: torch.Tensor, factors: np.ndarray, order: np.ndarray) -> torch.Tensor:
    """The jitter with torch ops, op-group by op-group over the frames (the reference arithmetic, in float)."""
    factors_t = torch.from_numpy(factors).to(clip.dtype)
    for position in range(4):
        for op in range(4):
            index = torch.from_numpy(np.flatnonzero(order[:, position] == op))
            if index.numel() == 0:
                continue
            part, factor = clip[index], factors_t[index, op]
            if op == 0:
                part = (part * factor.view(-1, 1, 1, 1)).clamp_(0.0, 1.0)
            elif op == 1:
                part = _blend(part, _gray(part).mean(dim=(-2, -1), keepdim=True), factor)
            elif op == 2:
                part = _blend(part, _gray(part), factor)
            else:
                part = _shift_hue(part, factor)
            clip[index] = part
    return clip


@functools.cache
def _jitter_kernel() -> types.ModuleType | None:
    """The numba kernel module (imported on first use: numba costs ~1 s to import), or None without numba."""
    try:
        from core.data import _jitter_kernel as kernel
    except ImportError:  # numba missing: the torch path (same arithmetic, ~15x slower)
        return None
    return kernel


def compile_color_jitter() -> bool:
    """Compile (or load from numba's cache) the fused colour-jitter kernel in this process; False without numba.

    Call it before DataLoader workers fork: they then inherit the compiled kernel. A worker compiling on its own
    after the parent has initialised LLVM can abort (LLVM is not fork-safe), and every worker would pay the
    compile again.
    """
    kernel = _jitter_kernel()
    if kernel is None:
        return False
    kernel.jitter_frames(np.zeros((1, 3, 2, 2), np.float32), np.zeros((1, 4), np.float32),
                         np.arange(4, dtype=np.int64).reshape(1, 4))
    return True


def _color_jitter(clip: torch.Tensor, rng: np.random.Generator, strength: tuple[float, float, float, float],
                  *, fused: bool | None = None):
    """torchvision ``ColorJitter`` drawn independently for every frame of (T, 3, H, W) float in [0, 1]: for each
    frame, four factors and a random order of (brightness, contrast, saturation, hue).

    ``fused`` (default: when numba is installed) runs the four ops as numba loops over each frame while it is in
    cache (``core/data/_jitter_kernel.py``; ~15x faster: ~1 ms for 8 frames of 224 px on one core); otherwise
    the same float32 arithmetic runs as torch ops over the whole clip. The random draws are the same either way,
    and the values agree to float rounding (tests/data/test_data_transforms.py). numba compiles the kernel on
    its first call in a fresh checkout (~20 s, once: cached in ``core/data/__pycache__``).
    """
    factors, order = _jitter_draws(clip.shape[0], rng, strength)
    kernel = _jitter_kernel() if fused is None or fused else None
    if fused and kernel is None:
        raise RuntimeError("the fused colour jitter needs numba (pip install numba)")
    if kernel is not None and clip.dtype == torch.float32 and clip.is_contiguous():
        kernel.jitter_frames(clip.numpy(), factors.astype(np.float32), order)
        return clip
    return _color_jitter_torch(clip, factors, order)


def _normalize(clip: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, dtype=clip.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=clip.dtype).view(1, 3, 1, 1)
    return clip.sub_(m).div_(s)


def _random_erasing_box(height: int, width: int, rng: np.random.Generator) -> Box | None:
    """timm ``RandomErasing`` box (area 2%..1/3, log-aspect 0.3..1/0.3, 10 tries); None when nothing fits."""
    for _ in range(10):
        target = rng.uniform(0.02, 1 / 3) * height * width
        aspect = math.exp(rng.uniform(math.log(0.3), math.log(1 / 0.3)))
        h, w = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if w < width and h < height:
            return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h
    return None


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> None:
    if len(mean) != 3 or len(std) != 3 or max(mean) > 1.0 or max(std) > 1.0:
        raise ValueError(f"mean/std must be 3 values on the 0-1 scale (e.g. core.clip.CLIP_MEAN), got {mean}, {std}")


@dataclass(frozen=True)
class TrainTransform:
    """Training augmentation of one clip; ``__call__(video uint8 (T, H, W, 3), rng) -> float (T, 3, S, S)``.

    Args:
        input_size: output side ``S``.
        mean, std: per-channel normalisation on the 0-1 scale.
        crop: ``"multiscale"`` (TC-CLIP, ILA, T2L), ``"random_resized"`` (STAN) or ``"center"``.
        flip: horizontal-flip probability (TC-CLIP 0.5, ILA and STAN 0).
        color_jitter: probability that the clip is colour-jittered (parameters re-drawn per frame).
        grayscale: probability that the clip is turned grey (3 channels).
        random_erasing: probability of erasing one box (the same on every frame) to 0 after normalising.
        num_fixed_crops: MultiScaleCrop offsets, 5 (TC-CLIP, ILA) or 13 (T2L).
        jitter_strength: (brightness, contrast, saturation, hue) of the colour jitter.
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: str = "multiscale"
    flip: float = 0.5
    color_jitter: float = 0.8
    grayscale: float = 0.2
    random_erasing: float = 0.0
    num_fixed_crops: int = 5
    jitter_strength: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)

    def __post_init__(self) -> None:
        if self.crop not in ("multiscale", "random_resized", "center"):
            raise ValueError(f"crop must be 'multiscale', 'random_resized' or 'center', got {self.crop!r}")
        for name in ("flip", "color_jitter", "grayscale", "random_erasing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability in [0, 1], got {getattr(self, name)}")
        _check_stats(self.mean, self.std)
        if len(self.jitter_strength) != 4 or min(self.jitter_strength) < 0 or self.jitter_strength[3] > 0.5:
            raise ValueError(f"jitter_strength is (brightness, contrast, saturation, hue) >= 0 with hue <= 0.5 "
                             f"(torchvision's limits), got {self.jitter_strength}")

    def crop_box(self, height: int, width: int, rng: np.random.Generator) -> Box:
        """The crop on the decoded ``height x width`` frame (computed on the short-side-resized frame)."""
        resized = short_side_size(height, width, int(RESIZE_RATIO * self.input_size))
        if self.crop == "multiscale":
            box = multiscale_crop_box(*resized, self.input_size, rng, num_fixed_crops=self.num_fixed_crops)
        elif self.crop == "random_resized":
            box = random_resized_crop_box(*resized, rng)
        else:
            box = center_crop_box(*resized, self.input_size)
        return _map_box(box, resized, (height, width))

    def __call__(self, video: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        _check_clip(video)
        box = self.crop_box(video.shape[1], video.shape[2], rng)
        flip = rng.random() < self.flip  # drawn after the box, as before: the same random stream
        clip = _crop_resize(video, box, self.input_size, flip=flip)
        if rng.random() < self.color_jitter:
            clip = _color_jitter(clip, rng, self.jitter_strength)
        if rng.random() < self.grayscale:
            clip = _gray(clip).expand(-1, 3, -1, -1)
        clip = _normalize(clip.contiguous(), self.mean, self.std)
        if self.random_erasing > 0 and rng.random() < self.random_erasing:
            box = _random_erasing_box(self.input_size, self.input_size, rng)
            if box is not None:
                x, y, w, h = box
                clip[..., y:y + h, x:x + w] = 0.0
        return clip


@dataclass(frozen=True)
class EvalTransform:
    """Test-time crops; ``__call__(video uint8 (T, H, W, 3)) -> float (num_crops, T, 3, S, S)``.

    ``num_crops=1``: short side ``int(256/224*S)``, centre crop. ``num_crops=3``: short side ``S``,
    mmaction ``ThreeCrop`` (left, right, middle).
    """

    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    num_crops: int = 1

    def __post_init__(self) -> None:
        if self.num_crops not in (1, 3):
            raise ValueError(f"num_crops must be 1 (centre) or 3 (three-crop), got {self.num_crops}")
        _check_stats(self.mean, self.std)

    def crop_boxes(self, height: int, width: int) -> list[Box]:
        if self.num_crops == 1:
            resized = short_side_size(height, width, int(RESIZE_RATIO * self.input_size))
            boxes = [center_crop_box(*resized, self.input_size)]
        else:
            resized = short_side_size(height, width, self.input_size)
            boxes = three_crop_boxes(*resized, self.input_size)
        return [_map_box(b, resized, (height, width)) for b in boxes]

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        _check_clip(video)
        crops = [_crop_resize(video, box, self.input_size) for box in self.crop_boxes(video.shape[1], video.shape[2])]
        return torch.stack([_normalize(c, self.mean, self.std) for c in crops])


# ---------------------------------------------------------------------------------------------------------------
# Batched Mixup / CutMix with label smoothing.


def smooth_one_hot(label: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """(B,) long -> (B, C) float: ``off = smoothing / C`` everywhere, ``on = 1 - smoothing + off``."""
    off = smoothing / num_classes
    target = torch.full((label.shape[0], num_classes), off, dtype=torch.float32, device=label.device)
    return target.scatter_(1, label.view(-1, 1), 1.0 - smoothing + off)


def mixup(video: torch.Tensor, target: torch.Tensor, lam: float, partner: torch.Tensor):
    """``lam * x + (1 - lam) * x[partner]`` for the clips (B, ...) and the soft targets (B, C)."""
    return lam * video + (1 - lam) * video[partner], lam * target + (1 - lam) * target[partner]


def cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """timm / X-CLIP ``rand_bbox``: side ``int(side * sqrt(1 - lam))``, uniform centre, clipped. (y0, y1, x0, x1)."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    return (int(np.clip(cy - cut_h // 2, 0, height)), int(np.clip(cy + cut_h // 2, 0, height)),
            int(np.clip(cx - cut_w // 2, 0, width)), int(np.clip(cx + cut_w // 2, 0, width)))


def cutmix(video: torch.Tensor, target: torch.Tensor, box: tuple[int, int, int, int], partner: torch.Tensor):
    """Paste ``box`` (y0, y1, x0, x1) of ``video[partner]`` into every frame; ``lam`` from the clipped box area.

    Returns (video, target, lam); ``video`` (B, ..., H, W) is modified in place.
    """
    y0, y1, x0, x1 = box
    height, width = video.shape[-2:]
    video[..., y0:y1, x0:x1] = video[partner][..., y0:y1, x0:x1]
    lam = 1.0 - (y1 - y0) * (x1 - x0) / (height * width)
    return video, lam * target + (1 - lam) * target[partner], lam


class MixupCutmix:
    """Batch-level Mixup or CutMix with label smoothing (timm ``Mixup(mode='batch')`` semantics).

    With probability ``prob`` a batch is mixed; when both alphas are positive it gets CutMix with
    probability ``switch_prob`` (lam ~ Beta(cutmix_alpha), one box shared by every clip and frame,
    lam recomputed from the clipped box) and otherwise Mixup (lam ~ Beta(mixup_alpha)). Targets are
    smoothed one-hot (``smooth_one_hot``) mixed with the same lam. The partner of clip ``b`` is a
    random permutation of the batch (TC-CLIP, ILA: X-CLIP's ``CutmixMixupBlending``) or, with
    ``partner="flip"``, clip ``B-1-b`` (timm).

    ``__call__(video (B, T, 3, H, W), label (B,)) -> (video, target (B, C))``; ``video`` is modified in place.
    """

    def __init__(self, num_classes: int, *, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0,
                 switch_prob: float = 0.5, label_smoothing: float = 0.1, prob: float = 1.0,
                 partner: str = "permutation", seed: int = 0):
        if partner not in ("permutation", "flip"):
            raise ValueError(f"partner must be 'permutation' or 'flip', got {partner!r}")
        if mixup_alpha < 0 or cutmix_alpha < 0:
            raise ValueError(f"alphas must be >= 0, got mixup_alpha={mixup_alpha}, cutmix_alpha={cutmix_alpha}")
        self.num_classes, self.mixup_alpha, self.cutmix_alpha = num_classes, mixup_alpha, cutmix_alpha
        self.switch_prob, self.label_smoothing, self.prob, self.partner = switch_prob, label_smoothing, prob, partner
        self.rng = np.random.default_rng(seed)

    def __call__(self, video: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = smooth_one_hot(label, self.num_classes, self.label_smoothing)
        if self.rng.random() >= self.prob or (self.mixup_alpha == 0 and self.cutmix_alpha == 0):
            return video, target
        batch = video.shape[0]
        if self.partner == "flip":
            partner = torch.arange(batch - 1, -1, -1)
        else:
            partner = torch.from_numpy(self.rng.permutation(batch))
        partner = partner.to(video.device)
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or self.rng.random() < self.switch_prob)
        if use_cutmix:
            lam = float(self.rng.beta(self.cutmix_alpha, self.cutmix_alpha))
            box = cutmix_box(video.shape[-2], video.shape[-1], lam, self.rng)
            video, target, _ = cutmix(video, target, box, partner)
            return video, target
        lam = float(self.rng.beta(self.mixup_alpha, self.mixup_alpha))
        return mixup(video, target, lam, partner)
