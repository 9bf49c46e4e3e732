"""Series helpers: downsampling that keeps what a chart must show, drawdown, one return grid."""

from datetime import UTC, datetime, timedelta

import pytest

import analytics

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def series(values):
    return [(T0 + n * HOUR, float(value)) for n, value in enumerate(values)]


def test_downsampling_keeps_first_last_of_each_bucket_and_final_point():
    points = series(range(10))
    # buckets of ceil(10 / 3) = 4: [0..3], [4..7], [8, 9] -> 3, 7, 9, plus the first point
    assert [value for _, value in analytics.downsample(points, 3)] == [0.0, 3.0, 7.0, 9.0]
    assert analytics.downsample(points, 10) == points
    assert analytics.downsample(points, 50) == points
    with pytest.raises(ValueError):
        analytics.downsample(points, 0)


def test_deepest_downsampling_keeps_each_buckets_trough():
    values = [0.0] * 20
    values[6] = -20.0  # inside the bucket [5..8] of ceil(20 / 5) = 4 points; bucket ends are 3, 7, ...
    kept = analytics.downsample_deepest(series(values), 5)
    assert min(value for _, value in kept) == -20.0
    assert kept[0] == (T0, 0.0) and kept[-1] == (T0 + 19 * HOUR, 0.0)
    # plain downsampling keeps bucket ends and loses the dip
    assert min(value for _, value in analytics.downsample(series(values), 5)) == 0.0


def test_drawdown_series_is_percent_below_the_running_peak():
    drawdown = analytics.drawdown_series(series([100, 120, 90, 130]))
    # 90 / 120 - 1 = -25 %; a new peak resets it to 0
    assert [value for _, value in drawdown] == pytest.approx([0.0, 0.0, -25.0, 0.0])
    assert [value for _, value in analytics.drawdown_series(series([0, -5]))] == [0.0, 0.0]


def test_aligned_returns_carry_equity_forward_after_the_last_mark():
    t = [T0 + h * HOUR for h in range(3)]
    # A marked at hours 1 and 2; B only at hour 1 (then dropped out): B's return at hour 2 is 0
    returns = analytics.aligned_returns(
        {"A": [(t[0], 100.0), (t[1], 110.0), (t[2], 99.0)], "B": [(t[0], 100.0), (t[1], 90.0)]}
    )
    assert returns["A"] == pytest.approx([0.10, -0.10])  # 110/100 - 1, 99/110 - 1
    assert returns["B"] == pytest.approx([-0.10, 0.0])


def test_aligned_returns_hold_capital_before_a_late_first_mark_and_flat_without_any():
    t = [T0 + h * HOUR for h in range(3)]
    returns = analytics.aligned_returns(
        {
            "early": [(t[0], 100.0), (t[1], 105.0), (t[2], 110.0)],
            "late": [(t[0], 100.0), (t[2], 120.0)],  # first marked at hour 2
            "new": [],  # no mark yet
        }
    )
    assert returns["late"] == pytest.approx([0.0, 0.20])
    # every series has one return per grid time, so the bootstrap can pair them
    assert returns["new"] == [0.0, 0.0]
    assert len({len(values) for values in returns.values()}) == 1
