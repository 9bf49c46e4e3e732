"""The memory gap (docs/memory.md): how much of an agent's result its memory may explain.

Pure (numpy and the tournament statistics' own conventions, analytics.tournament and
analytics.resampling): a window is the unit of independence, an agent's instances in a
window are averaged first, intervals are seeded percentile bootstraps over windows.

- Masked gap: the same lineup on the same windows, unmasked and masked. Per agent and
  window d_w = metric(unmasked) - metric(masked); the gap is mean(d) with the bootstrap
  interval of the mean over the windows both runs have (paired, as analytics.tournament
  compares agents). A positive gap: the agent did better where it could recognise history.
- Cutoff gap: one run (unmasked) whose windows lie before and after the agent's training
  cutoff. The gap is mean(before) - mean(after), the interval a two-sample bootstrap (each
  group resampled on its own, same seed convention). Before and after are different
  markets, so this gap mixes memory with regime: the masked gap is the cleaner measure.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from analytics.resampling import (
    DEFAULT_RESAMPLES,
    Interval,
    bootstrap_indices,
    bootstrap_interval,
    percentile_interval,
)
from analytics.tournament import RunResult, paired_differences, window_values


@dataclass(frozen=True)
class Gap:
    """A difference of means with its bootstrap interval (None with fewer than 2 windows a side)."""

    value: float | None
    interval: Interval | None
    windows: int  # paired windows (masked gap), or windows before + after (cutoff gap)


@dataclass(frozen=True)
class AgentMemoryGap:
    agent: str
    metric: str
    masked: Gap | None  # None: no masked run of this agent
    cutoff: Gap | None  # None: cutoff unknown, or no window on one side of it
    windows_before_cutoff: int = 0
    windows_after_cutoff: int = 0


def masked_gap(
    unmasked: Mapping[Hashable, float], masked: Mapping[Hashable, float], *, resamples: int, seed: int, level: float
) -> Gap:
    differences = paired_differences(unmasked, masked)
    if not differences:
        return Gap(None, None, 0)
    interval = bootstrap_interval(differences, np.mean, resamples=resamples, seed=seed, level=level)
    return Gap(float(np.mean(differences)), interval, len(differences))


def two_sample_gap(before: Sequence[float], after: Sequence[float], *, resamples: int, seed: int, level: float) -> Gap:
    if not before or not after:
        return Gap(None, None, len(before) + len(after))
    value = float(np.mean(before) - np.mean(after))
    if len(before) < 2 or len(after) < 2:
        return Gap(value, None, len(before) + len(after))
    first, second = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    # each group its own draws (seed, seed + 1), so the interval does not depend on group order
    means = (first[bootstrap_indices(len(first), resamples, seed)].mean(axis=1)
             - second[bootstrap_indices(len(second), resamples, seed + 1)].mean(axis=1))
    return Gap(value, percentile_interval(means, level), len(before) + len(after))


def memory_gaps(
    runs: Sequence[RunResult],
    *,
    masked_runs: Sequence[RunResult] = (),
    window_starts: Mapping[Hashable, datetime] | None = None,
    cutoffs: Mapping[str, datetime | None] | None = None,
    metric: str = "return_pct",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> list[AgentMemoryGap]:
    """Per agent of `runs` (unmasked): its masked gap (when `masked_runs` has the agent, windows
    matched by key) and its cutoff gap (when `cutoffs` gives the first moment after its
    training cutoff and `window_starts` the real start of each window; a window starting
    before the cutoff is in-sample)."""
    agents = sorted({run.agent for run in runs})
    masked_agents = {run.agent for run in masked_runs}
    results = []
    for agent in agents:
        values = window_values(runs, agent, metric)
        masked = None
        if agent in masked_agents:
            masked = masked_gap(values, window_values(masked_runs, agent, metric), resamples=resamples, seed=seed,
                                level=level)
        cutoff = (cutoffs or {}).get(agent)
        before: list[float] = []
        after: list[float] = []
        if cutoff is not None and window_starts:
            for window in sorted(values, key=str):
                start = window_starts.get(window)
                if start is not None:
                    (before if start < cutoff else after).append(values[window])
        gap = two_sample_gap(before, after, resamples=resamples, seed=seed, level=level) if cutoff else None
        results.append(AgentMemoryGap(agent, metric, masked, gap, len(before), len(after)))
    return results
