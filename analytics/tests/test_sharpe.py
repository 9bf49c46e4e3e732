"""Lo's SE, PSR and DSR against the worked values in STATISTICS.md (computed independently)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics import sharpe

WORKED_RETURNS = [0.012, -0.004, 0.007, 0.015, -0.010, 0.003, 0.009, -0.002, 0.011, 0.006, -0.007, 0.013]


@pytest.fixture
def moments():
    return sharpe.sharpe_moments(WORKED_RETURNS)


def test_the_worked_series_has_the_worked_moments(moments):
    assert moments.n == 12
    assert moments.mean == pytest.approx(0.0044166667, abs=1e-10)
    assert moments.sd == pytest.approx(0.0083607126, abs=1e-10)
    assert moments.sharpe == pytest.approx(0.5282643811, abs=1e-9)
    assert moments.skewness == pytest.approx(-0.4372075474, abs=1e-9)
    assert moments.kurtosis == pytest.approx(1.8379501360, abs=1e-9)


def test_skewness_and_kurtosis_follow_scipys_biased_population_moments(moments):
    assert moments.skewness == pytest.approx(stats.skew(WORKED_RETURNS, bias=True), rel=1e-12)
    assert moments.kurtosis == pytest.approx(stats.kurtosis(WORKED_RETURNS, fisher=False, bias=True), rel=1e-12)


def test_lo_standard_error_of_the_worked_sharpe(moments):
    assert sharpe.lo_standard_error(moments.sharpe, moments.n) == pytest.approx(0.3081573770, abs=1e-9)


def test_probabilistic_sharpe_ratio_against_zero(moments):
    assert sharpe.probabilistic_sharpe_ratio(moments, 0.0) == pytest.approx(0.9385778451, abs=1e-9)


def test_expected_maximum_sharpe_of_ten_trials_with_variance_one_hundredth():
    assert sharpe.expected_maximum_sharpe(10, 0.01) == pytest.approx(0.1574598301, abs=1e-9)


def test_deflated_sharpe_ratio_of_the_worked_series(moments):
    assert sharpe.deflated_sharpe_ratio(moments, 10, 0.01) == pytest.approx(0.8606043649, abs=1e-9)


def test_one_trial_has_nothing_to_deflate(moments):
    assert sharpe.expected_maximum_sharpe(1, 0.04) == 0.0
    assert sharpe.deflated_sharpe_ratio(moments, 1, 0.04) == sharpe.probabilistic_sharpe_ratio(moments, 0.0)


def test_a_benchmark_equal_to_the_estimate_is_a_coin_flip(moments):
    assert sharpe.probabilistic_sharpe_ratio(moments, moments.sharpe) == pytest.approx(0.5, abs=1e-15)


# the last: a constant 0.1 % compounding, whose returns differ only by float residue
COMPOUNDING = [100 * 1.001 ** (k + 1) / (100 * 1.001**k) - 1 for k in range(30)]


@pytest.mark.parametrize("returns", [[], [0.01], [0.0] * 20, [0.001] * 30, COMPOUNDING])
def test_flat_or_too_short_series_have_no_sharpe(returns):
    assert sharpe.sharpe_moments(returns) is None


def test_lo_standard_error_needs_a_return():
    assert sharpe.lo_standard_error(0.3, 0) is None


def test_invalid_trials_or_variance_are_refused():
    with pytest.raises(ValueError):
        sharpe.expected_maximum_sharpe(0, 0.01)
    with pytest.raises(ValueError):
        sharpe.expected_maximum_sharpe(5, -0.01)


returns_lists = st.lists(
    st.floats(min_value=-0.2, max_value=0.2, allow_nan=False), min_size=3, max_size=60
).filter(lambda values: np.ptp(values) > 1e-6)


@settings(max_examples=100, deadline=None)
@given(returns_lists, st.floats(-1, 1), st.floats(0.01, 1))
def test_psr_falls_as_the_benchmark_rises(returns, benchmark, step):
    moments = sharpe.sharpe_moments(returns)
    low = sharpe.probabilistic_sharpe_ratio(moments, benchmark)
    high = sharpe.probabilistic_sharpe_ratio(moments, benchmark + step)
    if low is not None and high is not None:
        assert 0.0 <= high <= low <= 1.0


@settings(max_examples=100, deadline=None)
@given(returns_lists, st.integers(2, 1000), st.floats(1e-6, 1.0))
def test_deflating_for_more_than_one_trial_never_raises_confidence(returns, trials, variance):
    moments = sharpe.sharpe_moments(returns)
    deflated = sharpe.deflated_sharpe_ratio(moments, trials, variance)
    if deflated is not None:
        assert sharpe.expected_maximum_sharpe(trials, variance) > 0
        assert deflated <= sharpe.probabilistic_sharpe_ratio(moments, 0.0)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 10_000), st.integers(2, 10_000), st.floats(1e-4, 1.0))
def test_more_trials_raise_the_bar(fewer, more, variance):
    fewer, more = sorted((fewer, more))
    assert sharpe.expected_maximum_sharpe(fewer, variance) <= sharpe.expected_maximum_sharpe(more, variance)


def test_expected_maximum_sharpe_scales_with_the_spread_of_trials():
    assert sharpe.expected_maximum_sharpe(10, 0.04) == pytest.approx(2 * sharpe.expected_maximum_sharpe(10, 0.01))
    assert math.isclose(sharpe.expected_maximum_sharpe(10, 0.0), 0.0)
