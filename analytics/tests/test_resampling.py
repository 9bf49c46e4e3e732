"""The window bootstrap: reproducible for a seed, honest about one window, sane intervals."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import resampling

VALUES = [1.2, -0.4, 3.1, 0.8, 2.2, -1.5, 0.9, 1.7]


def test_the_same_seed_gives_the_same_interval_and_another_seed_another():
    first = resampling.bootstrap_interval(VALUES, np.mean, resamples=500, seed=11)
    again = resampling.bootstrap_interval(VALUES, np.mean, resamples=500, seed=11)
    other = resampling.bootstrap_interval(VALUES, np.mean, resamples=500, seed=12)
    assert first == again
    assert first != other


def test_the_interval_is_the_percentiles_of_the_resampled_means_by_hand():
    indices = np.random.default_rng(5).integers(0, len(VALUES), size=(300, len(VALUES)))
    means = np.asarray(VALUES)[indices].mean(axis=1)
    interval = resampling.bootstrap_interval(VALUES, np.mean, resamples=300, seed=5)
    assert interval.low == pytest.approx(np.percentile(means, 2.5), abs=1e-12)
    assert interval.high == pytest.approx(np.percentile(means, 97.5), abs=1e-12)
    assert interval.level == 0.95


def test_one_window_has_no_interval():
    assert resampling.bootstrap_interval([2.5], np.mean) is None
    assert resampling.bootstrap_interval([], np.median) is None


def test_a_wider_level_gives_a_wider_interval():
    narrow = resampling.bootstrap_interval(VALUES, resamples=1000, seed=1, level=0.80)
    wide = resampling.bootstrap_interval(VALUES, resamples=1000, seed=1, level=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError):
        resampling.bootstrap_indices(0, 10, 1)
    with pytest.raises(ValueError):
        resampling.bootstrap_indices(3, 0, 1)
    with pytest.raises(ValueError):
        resampling.percentile_interval(np.array([1.0, 2.0]), 1.0)


window_values = st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=30)


@settings(max_examples=50, deadline=None)
@given(window_values, st.integers(0, 2**32 - 1))
def test_an_interval_of_the_mean_or_median_stays_inside_the_data(values, seed):
    for statistic in (np.mean, np.median):
        interval = resampling.bootstrap_interval(values, statistic, resamples=200, seed=seed)
        assert min(values) - 1e-9 <= interval.low <= interval.high <= max(values) + 1e-9


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 50, allow_nan=False), min_size=1, max_size=15), st.floats(-10, 10), st.integers(0, 1000))
def test_symmetric_data_have_their_mean_inside_the_interval(half, centre, seed):
    # mirrored around the centre: the bootstrap distribution of the mean is symmetric about it
    values = [centre + value for value in half] + [centre - value for value in half]
    interval = resampling.bootstrap_interval(values, np.mean, resamples=400, seed=seed)
    assert interval.contains(float(np.mean(values)))
