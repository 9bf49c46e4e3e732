"""Properties that hold for any equity path, checked on generated ones."""

import math
import statistics
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

import analytics
from analytics import ClosedTrade

equity_paths = st.lists(
    st.floats(min_value=1.0, max_value=1e7, allow_nan=False, allow_infinity=False), min_size=1, max_size=60
)


@given(equity_paths)
def test_drawdowns_lie_between_minus_100_and_0_and_the_current_is_never_deeper(equity):
    stats = analytics.drawdown_stats(equity)
    assert -100.0 <= stats.max_drawdown <= 0.0
    assert stats.max_drawdown <= stats.current_drawdown + 1e-9 <= 1e-9
    assert 0 <= stats.duration_rounds < len(equity)


@given(equity_paths)
def test_compounding_the_returns_gives_back_the_equity(equity):
    compounded = equity[0]
    for r in analytics.returns_from_equity(equity):
        compounded *= 1.0 + r
    # 1 + r cancels digits when a round loses almost everything (1e7 -> 1): allow 1e-6
    assert math.isclose(compounded, equity[-1], rel_tol=1e-6)


@given(equity_paths, st.floats(min_value=0.01, max_value=1000.0))
def test_ratios_do_not_depend_on_the_account_size(equity, scale):
    scaled = [value * scale for value in equity]
    a = 8760
    for ratio in (
        lambda e: analytics.sharpe_ratio(analytics.returns_from_equity(e), a),
        lambda e: analytics.sortino_ratio(analytics.returns_from_equity(e), a),
        lambda e: analytics.drawdown_stats(e).max_drawdown,
    ):
        original, rescaled = ratio(equity), ratio(scaled)
        if original is None or rescaled is None:
            continue
        assert math.isclose(original, rescaled, rel_tol=1e-6, abs_tol=1e-9)


@given(equity_paths)
def test_participant_metrics_never_produce_nan(equity):
    metrics = analytics.participant_metrics(equity=equity, initial_capital=equity[0], periods_per_year=8760)
    for value in vars(metrics).values():
        if isinstance(value, float):
            assert not math.isnan(value)


trades_lists = st.lists(
    st.tuples(
        st.decimals(min_value=-1000, max_value=1000, places=10, allow_nan=False, allow_infinity=False),
        st.integers(min_value=0, max_value=10**9),  # holding in microseconds
    ),
    max_size=40,
)


@given(trades_lists, st.randoms())
def test_trade_totals_give_the_same_stats_in_any_order_with_the_exact_median_holding(rows, rng):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    trades = [ClosedTrade(pnl, start, start + timedelta(microseconds=us)) for pnl, us in rows]
    stats = analytics.trade_stats(trades)
    shuffled = list(trades)
    rng.shuffle(shuffled)
    assert analytics.trade_stats(shuffled) == stats
    holdings = [timedelta(microseconds=us) for _, us in rows]
    assert stats.median_holding == (statistics.median(holdings) if holdings else None)
    assert stats.average_holding == (sum(holdings, timedelta(0)) / len(holdings) if holdings else None)
    assert stats.expectancy == (float(sum(pnl for pnl, _ in rows) / len(rows)) if rows else None)
