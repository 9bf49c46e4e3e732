"""Power of a paired comparison over windows: the smallest detectable difference, windows needed.

Normal approximation for a two-sided test of a mean paired difference (conventions and worked
values in docs/tournament-statistics.md).
"""

from __future__ import annotations

import math

from scipy import stats


def z_sum(alpha: float = 0.05, power: float = 0.80) -> float:
    """z_(1 - alpha/2) + z_power; 2.8015852182 at the 5 % level and 80 % power."""
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be between 0 and 1")
    return float(stats.norm.ppf(1.0 - alpha / 2.0) + stats.norm.ppf(power))


def minimum_detectable_difference(
    sd_difference: float, windows: int, *, alpha: float = 0.05, power: float = 0.80
) -> float | None:
    """MDD = (z_(1 - alpha/2) + z_power) s_d / sqrt(n); None without windows."""
    if windows < 1:
        return None
    return z_sum(alpha, power) * sd_difference / math.sqrt(windows)


def windows_needed(
    sd_difference: float, difference: float, *, alpha: float = 0.05, power: float = 0.80
) -> int | None:
    """n = ceil(((z_(1 - alpha/2) + z_power) s_d / delta)^2), at least 2 (a spread needs two windows).

    None for a zero difference (no number of windows detects it). The 1e-9 slack keeps float
    residue of an exact integer (MDD fed back in) from adding a window.
    """
    if difference == 0:
        return None
    exact = (z_sum(alpha, power) * sd_difference / abs(difference)) ** 2
    return max(2, math.ceil(exact - 1.0e-9))
