"""Number handling shared by the analytics modules: floats in, None for undefined."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import numpy as np

Number = float | int | Decimal


def _to_floats(values: Iterable[Number]) -> np.ndarray:
    return np.array([float(value) for value in values], dtype=float)


def _optional_float(value: Number | None) -> float | None:
    return None if value is None else float(value)


# Returns computed from a compounding equity series differ in the last bits even when
# they are "the same"; dividing by that residue would give a Sharpe near 1e15.
_DISPERSION_TOLERANCE = 1e-12


def _no_dispersion(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """True where the values are all equal within 1e-12 of their largest magnitude."""
    spread = np.ptp(values, axis=axis)
    scale = np.max(np.abs(values), axis=axis)
    return spread <= _DISPERSION_TOLERANCE * scale
