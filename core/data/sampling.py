"""Frame-index samplers: which frames of a video become the T frames of a clip.

Every sampler is a pure function ``(num_frames, T, rng) -> np.ndarray`` of ``T`` int64 indices in
``[0, num_frames)``, in time order (a too-short ``dense`` clip wraps around). Random samplers draw
from the ``np.random.Generator`` they are given (so a clip is reproducible from its seed);
deterministic ones ignore it. The formulas are the reference implementations' (0-based), so a recipe
can name the one its authors used:

* ``segment``: TSN, mmaction ``SampleFrames(clip_len=1, num_clips=T)`` training mode:
  ``seg = n // T``, index ``i*seg + randint(seg)``. TC-CLIP / ViFi-CLIP training; every view of
  TC-CLIP's and ILA's multi-view test.
* ``segment_center``: the same in test mode, ``int(i*n/T + n/T/2)``. TC-CLIP single-view test.
* ``segment_t2l``: TSN as T2L's loader does it: bounds ``k_i = i*n // T``, index
  ``k_i + randint(k_{i+1} - k_i)``. T2L training.
* ``segment_center_t2l``: ``int(i*n/T + (n/T - 1)/2)``. T2L test.
* ``uniform``: ``seg = (n-1)/T``, index uniform in ``[round(i*seg), round((i+1)*seg)]``, both ends
  included, round half to even. ILA / STAN training.
* ``uniform_center``: ``round(i*seg) + int(seg/2)`` (mmaction ``UniformSample`` test mode). STAN test.
* ``uniform_mid``: ``(round(i*seg) + round((i+1)*seg)) // 2``. ILA single-view validation.
* ``dense`` / ``dense_center``: ``T`` consecutive frames ``interval`` apart from a random / the
  centred start (mmaction ``SampleFrames(clip_len=T)``). No reference method uses it; for users.

Short clips (``n < T``, or ``n < T*interval`` for ``dense``) never fail: each sampler then repeats
frames exactly as its reference does (listed per function) and every index stays in ``[0, n)``.
``n <= 0`` is a ``ValueError`` (an empty video is a corrupt sample, which the reader skips).

``dense`` takes an interval: name it ``"dense:4"`` (default 2). Multi-view test (several temporal
clips per video) is :func:`sample_views`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

__all__ = [
    "SAMPLERS",
    "Sampler",
    "dense",
    "dense_center",
    "get_sampler",
    "is_random",
    "sample_views",
    "segment",
    "segment_center",
    "segment_center_t2l",
    "segment_t2l",
    "uniform",
    "uniform_center",
    "uniform_mid",
]


class Sampler(Protocol):
    def __call__(self, num_frames: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray: ...


def _check(num_frames: int, num_samples: int) -> None:
    if num_frames <= 0:
        raise ValueError(f"cannot sample frames from a video with {num_frames} frames")
    if num_samples <= 0:
        raise ValueError(f"number of frames to sample must be positive, got {num_samples}")


def _need_rng(rng: np.random.Generator | None, name: str) -> np.random.Generator:
    if rng is None:
        raise ValueError(f"sampler {name!r} is random: pass rng=np.random.default_rng(seed)")
    return rng


def _as_indices(values, num_frames: int) -> np.ndarray:
    # mmaction's out_of_bound_opt='loop': indices wrap around (only reachable in the short-clip branches).
    return np.mod(np.asarray(values, dtype=np.int64), num_frames)


def segment(num_frames: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN segment sampling, training mode (mmaction ``SampleFrames(clip_len=1, num_clips=T)``).

    ``n >= T``: ``seg = n // T``, index ``i*seg + randint(0, seg)`` (frames past ``T*seg`` are never
    used, as in mmaction). Short clip ``n < T``: ``round(i*n/T)`` (half to even), i.e. frames repeat.
    """
    _check(num_frames, num_samples)
    seg = num_frames // num_samples
    if seg > 0:
        offsets = _need_rng(rng, "segment").integers(0, seg, size=num_samples)
        return _as_indices(np.arange(num_samples) * seg + offsets, num_frames)
    return _as_indices(np.around(np.arange(num_samples) * (num_frames / num_samples)), num_frames)


