"""Spread of repeated measurements: the 95 % t-interval of a mean over seeds, and median / IQR of timings.

* :func:`t_quantile` - the two-sided 95 % Student-t quantile ``t(0.975, df)``;
* :func:`mean_interval` - mean, sample std and 95 % t-interval over independent runs (seeds);
* :func:`seeds_for_half_width` - how many seeds a given spread needs for a half-width target;
* :func:`median_iqr` - median and interquartile range of timed repeats;
* :func:`overlapping` - which pairs of (low, high) ranges overlap (differences within the spread).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

__all__ = ["mean_interval", "median_iqr", "overlapping", "seeds_for_half_width", "t_quantile"]

# t(0.975, df) for df = 1..30 (standard tables); beyond 30 the Cornish-Fisher expansion below is exact to 1e-3.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
         2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959964


def t_quantile(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (``df >= 1``)."""
    if df < 1:
        raise ValueError(f"a t-interval needs at least 1 degree of freedom (2 values); got df={df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def mean_interval(values: Sequence[float]) -> dict[str, object]:
    """Mean and 95 % t-interval of ``values`` (one per seed; NaNs are left out).

    Returns ``{"mean", "std", "n", "half_width", "low", "high", "values"}``: ``std`` is the sample standard
    deviation (n - 1), ``half_width = t(0.975, n - 1) * std / sqrt(n)``. With fewer than two values the
    interval is unknown (``half_width``, ``low``, ``high`` and ``std`` are NaN); with none the mean is NaN too.
    """
    clean = [float(v) for v in values if v is not None and v == v]
    n = len(clean)
    mean = math.fsum(clean) / n if n else math.nan
    if n < 2:
        std = half = math.nan
    else:
        std = statistics.stdev(clean)
        half = t_quantile(n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "half_width": half, "low": mean - half, "high": mean + half,
            "values": [float(v) for v in values]}


def seeds_for_half_width(std: float, target: float, *, limit: int = 1000) -> int | None:
    """The fewest seeds whose 95 % t-interval half-width is at most ``target`` for this ``std``.

    ``None`` when ``std`` is unknown (NaN) or more than ``limit`` seeds would be needed."""
    if std != std:
        return None
    for n in range(2, limit + 1):
        if t_quantile(n - 1) * std / math.sqrt(n) <= target:
            return n
    return None


def median_iqr(values: Sequence[float]) -> dict[str, object]:
    """``{"median", "q1", "q3", "iqr", "n", "values"}`` of ``values`` (quartiles by linear interpolation,
    the 'inclusive' method: with 5 values q1 and q3 are the 2nd and 4th smallest)."""
    clean = sorted(float(v) for v in values)
    n = len(clean)
    if n == 0:
        return {"median": math.nan, "q1": math.nan, "q3": math.nan, "iqr": math.nan, "n": 0, "values": []}
    if n == 1:
        q1 = q3 = clean[0]
    else:
        q1, _, q3 = statistics.quantiles(clean, n=4, method="inclusive")
    return {"median": statistics.median(clean), "q1": q1, "q3": q3, "iqr": q3 - q1, "n": n,
            "values": [float(v) for v in values]}


def overlapping(ranges: Mapping[str, tuple[float, float]]) -> list[tuple[str, str]]:
    """Pairs of names whose closed ``(low, high)`` ranges overlap, in the mapping's order."""
    names = list(ranges)
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            (lo_a, hi_a), (lo_b, hi_b) = ranges[a], ranges[b]
            if lo_a <= hi_b and lo_b <= hi_a:
                pairs.append((a, b))
    return pairs
