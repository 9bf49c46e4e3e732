"""Paired comparison of two agents over common windows: interval, p-values, Holm, verdict.

Pure functions over per-window differences d_w = metric(A, w) - metric(B, w). Conventions
and sources are in docs/tournament-statistics.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from analytics.resampling import DEFAULT_RESAMPLES, Interval, percentile_interval, resampled_statistic

PairedTest = Literal["wilcoxon", "bootstrap"]
Verdict = Literal["better", "worse", "not distinguishable"]

# Tournaments have tens of windows: the signed-rank test keeps its level there (exact null
# distribution without ties), while a percentile-bootstrap p-value is too small at small n.
DEFAULT_PAIRED_TEST: PairedTest = "wilcoxon"


def bootstrap_p_value(resampled_means: np.ndarray, observed_mean: float) -> float:
    """Two-sided paired-bootstrap p: twice the share of resampled means on the other side of 0, <= 1.

    A resampled mean of exactly 0 counts as the other side (the conservative choice), so an
    observed mean of 0 gives p = 1.
    """
    if observed_mean > 0:
        other_side = float(np.mean(resampled_means <= 0))
    elif observed_mean < 0:
        other_side = float(np.mean(resampled_means >= 0))
    else:
        return 1.0
    return min(1.0, 2.0 * other_side)


def wilcoxon_p_value(differences: Sequence[float]) -> float | None:
    """Two-sided Wilcoxon signed-rank p (scipy.stats.wilcoxon defaults: zero differences dropped).

    None with no difference; 1 when every difference is zero (no evidence either way; scipy
    would divide by zero there).
    """
    values = np.asarray(differences, dtype=float)
    if len(values) == 0:
        return None
    if not np.any(values != 0):
        return 1.0
    return float(stats.wilcoxon(values).pvalue)


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm (1979) step-down: sorted ascending, adjusted p_(k) = max_{j<=k} min(1, (m - j + 1) p_(j)).

    Returned in the input order. Ties keep their input order when sorted, which cannot change
    the result: tied p-values get the same adjusted value through the running maximum.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda index: p_values[index])
    adjusted = [0.0] * m
    running_max = 0.0
    for rank, index in enumerate(order):
        running_max = max(running_max, min(1.0, (m - rank) * float(p_values[index])))
        adjusted[index] = running_max
    return adjusted


def verdict(mean_difference: float | None, p_adjusted: float | None, alpha: float = 0.05) -> Verdict:
    """Better / worse when the adjusted p is below alpha (sign of the mean difference), else not distinguishable."""
    if mean_difference is None or p_adjusted is None or p_adjusted >= alpha or mean_difference == 0:
        return "not distinguishable"
    return "better" if mean_difference > 0 else "worse"


@dataclass(frozen=True)
class PairedDifference:
    """One pair on one metric before the Holm adjustment (which needs every pair)."""

    windows: int
    mean_difference: float | None
    sd_difference: float | None  # ddof = 1; None with fewer than 2 windows
    interval: Interval | None
    p_bootstrap: float | None
    p_wilcoxon: float | None


def paired_difference(
    differences: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> PairedDifference:
    """Mean paired difference with its percentile bootstrap interval and both p-values.

    Fewer than 2 windows give no interval and no p-value: one window cannot show a spread.
    """
    values = np.asarray(differences, dtype=float)
    n = len(values)
    if n == 0:
        return PairedDifference(0, None, None, None, None, None)
    mean = float(values.mean())
    if n < 2:
        return PairedDifference(n, mean, None, None, None, None)
    resampled_means = resampled_statistic(values, np.mean, resamples=resamples, seed=seed)
    return PairedDifference(
        windows=n,
        mean_difference=mean,
        sd_difference=float(values.std(ddof=1)),
        interval=percentile_interval(resampled_means, level),
        p_bootstrap=bootstrap_p_value(resampled_means, mean),
        p_wilcoxon=wilcoxon_p_value(values),
    )
