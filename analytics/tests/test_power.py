"""Power of the paired comparison against the worked values in STATISTICS.md."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics import power


def test_z_sum_at_five_percent_and_eighty_percent_power():
    assert power.z_sum(0.05, 0.80) == pytest.approx(2.8015852182, abs=1e-9)


def test_smallest_detectable_difference_for_sd_two_over_twenty_windows():
    assert power.minimum_detectable_difference(2.0, 20) == pytest.approx(1.2529, abs=5e-5)
    assert power.minimum_detectable_difference(2.0, 20) == pytest.approx(2.8015852182 * 2.0 / math.sqrt(20), abs=1e-9)


def test_half_a_percent_with_sd_two_needs_126_windows():
    assert power.windows_needed(2.0, 0.5) == 126
    assert power.windows_needed(2.0, -0.5) == 126  # two-sided: the sign does not matter


def test_more_power_or_a_stricter_level_needs_more_windows():
    assert power.windows_needed(2.0, 0.5, power=0.9) > 126
    assert power.windows_needed(2.0, 0.5, alpha=0.01) > 126


def test_degenerate_inputs_give_no_number_or_the_floor():
    assert power.minimum_detectable_difference(2.0, 0) is None
    assert power.windows_needed(2.0, 0.0) is None
    assert power.windows_needed(0.0, 0.5) == 2
    with pytest.raises(ValueError):
        power.z_sum(0.05, 1.0)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.01, 100), st.integers(2, 10_000))
def test_the_windows_needed_for_the_detectable_difference_are_the_windows_we_have(sd, windows):
    mdd = power.minimum_detectable_difference(sd, windows)
    assert power.windows_needed(sd, mdd) == windows
