"""The pairwise block bootstrap: deterministic for a seed, and right on clear cases."""

import math

import numpy as np
import pytest

import analytics

A = analytics.periods_per_year(60, ["crypto"])


def _returns():
    rng = np.random.default_rng(7)
    return {
        # +0.2 % vs -0.2 % per round, 1 % noise, 500 rounds: per-round Sharpe 0.2 vs -0.2,
        # the difference is ~0.4 x sqrt(500 / 2) ~ 6 standard errors: clearly better
        "skilled": rng.normal(0.002, 0.01, 500).tolist(),
        "unlucky": rng.normal(-0.002, 0.01, 500).tolist(),
        "coin": rng.normal(0.0, 0.01, 500).tolist(),
    }


def test_block_indices_are_contiguous_runs_cut_to_the_series_length():
    rng = np.random.default_rng(0)
    indices = analytics.significance._block_indices(10, 3, 50, rng)
    assert indices.shape == (50, 10)
    assert indices.min() >= 0 and indices.max() <= 9
    # blocks of 3 start at 0, 3, 6, 9: each block steps by 1 inside
    for resample in indices:
        for start in (0, 3, 6):
            assert list(np.diff(resample[start : start + 3])) == [1, 1]


def test_default_block_length_is_ceil_sqrt_n():
    assert analytics.default_block_length(500) == 23  # sqrt 500 = 22.36
    assert analytics.default_block_length(100) == 10
    assert analytics.default_block_length(0) == 1


def test_same_seed_gives_the_same_intervals_and_another_seed_differs():
    first = analytics.compare_participants(_returns(), periods_per_year=A, seed=42)
    again = analytics.compare_participants(_returns(), periods_per_year=A, seed=42)
    other = analytics.compare_participants(_returns(), periods_per_year=A, seed=43)
    assert first == again
    assert [c.ci_low for c in first] != [c.ci_low for c in other]


@pytest.mark.parametrize("statistic", ["sharpe", "total_return"])
def test_a_clearly_better_series_is_better_and_the_mirror_is_worse(statistic):
    comparisons = analytics.compare_participants(_returns(), statistic=statistic, periods_per_year=A)
    verdicts = {(c.first, c.second): c.verdict for c in comparisons}
    assert verdicts[("skilled", "unlucky")] == "better"
    flipped = analytics.compare_participants(
        {"unlucky": _returns()["unlucky"], "skilled": _returns()["skilled"]},
        statistic=statistic,
        periods_per_year=A,
    )
    assert flipped[0].verdict == "worse"
    assert flipped[0].difference == pytest.approx(-comparisons[0].difference)


def test_identical_series_are_not_distinguishable_with_a_zero_interval():
    series = _returns()["coin"]
    (comparison,) = analytics.compare_participants({"a": series, "b": list(series)}, periods_per_year=A)
    assert comparison.verdict == "not distinguishable"
    assert comparison.difference == 0.0
    assert comparison.ci_low == 0.0 and comparison.ci_high == 0.0


def test_observed_difference_is_the_difference_of_the_statistics():
    returns = _returns()
    (comparison,) = analytics.compare_participants(
        {"skilled": returns["skilled"], "coin": returns["coin"]}, periods_per_year=A
    )
    expected = analytics.sharpe_ratio(returns["skilled"], A) - analytics.sharpe_ratio(returns["coin"], A)
    assert comparison.difference == pytest.approx(expected, rel=1e-12)
    assert comparison.ci_low < comparison.difference < comparison.ci_high


def test_a_single_block_spanning_the_series_resamples_the_series_itself():
    # block length N: the only start is 0, so every resample is the original series and the
    # interval collapses onto the observed difference in total return:
    # a: 1.1 x 0.9 x 1.2 - 1 = 18.8 %; b: 1.0 x 1.0 x 1.1 - 1 = 10 %; difference 8.8 points
    (comparison,) = analytics.compare_participants(
        {"a": [0.1, -0.1, 0.2], "b": [0.0, 0.0, 0.1]},
        statistic="total_return",
        block_length=3,
        n_resamples=20,
    )
    assert comparison.difference == pytest.approx(8.8)
    assert comparison.ci_low == pytest.approx(8.8)
    assert comparison.ci_high == pytest.approx(8.8)
    assert comparison.verdict == "better"


def test_every_pair_once_in_input_order():
    comparisons = analytics.compare_participants(_returns(), periods_per_year=A, n_resamples=200)
    assert [(c.first, c.second) for c in comparisons] == [
        ("skilled", "unlucky"),
        ("skilled", "coin"),
        ("unlucky", "coin"),
    ]
    assert all(c.resamples == 200 and c.block_length == 23 for c in comparisons)


def test_too_few_rounds_is_not_distinguishable_without_an_interval():
    (comparison,) = analytics.compare_participants({"a": [0.1], "b": [-0.1]}, periods_per_year=A)
    assert comparison.verdict == "not distinguishable"
    assert comparison.difference is None and comparison.ci_low is None and comparison.ci_high is None


def test_flat_participants_have_no_sharpe_so_no_verdict():
    # a flat series has no Sharpe in any resample: the interval is undefined
    (comparison,) = analytics.compare_participants(
        {"flat": [0.0] * 50, "coin": _returns()["coin"][:50]}, periods_per_year=A
    )
    assert comparison.difference is None
    assert comparison.ci_low is None
    assert comparison.verdict == "not distinguishable"


def test_misaligned_series_are_refused():
    with pytest.raises(ValueError):
        analytics.compare_participants({"a": [0.1, 0.2], "b": [0.1]})


def test_ten_participants_over_a_month_of_hourly_rounds_compare_every_pair():
    # 45 pairs, 720 rounds, 2000 resamples; its speed is measured by bench/bench_analysis.py
    rng = np.random.default_rng(1)
    returns = {f"p{i}": rng.normal(0.0, 0.01, 720) for i in range(10)}
    comparisons = analytics.compare_participants(returns, periods_per_year=A)
    assert len(comparisons) == 45
    assert all(math.isfinite(c.ci_low) for c in comparisons)
