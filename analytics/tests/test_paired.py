"""Paired differences: Holm by hand, Wilcoxon as scipy, the paired bootstrap p by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics import paired

DIFFERENCES = [0.8, 1.3, -0.2, 2.1, 0.4, 1.0, -0.6, 1.7, 0.9, 0.3]


def test_holm_on_the_worked_p_values():
    assert paired.holm_adjust([0.01, 0.04, 0.03, 0.20]) == pytest.approx([0.04, 0.09, 0.09, 0.20], abs=1e-12)


def test_holm_by_hand_with_the_cap_at_one():
    # sorted 0.002, 0.02, 0.3, 0.5 -> 4 x 0.002, 3 x 0.02, 2 x 0.3, max(0.6, 1 x 0.5)
    assert paired.holm_adjust([0.3, 0.002, 0.5, 0.02]) == pytest.approx([0.6, 0.008, 0.6, 0.06], abs=1e-12)
    assert paired.holm_adjust([0.4, 0.6]) == pytest.approx([0.8, 0.8])  # the running max carries 0.8
    assert paired.holm_adjust([0.7, 0.6]) == pytest.approx([1.0, 1.0])  # 2 x 0.6 capped at 1
    assert paired.holm_adjust([]) == []


def test_holm_matches_statsmodels_where_it_is_installed():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p_values = [0.001, 0.013, 0.04, 0.041, 0.2, 0.03, 0.5, 0.0101]
    _, expected, _, _ = multitest.multipletests(p_values, method="holm")
    assert paired.holm_adjust(p_values) == pytest.approx(expected.tolist(), abs=1e-12)


p_value_lists = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(p_value_lists)
def test_holm_never_lowers_a_p_value_and_keeps_the_sorted_order(p_values):
    adjusted = paired.holm_adjust(p_values)
    assert all(raw <= adj <= 1.0 for raw, adj in zip(p_values, adjusted, strict=True))
    in_raw_order = [adjusted[index] for index in sorted(range(len(p_values)), key=lambda i: p_values[i])]
    assert in_raw_order == sorted(in_raw_order)


@settings(max_examples=100, deadline=None)
@given(p_value_lists)
def test_holm_rejects_no_more_than_the_unadjusted_test_and_no_fewer_than_bonferroni(p_values):
    adjusted = paired.holm_adjust(p_values)
    bonferroni = [min(1.0, len(p_values) * p) for p in p_values]
    assert all(adj <= bonf + 1e-15 for adj, bonf in zip(adjusted, bonferroni, strict=True))


@pytest.mark.parametrize(
    "differences",
    [
        DIFFERENCES,
        [1.0, 1.0, 1.0, 1.0, 1.0],  # all equal, not zero: every rank tied
        [0.5, -0.5, 1.0, 0.0, 2.0, 0.0, 1.5],  # zeros and tied magnitudes
        list(np.random.default_rng(3).normal(0.3, 1.0, 60)),  # above scipy's exact limit
    ],
)
def test_wilcoxon_is_scipys_signed_rank_test(differences):
    assert paired.wilcoxon_p_value(differences) == pytest.approx(stats.wilcoxon(differences).pvalue, abs=1e-15)


def test_wilcoxon_with_all_differences_zero_has_no_evidence():
    assert paired.wilcoxon_p_value([0.0, 0.0, 0.0]) == 1.0
    assert paired.wilcoxon_p_value([]) is None


def test_paired_bootstrap_p_is_twice_the_share_of_means_across_zero_by_hand():
    indices = np.random.default_rng(9).integers(0, len(DIFFERENCES), size=(700, len(DIFFERENCES)))
    means = np.asarray(DIFFERENCES)[indices].mean(axis=1)
    result = paired.paired_difference(DIFFERENCES, resamples=700, seed=9)
    assert result.p_bootstrap == pytest.approx(min(1.0, 2 * np.mean(means <= 0)), abs=1e-15)
    assert result.interval.low == pytest.approx(np.percentile(means, 2.5), abs=1e-12)
    assert result.mean_difference == pytest.approx(np.mean(DIFFERENCES))
    assert result.sd_difference == pytest.approx(np.std(DIFFERENCES, ddof=1))


def test_a_constant_positive_difference_is_never_on_the_other_side():
    result = paired.paired_difference([0.5] * 8, resamples=200, seed=1)
    assert result.p_bootstrap == 0.0
    assert result.interval.low == pytest.approx(0.5) and result.interval.high == pytest.approx(0.5)
    assert result.p_wilcoxon == pytest.approx(stats.wilcoxon([0.5] * 8).pvalue)


def test_zero_mean_difference_has_bootstrap_p_one():
    assert paired.bootstrap_p_value(np.array([-1.0, 1.0]), 0.0) == 1.0


def test_one_window_gives_a_difference_but_no_interval_or_p_value():
    result = paired.paired_difference([1.5])
    assert result.mean_difference == 1.5
    assert (result.interval, result.p_bootstrap, result.p_wilcoxon, result.sd_difference) == (None,) * 4
    assert paired.paired_difference([]).windows == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=25), st.integers(0, 10_000))
def test_swapping_the_agents_mirrors_the_interval_and_keeps_the_p_values(differences, seed):
    forward = paired.paired_difference(differences, resamples=200, seed=seed)
    backward = paired.paired_difference([-d for d in differences], resamples=200, seed=seed)
    assert backward.mean_difference == pytest.approx(-forward.mean_difference, abs=1e-9)
    assert backward.interval.low == pytest.approx(-forward.interval.high, abs=1e-9)
    assert backward.p_wilcoxon == pytest.approx(forward.p_wilcoxon, abs=1e-12)
    assert backward.p_bootstrap == pytest.approx(forward.p_bootstrap, abs=1e-12) or abs(forward.mean_difference) < 1e-9


@pytest.mark.parametrize(
    ("mean", "p_adjusted", "expected"),
    [
        (0.8, 0.01, "better"),
        (-0.8, 0.01, "worse"),
        (0.8, 0.05, "not distinguishable"),  # at the level is not below it
        (0.8, None, "not distinguishable"),
        (None, 0.01, "not distinguishable"),
    ],
)
def test_verdict_at_five_percent_after_adjustment(mean, p_adjusted, expected):
    assert paired.verdict(mean, p_adjusted, 0.05) == expected
