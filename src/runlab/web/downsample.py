"""Downsampling long series for charts: min/max buckets, so a spike survives.

A chart a thousand pixels wide cannot show a million steps; averaging or striding would hide
the one step where the loss exploded. Each bucket keeps its first, minimum, maximum and last
point (in x order), so the drawn line passes through every extreme (the M4 idea).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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
