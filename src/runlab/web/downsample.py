"""Downsampling long series for charts: min/max buckets, so a spike survives.

A chart a thousand pixels wide cannot show a million steps; averaging or striding would hide
the one step where the loss exploded. Each bucket keeps its first, minimum, maximum and last
point (in x order), so the drawn line passes through every extreme (the M4 idea).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Point = tuple[float, float]


def min_max_buckets(xs: Sequence[float], ys: Sequence[float | None], points: int) -> list[Point]:
    """At most about ``points`` points of (xs, ys); None and non-finite y values are dropped;
    the first and last points, and every bucket's minimum and maximum, are kept."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if y is not None and math.isfinite(y)]
    if len(pairs) <= max(points, 4):
        return pairs
    buckets = max(1, points // 4)
    size = len(pairs) / buckets
    out: list[Point] = []
    for b in range(buckets):
        chunk = pairs[int(b * size) : int((b + 1) * size)]
        if not chunk:
            continue
        low = min(range(len(chunk)), key=lambda i: chunk[i][1])
        high = max(range(len(chunk)), key=lambda i: chunk[i][1])
        for i in sorted({0, low, high, len(chunk) - 1}):
            out.append(chunk[i])
    return out


def min_max_array(xs: Any, ys: Any, points: int) -> list[Point]:
    """:func:`min_max_buckets` of NumPy arrays, the same points (each bucket's first,
    minimum, maximum and last; the first of equal extremes), without a Python loop over the
    points: a 1,000,000-step series in milliseconds."""
    import numpy as np

    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    keep = np.isfinite(ys)
    xs, ys = xs[keep], ys[keep]
    n = len(ys)
    if n <= max(points, 4):
        return list(zip(xs.tolist(), ys.tolist(), strict=True))
    buckets = max(1, points // 4)
    size = n / buckets
    out: list[Point] = []
    for b in range(buckets):
        lo, hi = int(b * size), int((b + 1) * size)
        if hi <= lo:
            continue
        chunk = ys[lo:hi]
        for i in sorted({0, int(chunk.argmin()), int(chunk.argmax()), hi - lo - 1}):
            out.append((float(xs[lo + i]), float(ys[lo + i])))
    return out
