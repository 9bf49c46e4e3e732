"""Time series helpers for charts and tests: downsampling, drawdown, returns on one grid.

A series is a list of (market time, value) points, oldest first. Pure: no Django, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from analytics.metrics import returns_from_equity

TimePoint = tuple[datetime, float]


def downsample(points: Sequence[TimePoint], target_points: int) -> list[TimePoint]:
    """About `target_points` points: the first point, then the last point of each of
    ceil(n / bucket) equal buckets (so the final point is always kept). Unchanged when short."""
    if target_points < 1:
        raise ValueError("target_points must be at least 1")
    if len(points) <= target_points:
        return list(points)
    bucket = math.ceil(len(points) / target_points)
    kept = [points[0]]
    for end in range(bucket - 1, len(points), bucket):
        if end != 0:
            kept.append(points[end])
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def downsample_deepest(points: Sequence[TimePoint], target_points: int) -> list[TimePoint]:
    """Like downsample, but each bucket keeps its lowest point (a drawdown chart must show
    the trough), plus the first and final points."""
    if target_points < 1:
        raise ValueError("target_points must be at least 1")
    if len(points) <= target_points:
        return list(points)
    bucket = math.ceil(len(points) / target_points)
    kept = [points[0]]
    for start in range(1, len(points) - 1, bucket):
        chunk = points[start : min(start + bucket, len(points) - 1)]
        kept.append(min(chunk, key=lambda point: point[1]))
    kept.append(points[-1])
    return kept


def drawdown_series(equity: Sequence[TimePoint]) -> list[TimePoint]:
    """[(time, drawdown %)]: E_t / running peak - 1, x 100 (<= 0; 0 while the peak is <= 0)."""
    points: list[TimePoint] = []
    peak = -math.inf
    for moment, value in equity:
        peak = max(peak, value)
        points.append((moment, (value / peak - 1.0) * 100.0 if peak > 0 else 0.0))
    return points


def aligned_returns[Key](histories: Mapping[Key, Sequence[TimePoint]]) -> dict[Key, list[float]]:
    """Per-round returns of each series on one grid: the union of their market times.

    histories: key -> [(time, equity)] with the capital point first (an empty history is a
    participant not marked yet: flat). The capital point is not on the grid; before its
    first mark a participant holds its capital, after its last its equity carries forward
    (return 0, e.g. a disqualified participant no longer marked).
    """
    grid = sorted({moment for points in histories.values() for moment, _ in points[1:]})
    returns: dict[Key, list[float]] = {}
    for key, points in histories.items():
        current = points[0][1] if points else 0.0
        values = [current]
        index = 1
        for moment in grid:
            while index < len(points) and points[index][0] <= moment:
                current = points[index][1]
                index += 1
            values.append(current)
        returns[key] = returns_from_equity(values)
    return returns
