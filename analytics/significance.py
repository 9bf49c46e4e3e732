"""Is one participant better than another? A paired moving-block bootstrap (docs/analytics.md).

Pure: per-round returns in, intervals and verdicts out. The compare page and the API call
it through competitions.selectors.significance_matrix or the page's own chosen pairs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from analytics._numbers import Number, _no_dispersion, _to_floats

Statistic = Literal["sharpe", "total_return"]
Verdict = Literal["better", "worse", "not distinguishable"]


@dataclass(frozen=True)
class PairComparison:
    """Is `first` better than `second`? Difference = statistic(first) - statistic(second)."""

    first: str
    second: str
    statistic: Statistic
    difference: float | None  # on the observed series
    ci_low: float | None
    ci_high: float | None
    verdict: Verdict
    block_length: int = 0
    resamples: int = 0


_RESAMPLE_CELLS = 2_000_000


def default_block_length(n_returns: int) -> int:
    """ceil(sqrt(N)), at least 1: long enough to keep short-range autocorrelation."""
    return max(1, math.ceil(math.sqrt(n_returns)))


def _block_indices(n: int, block_length: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    # moving block bootstrap: uniform block starts in [0, N - L], blocks concatenated, cut to N
    n_blocks = math.ceil(n / block_length)
    starts = rng.integers(0, n - block_length + 1, size=(n_resamples, n_blocks))
    return (starts[:, :, None] + np.arange(block_length)).reshape(n_resamples, -1)[:, :n]


def _statistic_per_row(
    samples: np.ndarray, statistic: Statistic, periods_per_year: float, risk_free_per_period: float
) -> np.ndarray:
    """The statistic along axis 1; NaN where undefined (zero std)."""
    if statistic == "total_return":
        return (np.prod(1.0 + samples, axis=1) - 1.0) * 100.0
    excess = samples - risk_free_per_period
    std = excess.std(axis=1, ddof=1)
    constant = _no_dispersion(excess, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = excess.mean(axis=1) / std * math.sqrt(periods_per_year)
    sharpe[constant] = np.nan
    return sharpe


def compare_participants(
    returns: Mapping[str, Sequence[Number]],
    *,
    statistic: Statistic = "sharpe",
    periods_per_year: float = 1.0,
    n_resamples: int = 2000,
    block_length: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    risk_free_per_period: float = 0.0,
) -> list[PairComparison]:
    """Paired moving-block bootstrap of the difference in Sharpe or total return, every pair.

    returns: participant -> per-round returns, aligned on the same rounds. Each resample
    draws one set of round indices shared by all participants (the same market for all),
    so the comparison is paired. Percentile CI at `confidence`; verdict "better" when the
    whole interval is above 0, "worse" when below, else "not distinguishable".
    Deterministic for a fixed seed (numpy default_rng). Pairs are (i, j) for i < j in
    input order; (j, i) is the mirror image.
    """
    names = list(returns)
    matrix = np.vstack([_to_floats(returns[name]) for name in names]) if names else np.empty((0, 0))
    n = matrix.shape[1] if names else 0
    if any(len(returns[name]) != n for name in names):
        raise ValueError("return series must be aligned on the same rounds")
    length = min(block_length or default_block_length(n), max(n, 1))
    observed = (
        _statistic_per_row(matrix, statistic, periods_per_year, risk_free_per_period) if n >= 2 else None
    )

    resampled: np.ndarray | None = None
    if n >= 2 and names:
        rng = np.random.default_rng(seed)
        resampled = np.empty((len(names), n_resamples))
        # resample in chunks of ~2M cells so memory stays flat however long the competition
        chunk = max(1, _RESAMPLE_CELLS // n)
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            indices = _block_indices(n, length, stop - start, rng)
            for row, series in enumerate(matrix):
                resampled[row, start:stop] = _statistic_per_row(
                    series[indices], statistic, periods_per_year, risk_free_per_period
                )

    tail = (1.0 - confidence) / 2.0 * 100.0
    comparisons = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            difference = None
            ci_low = ci_high = None
            verdict: Verdict = "not distinguishable"
            if observed is not None and resampled is not None:
                observed_difference = observed[i] - observed[j]
                difference = None if math.isnan(observed_difference) else float(observed_difference)
                differences = resampled[i] - resampled[j]
                differences = differences[~np.isnan(differences)]
                # a CI from under half the resamples says more about the NaNs than the skill
                if len(differences) >= n_resamples / 2:
                    ci_low = float(np.percentile(differences, tail))
                    ci_high = float(np.percentile(differences, 100.0 - tail))
                    if ci_low > 0:
                        verdict = "better"
                    elif ci_high < 0:
                        verdict = "worse"
            comparisons.append(
                PairComparison(
                    first=names[i],
                    second=names[j],
                    statistic=statistic,
                    difference=difference,
                    ci_low=ci_low,
                    ci_high=ci_high,
                    verdict=verdict,
                    block_length=length,
                    resamples=n_resamples,
                )
            )
    return comparisons
