"""Seeded bootstrap over independent units (tournament windows): indices and percentile intervals.

Pure numpy. A window is the unit of independence (its instances share the market path), so
callers pass one value per window and whole windows are resampled, never single runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A two-sided percentile bootstrap interval at `level` (0.95 for 95 %)."""

    low: float
    high: float
    level: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """A (resamples, n) matrix of indices drawn with replacement; the same seed gives the same matrix.

    Each call starts its own generator from `seed`, so one agent's interval does not depend
    on how many other intervals were drawn before it.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if resamples < 1:
        raise ValueError("resamples must be at least 1")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def resampled_statistic(
    values: Sequence[float],
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """The statistic (np.mean, np.median: anything taking `axis=`) of each bootstrap resample."""
    data = np.asarray(values, dtype=float)
    return np.asarray(statistic(data[bootstrap_indices(len(data), resamples, seed)], axis=1), dtype=float)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> Interval:
    """Percentile interval: numpy's linear quantiles at (1 - level) / 2 and (1 + level) / 2."""
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    low, high = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Interval(low=float(low), high=float(high), level=level)


def bootstrap_interval(
    values: Sequence[float],
    statistic: Callable[..., np.ndarray] = np.mean,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Interval | None:
    """Percentile bootstrap interval of a statistic over units; None with fewer than 2 units.

    One unit resamples to itself every time: a zero-width interval would claim a certainty
    the data cannot give, so there is no interval.
    """
    if len(values) < 2:
        return None
    samples = resampled_statistic(values, statistic, resamples=resamples, seed=seed)
    return percentile_interval(samples, level)
