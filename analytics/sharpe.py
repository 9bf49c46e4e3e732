"""How sure a Sharpe ratio is: Lo's standard error, the probabilistic and the deflated Sharpe ratio.

Pure functions over plain sequences of per-period returns (no Django, no other app). The
Sharpe ratio here is per period, not annualised, because the formulas are stated per period;
conventions and sources are in docs/tournament-statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

EULER_MASCHERONI = 0.5772156649015329


@dataclass(frozen=True)
class SharpeMoments:
    """The sample facts of one return series that PSR and DSR need."""

    n: int
    mean: float
    sd: float  # sample standard deviation, ddof = 1
    sharpe: float  # mean / sd, per period
    skewness: float  # g3 = m3 / m2^1.5, population moments
    kurtosis: float  # g4 = m4 / m2^2, not excess (3 for a normal)


def sharpe_moments(returns: Sequence[float]) -> SharpeMoments | None:
    """Mean, sd, SR, g3 and g4 of per-period returns; None with fewer than 2 returns or no spread.

    No spread means all returns equal within 1e-12 of their largest magnitude, so the float
    residue of a flat or constantly compounding equity is not read as a huge Sharpe.
    """
    values = np.asarray([float(value) for value in returns], dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    scale = max(float(np.abs(values).max()), 1.0e-300)
    if float(np.ptp(values)) <= 1.0e-12 * scale:
        return None
    mean = float(values.mean())
    centred = values - mean
    m2 = float(np.mean(centred**2))
    m3 = float(np.mean(centred**3))
    m4 = float(np.mean(centred**4))
    sd = float(values.std(ddof=1))
    return SharpeMoments(
        n=len(values),
        mean=mean,
        sd=sd,
        sharpe=mean / sd,
        skewness=m3 / m2**1.5,
        kurtosis=m4 / m2**2,
    )


def lo_standard_error(sharpe: float, n: int) -> float | None:
    """Lo (2002), iid returns: SE(SR) = sqrt((1 + SR^2 / 2) / n); None without returns."""
    if n < 1:
        return None
    return math.sqrt((1.0 + sharpe**2 / 2.0) / n)


def probabilistic_sharpe_ratio(moments: SharpeMoments, benchmark: float = 0.0) -> float | None:
    """Bailey & Lopez de Prado (2012): the probability that the true SR exceeds the benchmark SR*.

    PSR(SR*) = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2)). The root's
    argument is >= (1 - g3 SR / 2)^2 >= 0 because g4 >= 1 + g3^2; it is zero only for
    degenerate two-point data, where the ratio is undefined (None).
    """
    sharpe = moments.sharpe
    spread = 1.0 - moments.skewness * sharpe + (moments.kurtosis - 1.0) / 4.0 * sharpe**2
    if spread <= 1.0e-15:
        return None
    z = (sharpe - benchmark) * math.sqrt(moments.n - 1) / math.sqrt(spread)
    return float(stats.norm.cdf(z))


def expected_maximum_sharpe(trials: int, variance: float) -> float:
    """SR* of the deflated Sharpe ratio: the SR the best of `trials` skill-less strategies reaches.

    Bailey & Lopez de Prado (2014): SR* = sqrt(V) ((1 - gamma) PhiInv(1 - 1/N)
    + gamma PhiInv(1 - 1/(N e))). One trial has nothing to deflate: the expected maximum of a
    single zero-mean draw is 0 (the formula's PhiInv(0) would be minus infinity).
    """
    if trials < 1:
        raise ValueError("trials must be at least 1")
    if variance < 0:
        raise ValueError("variance must be >= 0")
    if trials == 1:
        return 0.0
    first = stats.norm.ppf(1.0 - 1.0 / trials)
    second = stats.norm.ppf(1.0 - 1.0 / (trials * math.e))
    return float(math.sqrt(variance) * ((1.0 - EULER_MASCHERONI) * first + EULER_MASCHERONI * second))


def deflated_sharpe_ratio(moments: SharpeMoments, trials: int, variance: float) -> float | None:
    """DSR = PSR(SR*) with SR* the expected maximum SR of `trials` trials whose SRs vary by V."""
    return probabilistic_sharpe_ratio(moments, expected_maximum_sharpe(trials, variance))