def segment_center(
    num_frames: int, num_samples: int, rng: np.random.Generator | None = None, *, position: float = 0.5
) -> np.ndarray:
    """TSN segment centres, test mode: ``int(i*n/T + n/T*position)`` with ``position = 0.5``.

    Works unchanged for ``n < T`` (frames repeat). ``position`` in ``[0, 1)`` moves the pick inside
    each segment (used for deterministic multi-view; 0.5 is the reference).
    """
    _check(num_frames, num_samples)
    seg = num_frames / num_samples
    return _as_indices([int(seg * i + seg * position) for i in range(num_samples)], num_frames)


def segment_t2l(num_frames: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN segment sampling as in T2L's ``_sample_indices`` (training, ``random_shift=True``).

    ``n > T``: segment bounds ``k_i = i*n // T`` and index ``k_i + randint(0, k_{i+1} - k_i)``.
    Short clip ``n <= T``: all ``n`` frames plus ``T - n`` uniformly drawn duplicates, sorted.
    """
    _check(num_frames, num_samples)
    rng = _need_rng(rng, "segment_t2l")
    if num_frames <= num_samples:
        extra = rng.integers(0, num_frames, size=num_samples - num_frames)
        return np.sort(np.concatenate([np.arange(num_frames), extra])).astype(np.int64)
    ticks = np.array([i * num_frames // num_samples for i in range(num_samples + 1)])
    return (ticks[:-1] + rng.integers(0, np.diff(ticks))).astype(np.int64)


def segment_center_t2l(
    num_frames: int, num_samples: int, rng: np.random.Generator | None = None, *, position: float = 0.5
) -> np.ndarray:
    """Segment centres as in T2L's ``_get_val_indices``: ``int(i*n/T + (n/T - 1)*position)``.

    Evaluated in the reference's float order, then truncated. Short clip ``n <= T``: ``i*n // T``.
    """
    _check(num_frames, num_samples)
    if num_frames <= num_samples:
        return np.array([i * num_frames // num_samples for i in range(num_samples)], dtype=np.int64)
    offset = (num_frames / num_samples - 1) * position
    return np.array([int(i * num_frames / num_samples + offset) for i in range(num_samples)], dtype=np.int64)


def _uniform_bounds(num_frames: int, num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    seg = (num_frames - 1) / num_samples
    edges = np.round(seg * np.arange(num_samples + 1)).astype(np.int64)  # np.round: half to even, as the reference
    return edges[:-1], edges[1:]


def uniform(num_frames: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """ILA/STAN uniform sampling: ``seg = (n-1)/T``, index uniform in ``[round(i*seg), round((i+1)*seg)]``.

    Both ends are included, so neighbouring segments share their boundary frame. Short clips need no
    special case: segments shorter than one frame repeat frames.
    """
    _check(num_frames, num_samples)
    start, end = _uniform_bounds(num_frames, num_samples)
    return start + _need_rng(rng, "uniform").integers(0, end - start + 1)


def uniform_center(
    num_frames: int, num_samples: int, rng: np.random.Generator | None = None, *, position: float = 0.5
) -> np.ndarray:
    """STAN test sampling (mmaction ``UniformSample``, test mode): ``round(i*seg) + int(seg*position)``."""
    _check(num_frames, num_samples)
    seg = (num_frames - 1) / num_samples
    start, _ = _uniform_bounds(num_frames, num_samples)
    return start + int(seg * position)


def uniform_mid(num_frames: int, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """ILA single-view validation: the midpoint ``(start + end) // 2`` of each :func:`uniform` segment."""
    _check(num_frames, num_samples)
    start, end = _uniform_bounds(num_frames, num_samples)
    return (start + end) // 2


def dense(
    num_frames: int, num_samples: int, rng: np.random.Generator | None = None, *, interval: int = 2
) -> np.ndarray:
    """``T`` frames ``interval`` apart from a random start (mmaction ``SampleFrames(clip_len=T)``, train).

    The start is uniform in ``[0, n - T*interval]``. Short clip ``n < T*interval``: start 0 and the
    indices wrap around modulo ``n`` (mmaction's ``loop``).
    """
    _check(num_frames, num_samples)
    span = num_samples * interval
    start = _need_rng(rng, "dense").integers(0, num_frames - span + 1) if num_frames - span + 1 > 0 else 0
    return _as_indices(start + np.arange(num_samples) * interval, num_frames)


def dense_center(
    num_frames: int, num_samples: int, rng: np.random.Generator | None = None, *, interval: int = 2,
    position: float = 0.5,
) -> np.ndarray:
    """Dense clip from the centred start ``int((n - T*interval + 1) * position)`` (mmaction test mode)."""
    _check(num_frames, num_samples)
    room = num_frames - num_samples * interval + 1
    start = int(room * position) if num_frames > num_samples * interval - 1 else 0
    return _as_indices(start + np.arange(num_samples) * interval, num_frames)


SAMPLERS: dict[str, Callable[..., np.ndarray]] = {
    "segment": segment,
    "segment_center": segment_center,
    "segment_t2l": segment_t2l,
    "segment_center_t2l": segment_center_t2l,
    "uniform": uniform,
    "uniform_center": uniform_center,
    "uniform_mid": uniform_mid,
    "dense": dense,
    "dense_center": dense_center,
}
_RANDOM = {"segment", "segment_t2l", "uniform", "dense"}
_POSITIONED = {"segment_center", "segment_center_t2l", "uniform_center", "dense_center"}


def _parse(name: str) -> tuple[str, dict]:
    base, _, arg = name.partition(":")
    if base not in SAMPLERS:
        raise ValueError(f"unknown frame sampler {name!r}; choose one of {sorted(SAMPLERS)} (dense takes 'dense:4')")
    if not arg:
        return base, {}
    if not base.startswith("dense") or not arg.isdigit() or int(arg) < 1:
        raise ValueError(f"bad sampler {name!r}: only dense/dense_center take an interval, e.g. 'dense:4'")
    return base, {"interval": int(arg)}


def get_sampler(name: str) -> Callable[..., np.ndarray]:
    """The sampler called ``name`` (``"segment"``, ``"dense:4"``, ...) as ``f(num_frames, T, rng)``."""
    base, kwargs = _parse(name)
    fn = SAMPLERS[base]
    if not kwargs:
        return fn

    def bound(num_frames: int, num_samples: int, rng: np.random.Generator | None = None, **kw) -> np.ndarray:
        return fn(num_frames, num_samples, rng, **kwargs, **kw)

    return bound


def is_random(name: str) -> bool:
    """Whether the sampler draws from its ``rng`` (False: the same indices every call)."""
    return _parse(name)[0] in _RANDOM


def sample_views(
    name: str, num_frames: int, num_samples: int, num_views: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Indices of ``num_views`` temporal clips of one video, (V, T).

    Random samplers: ``V`` independent draws from ``rng`` (this is what TC-CLIP's and ILA's multi-view
    test does: each view is a training-mode TSN draw, so their multi-view accuracy is stochastic; a
    fixed seed makes ours repeatable). Deterministic samplers: view ``v`` picks position
    ``(v + 1) / (V + 1)`` inside each segment (mmaction ``UniformSample``'s multi-clip rule), which is
    the reference centre for ``V = 1``.
    """
    if num_views < 1:
        raise ValueError(f"num_views must be >= 1, got {num_views}")
    base, kwargs = _parse(name)
    fn = SAMPLERS[base]
    if base in _RANDOM:
        return np.stack([fn(num_frames, num_samples, rng, **kwargs) for _ in range(num_views)])
    if num_views == 1:
        return fn(num_frames, num_samples, rng, **kwargs)[None]
    if base not in _POSITIONED:
        raise ValueError(f"sampler {name!r} has a single deterministic view; use a random or *_center sampler")
    return np.stack([fn(num_frames, num_samples, rng, position=(v + 1) / (num_views + 1), **kwargs)
                     for v in range(num_views)])

