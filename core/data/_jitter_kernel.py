"""Colour jitter compiled with numba: the float32 arithmetic of ``transforms._color_jitter_torch``.

Each frame gets its four ops in its drawn order, each op one simple loop over the frame's pixels (a frame is
3 x 224 x 224 float32 = 600 kB, so it stays in cache across the four loops, and each loop is branch-free
enough for LLVM to vectorise). Contrast blends with the mean grey of the frame as it is at that point, like
the torch path. Constants and the order of operations follow the torch path (``_blend``, ``_gray``,
``_shift_hue``), so the results agree to float rounding.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["jitter_frames"]

_F0, _F1, _F2, _F4, _F6 = np.float32(0.0), np.float32(1.0), np.float32(2.0), np.float32(4.0), np.float32(6.0)
_GR, _GG, _GB = np.float32(0.2989), np.float32(0.587), np.float32(0.114)
_N5, _N3, _N1 = np.float32(5.0), np.float32(3.0), np.float32(1.0)


@njit(cache=True, inline="always")
def _clamp01(x):
    return min(max(x, _F0), _F1)


@njit(cache=True, inline="always")
def _hue_channel(hue, n, maxc, chroma):
    # hue in [0, 6) and n in {1, 3, 5}: remainder(hue + n, 6) is one conditional subtraction
    k = hue + n
    k = k - _F6 if k >= _F6 else k
    return maxc - _clamp01(min(k, _F4 - k)) * chroma


@njit(cache=True)
def _brightness(r, g, b, f):
    for i in range(r.shape[0]):
        r[i] = _clamp01(r[i] * f)
        g[i] = _clamp01(g[i] * f)
        b[i] = _clamp01(b[i] * f)


@njit(cache=True)
def _blend_grey(r, g, b, f, mean, per_pixel):
    keep = _F1 - f
    for i in range(r.shape[0]):
        y = r[i] * _GR + g[i] * _GG + b[i] * _GB if per_pixel else mean
        r[i] = _clamp01(f * r[i] + keep * y)
        g[i] = _clamp01(f * g[i] + keep * y)
        b[i] = _clamp01(f * b[i] + keep * y)


@njit(cache=True)
def _mean_grey(r, g, b):
    total = 0.0
    for i in range(r.shape[0]):
        total += r[i] * _GR + g[i] * _GG + b[i] * _GB
    return np.float32(total / r.shape[0])


@njit(cache=True)
def _hue(r, g, b, shift6):
    for i in range(r.shape[0]):
        red, green, blue = r[i], g[i], b[i]
        maxc = max(red, max(green, blue))
        chroma = maxc - min(red, min(green, blue))
        if maxc == red:
            hue = green - blue
        elif maxc == green:
            hue = (blue - red) + _F2 * chroma
        else:
            hue = (red - green) + _F4 * chroma
        hue = hue / (chroma if chroma != _F0 else _F1) + shift6
        # hue in [-1, 5] and |shift6| <= 3: remainder(., 6) by one conditional add / subtract
        hue = hue + _F6 if hue < _F0 else (hue - _F6 if hue >= _F6 else hue)
        r[i] = _hue_channel(hue, _N5, maxc, chroma)
        g[i] = _hue_channel(hue, _N3, maxc, chroma)
        b[i] = _hue_channel(hue, _N1, maxc, chroma)


@njit(cache=True)
def jitter_frames(clip, factors, order):
    """In place on ``clip`` (T, 3, H, W) float32 C-contiguous; ``factors`` (T, 4) float32 (hue |f| <= 0.5),
    ``order`` (T, 4) int."""
    pixels = clip.shape[2] * clip.shape[3]
    for t in range(clip.shape[0]):
        x = clip[t].reshape(3, pixels)
        r, g, b = x[0], x[1], x[2]
        for j in range(4):
            op = order[t, j]
            f = factors[t, op]
            if op == 0:
                _brightness(r, g, b, f)
            elif op == 1:
                _blend_grey(r, g, b, f, _mean_grey(r, g, b), False)
            elif op == 2:
                _blend_grey(r, g, b, f, _F0, True)
            else:
                _hue(r, g, b, _F6 * f)
