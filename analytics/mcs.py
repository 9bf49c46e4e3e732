"""The model confidence set (Hansen, Lunde & Nason 2011) of agents, through arch.bootstrap.MCS.

Losses per window and agent in; the set of agents not rejected as worse than the best at the
stated size out, with MCS p-values and the elimination order. arch is the reference
implementation researchers use, so Gauntlet calls it rather than re-deriving it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from arch.bootstrap import MCS

DEFAULT_SIZE = 0.10  # a 90 % confidence set, as in Hansen, Lunde & Nason's applications
DEFAULT_REPS = 1000
# Windows are the independent unit everywhere else (the paired bootstrap resamples them iid),
# so the stationary bootstrap's mean block is one window; raise it for overlapping windows.
DEFAULT_BLOCK_SIZE = 1


@dataclass(frozen=True)
class ModelConfidenceSet:
    """Members at 1 - size, MCS p-values per agent and the elimination order (worst first)."""

    size: float
    method: str
    block_size: int
    reps: int
    seed: int
    windows: int
    members: tuple[str, ...] = ()
    p_values: dict[str, float] = field(default_factory=dict)
    elimination_order: tuple[str, ...] = ()  # the first eliminated first; the last survivor last
    note: str = ""  # why the set could not be computed, or how ties were handled


def _same_losses(first: np.ndarray, second: np.ndarray) -> bool:
    return bool(np.allclose(first, second, rtol=0.0, atol=1.0e-12))


def _constant_difference(first: np.ndarray, second: np.ndarray) -> bool:
    return float(np.ptp(first - second)) <= 1.0e-12


def model_confidence_set(
    losses: Mapping[str, Sequence[float]],
    *,
    size: float = DEFAULT_SIZE,
    block_size: int = DEFAULT_BLOCK_SIZE,
    reps: int = DEFAULT_REPS,
    seed: int = 0,
) -> ModelConfidenceSet:
    """MCS by arch (method "R", stationary bootstrap) on a balanced panel: losses[agent][w], lower is better.

    Every agent's sequence must cover the same windows in the same order. Agents with exactly
    the same losses are one model to the test (arch's variance of their difference is zero and
    it would divide by it): they are tested once and share fate and p-value. If two distinct
    agents still differ by a constant in every window, the bootstrap cannot standardise the
    difference and the set is not computed (members empty, note says why).
    """
    names = list(losses)
    columns = [np.asarray(losses[name], dtype=float) for name in names]
    windows = len(columns[0]) if columns else 0
    result = {"size": size, "method": "R", "block_size": block_size, "reps": reps, "seed": seed}
    if any(len(column) != windows for column in columns):
        raise ValueError("every agent needs a loss for the same windows")
    if not names:
        return ModelConfidenceSet(**result, windows=0, note="no agents")
    if windows < 2:
        return ModelConfidenceSet(**result, windows=windows, note="fewer than 2 common windows")

    representatives: list[int] = []  # first agent of each group of identical losses
    group_of: dict[int, int] = {}
    for index, column in enumerate(columns):
        twin = next((rep for rep in representatives if _same_losses(columns[rep], column)), None)
        if twin is None:
            representatives.append(index)
            twin = index
        group_of[index] = twin
    groups = {rep: [i for i in range(len(names)) if group_of[i] == rep] for rep in representatives}
    note = "agents with identical losses are tested as one" if len(representatives) < len(names) else ""

    if len(representatives) == 1:
        return ModelConfidenceSet(
            **result,
            windows=windows,
            members=tuple(names),
            p_values=dict.fromkeys(names, 1.0),
            elimination_order=tuple(names),
            note=note,
        )
    for position, first in enumerate(representatives):
        for second in representatives[position + 1 :]:
            if _constant_difference(columns[first], columns[second]):
                return ModelConfidenceSet(
                    **result,
                    windows=windows,
                    note=f"{names[first]} and {names[second]} differ by a constant in every window",
                )

    panel = np.column_stack([columns[rep] for rep in representatives])
    test = MCS(panel, size=size, reps=reps, block_size=block_size, method="R", bootstrap="stationary", seed=seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a NaN statistic must not pass as a p-value
            test.compute()
    except (RuntimeWarning, IndexError) as failure:
        return ModelConfidenceSet(**result, windows=windows, note=f"the test is undefined here: {failure}")
    pvalues = test.pvalues["Pvalue"]
    p_values: dict[str, float] = {}
    order: list[str] = []
    for column_index, p_value in zip(pvalues.index, pvalues.to_numpy(), strict=True):
        for agent_index in groups[representatives[int(column_index)]]:
            p_values[names[agent_index]] = float(p_value)
            order.append(names[agent_index])
    members = tuple(name for name in names if p_values[name] > size)
    return ModelConfidenceSet(
        **result,
        windows=windows,
        members=members,
        p_values=p_values,
        elimination_order=tuple(order),
        note=note,
    )
