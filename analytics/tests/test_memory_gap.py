"""The memory gap: masked vs unmasked (paired by window) and before vs after the cutoff."""

from datetime import UTC, datetime

import pytest

from analytics.memory_gap import memory_gaps, two_sample_gap
from analytics.tournament import RunResult


def _run(agent, window, return_pct, instance=0):
    return RunResult(agent=agent, window=window, instance=instance, return_pct=return_pct, sharpe=None,
                     max_drawdown_pct=0.0)


def test_the_masked_gap_is_the_mean_paired_difference_with_its_interval():
    unmasked = [_run("model", w, r) for w, r in enumerate([5.0, 7.0, 6.0, 8.0])]
    unmasked += [_run("model", 0, 9.0, instance=1)]  # instances average first: window 0 -> 7.0
    masked = [_run("model", w, r) for w, r in enumerate([1.0, 2.0, 2.0, 3.0])]

    (gap,) = memory_gaps(unmasked, masked_runs=masked, resamples=500, seed=1)

    assert gap.masked.windows == 4
    assert gap.masked.value == pytest.approx((6 + 5 + 4 + 5) / 4)  # (7-1, 7-2, 6-2, 8-3)
    assert 4 <= gap.masked.interval.low <= gap.masked.value <= gap.masked.interval.high <= 6
    assert gap.cutoff is None


def test_a_baseline_has_no_masked_gap():
    runs = [_run("baseline", w, r) for w, r in enumerate([1.0, -1.0, 2.0])]
    (gap,) = memory_gaps(runs, masked_runs=list(runs), resamples=200)
    assert gap.masked.value == 0 and gap.masked.interval.low == gap.masked.interval.high == 0


def test_the_cutoff_gap_splits_windows_at_the_cutoff():
    starts = {w: datetime(2024, 1 + w, 1, tzinfo=UTC) for w in range(6)}
    runs = [_run("model", w, r) for w, r in enumerate([10.0, 12.0, 11.0, 1.0, 2.0, 0.0])]
    cutoff = datetime(2024, 4, 1, tzinfo=UTC)  # windows 0-2 start before it

    (gap,) = memory_gaps(runs, window_starts=starts, cutoffs={"model": cutoff}, resamples=500, seed=3)

    assert (gap.windows_before_cutoff, gap.windows_after_cutoff) == (3, 3)
    assert gap.cutoff.value == pytest.approx(11.0 - 1.0)
    assert gap.cutoff.interval.low > 0  # clearly better on what it may remember
    unknown = memory_gaps(runs, window_starts=starts, cutoffs={"model": None})[0]
    assert unknown.cutoff is None


def test_one_window_a_side_gives_a_value_but_no_interval():
    gap = two_sample_gap([3.0], [1.0, 2.0], resamples=100, seed=0, level=0.95)
    assert gap.value == pytest.approx(1.5) and gap.interval is None
