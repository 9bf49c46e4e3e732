"""Analytics on hand-worked series: every number below is worked out in the comments."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest

import analytics
from analytics import ClosedTrade, InvocationRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)

# The worked series: E = 100, 120, 90, 108, 135 (one equity point per round, E_0 = capital).
# r = 120/100-1 = 0.2, 90/120-1 = -0.25, 108/90-1 = 0.2, 135/108-1 = 0.25
# mean r = 0.4 / 4 = 0.1
# deviations 0.1, -0.35, 0.1, 0.15 -> squares 0.01 + 0.1225 + 0.01 + 0.0225 = 0.165
# std (ddof=1) = sqrt(0.165 / 3) = sqrt(0.055)
# With A = 4 rounds a year: Sharpe = 0.1 / sqrt(0.055) x 2 = 0.2 / sqrt(0.055) = 0.852802865...
# Downside: min(r, 0)^2 = 0, 0.0625, 0, 0 -> mean 0.015625 -> sqrt 0.125
# Sortino = 0.1 x 4 / (0.125 x 2) = 0.4 / 0.25 = 1.6
# Drawdown: peak 120 (index 1), trough 90 (index 2): 90/120 - 1 = -25 %; back at >= 120 at index 4.
# Annualised (N = 4 returns, A = 4): (135/100)^(4/4) - 1 = 35 %; Calmar = 35 / 25 = 1.4
EQUITY = [Decimal(100), Decimal(120), Decimal(90), Decimal(108), Decimal(135)]
A = 4


def test_returns_are_simple_returns_on_the_round_grid():
    assert analytics.returns_from_equity(EQUITY) == pytest.approx([0.2, -0.25, 0.2, 0.25], rel=1e-12)


def test_a_round_after_equity_hit_zero_returns_zero_not_a_division_error():
    # 100 -> 50: -0.5; 50 -> 0: -1; 0 -> 0: nothing left, 0
    assert analytics.returns_from_equity([100, 50, 0, 0]) == [-0.5, -1.0, 0.0]


def test_total_return_pct_is_last_over_first_minus_one():
    assert analytics.total_return_pct(EQUITY) == pytest.approx(35.0)
    assert analytics.total_return_pct([]) is None


def test_sharpe_is_mean_over_sample_std_times_sqrt_a():
    returns = analytics.returns_from_equity(EQUITY)
    assert analytics.sharpe_ratio(returns, A) == pytest.approx(0.2 / math.sqrt(0.055), rel=1e-12)
    assert analytics.sharpe_ratio(returns, A) == pytest.approx(0.852802865, rel=1e-9)


def test_sharpe_subtracts_the_risk_free_rate_per_period():
    # excess = 0.15, -0.3, 0.15, 0.2: mean 0.05, same std sqrt(0.055) -> 0.05 / sqrt(0.055) x 2
    returns = analytics.returns_from_equity(EQUITY)
    assert analytics.sharpe_ratio(returns, A, risk_free_per_period=0.05) == pytest.approx(
        0.1 / math.sqrt(0.055), rel=1e-12
    )


def test_sortino_uses_downside_deviation_over_all_returns():
    returns = analytics.returns_from_equity(EQUITY)
    assert analytics.sortino_ratio(returns, A) == pytest.approx(1.6, rel=1e-12)


def test_max_drawdown_depth_and_duration_to_recovery():
    times = [T0 + i * HOUR for i in range(5)]
    stats = analytics.drawdown_stats(EQUITY, times)
    assert stats.max_drawdown == pytest.approx(-25.0)
    assert (stats.peak_index, stats.trough_index, stats.recovery_index) == (1, 2, 4)
    assert stats.duration_rounds == 3  # index 1 -> index 4
    assert stats.duration == 3 * HOUR
    assert stats.current_drawdown == 0.0  # 135 is a new peak


def test_unrecovered_drawdown_lasts_until_now_and_is_the_current_drawdown():
    # 100, 120, 90, 108: max -25 % from index 1, not recovered; now at index 3: 2 rounds, 2 h
    # current drawdown 108 / 120 - 1 = -10 %
    times = [T0 + i * HOUR for i in range(4)]
    stats = analytics.drawdown_stats(EQUITY[:4], times)
    assert stats.max_drawdown == pytest.approx(-25.0)
    assert stats.recovery_index is None
    assert stats.duration_rounds == 2
    assert stats.duration == 2 * HOUR
    assert stats.current_drawdown == pytest.approx(-10.0)


def test_deepest_drawdown_is_chosen_not_the_first_or_longest():
    # 100, 95 (-5 %), 100, 110, 88 (-20 % from 110 at index 3), 89
    stats = analytics.drawdown_stats([100, 95, 100, 110, 88, 89])
    assert stats.max_drawdown == pytest.approx(-20.0)
    assert (stats.peak_index, stats.trough_index, stats.recovery_index) == (3, 4, None)
    assert stats.duration_rounds == 2
    assert stats.duration is None  # no times given


def test_annualised_return_compounds_over_rounds_per_year():
    # A = 4, N = 4 -> exponent 1 -> 35 %; A = 8, N = 4 -> 1.35^2 - 1 = 82.25 %
    assert analytics.annualised_return_pct(EQUITY, 4) == pytest.approx(35.0)
    assert analytics.annualised_return_pct(EQUITY, 8) == pytest.approx(82.25)


def test_calmar_is_annualised_return_over_absolute_max_drawdown():
    assert analytics.calmar_ratio(EQUITY, A) == pytest.approx(1.4)


def test_periods_per_year_uses_365_days_for_crypto_and_252_trading_days_otherwise():
    assert analytics.periods_per_year(60, ["crypto"]) == 8760  # 365 x 24
    assert analytics.periods_per_year(60, ["forex", "indices"]) == 6048  # 252 x 24
    assert analytics.periods_per_year(240, ["crypto", "stocks"]) == 2190  # any crypto: 365 x 6
    assert analytics.periods_per_year(30, ["stocks"], trading_day_minutes=390) == 3276  # 252 x 13
    with pytest.raises(ValueError):
        analytics.periods_per_year(0, ["crypto"])


# Trades: net PnL 30, -10, 20, -20, 0 held 1 h, 2 h, 3 h, 4 h, 10 h.
# wins 30, 20 (2); losses -10, -20 (2); the 0 trade is neither. win rate 2/5 = 40 %
# profit factor 50 / 30 = 1.666...; average win 25, average loss -15; largest 30 and -20
# expectancy (30 - 10 + 20 - 20 + 0) / 5 = 4; holding mean (1+2+3+4+10)/5 = 4 h, median 3 h
TRADES = [
    ClosedTrade(Decimal(30), T0, T0 + 1 * HOUR),
    ClosedTrade(Decimal(-10), T0, T0 + 2 * HOUR),
    ClosedTrade(Decimal(20), T0, T0 + 3 * HOUR),
    ClosedTrade(Decimal(-20), T0, T0 + 4 * HOUR),
    ClosedTrade(Decimal(0), T0, T0 + 10 * HOUR),
]


def test_trade_stats_are_counted_by_closed_position():
    stats = analytics.trade_stats(TRADES)
    assert (stats.trades, stats.wins, stats.losses) == (5, 2, 2)
    assert stats.win_rate == pytest.approx(40.0)
    assert stats.profit_factor == pytest.approx(50 / 30)
    assert stats.average_win == pytest.approx(25.0)
    assert stats.average_loss == pytest.approx(-15.0)
    assert stats.largest_win == pytest.approx(30.0)
    assert stats.largest_loss == pytest.approx(-20.0)
    assert stats.expectancy == pytest.approx(4.0)
    assert stats.average_holding == 4 * HOUR
    assert stats.median_holding == 3 * HOUR


def test_median_holding_of_an_even_count_is_the_midpoint():
    # 1 h, 2 h, 3 h, 4 h -> (2 + 3) / 2 = 2.5 h
    stats = analytics.trade_stats(TRADES[:4])
    assert stats.median_holding == timedelta(hours=2.5)


def test_exposure_shares_from_the_sign_of_net_exposure_per_round():
    # +, +, -, 0 -> long 2/4, short 1/4, flat 1/4; magnitudes do not matter, only signs
    shares = analytics.exposure_shares([1, Decimal("2.5"), -3, 0])
    assert (shares.long, shares.short, shares.flat) == (50.0, 25.0, 25.0)


def test_average_leverage_is_mean_gross_notional_over_equity():
    # 0/100 = 0, 200/100 = 2, -300/150 -> |300|/150 = 2; mean 4/3
    assert analytics.average_leverage([0, 200, -300], [100, 100, 150]) == pytest.approx(4 / 3)


# Invocations: ok (1 s, 2 actions, 1 rejected), invalid (2 s), error (3 s), timeout (no latency),
# ok (4 s, 2 actions). invalid 1/5 = 20 %; error+timeout 2/5 = 40 %; rejected 1/4 = 25 %
# latencies 1, 2, 3, 4: p50 = 2.5; p95 at position 0.95 x 3 = 2.85 -> 3 + 0.85 x (4 - 3) = 3.85
INVOCATIONS = [
    InvocationRecord("ok", 1.0, 100, 50, Decimal("0.01"), actions=2, rejected_actions=1),
    InvocationRecord("invalid", 2.0, 100, 20, Decimal("0.02")),
    InvocationRecord("error", 3.0, 0, 0, 0),
    InvocationRecord("timeout", None, 100, 0, Decimal("0.005")),
    InvocationRecord("ok", 4.0, 100, 30, Decimal("0.015"), actions=2),
]


def test_llm_reliability_rates_latency_tokens_and_cost():
    stats = analytics.llm_stats(INVOCATIONS)
    assert stats.invocations == 5
    assert stats.invalid_rate == pytest.approx(20.0)
    assert stats.error_rate == pytest.approx(40.0)
    assert stats.rejected_action_rate == pytest.approx(25.0)
    assert stats.latency_p50 == pytest.approx(2.5)
    assert stats.latency_p95 == pytest.approx(3.85)
    assert (stats.input_tokens, stats.output_tokens, stats.total_tokens) == (400, 100, 500)
    assert stats.cost_usd == pytest.approx(0.05)


def test_cost_adjusted_return_takes_llm_cost_out_of_pnl():
    # (35 - 5) / 100 x 100 = 30 %
    assert analytics.cost_adjusted_return_pct(35, Decimal(5), Decimal(100)) == pytest.approx(30.0)
    assert analytics.cost_adjusted_return_pct(35, 5, 0) is None


def test_participant_metrics_bundles_every_metric():
    metrics = analytics.participant_metrics(
        equity=EQUITY,
        initial_capital=Decimal(100),
        periods_per_year=A,
        times=[T0 + i * HOUR for i in range(5)],
        trades=TRADES,
        exposure_signs=[1, 1, -1, 0],
        gross_notional=[0, 240, 180, 0, 270],  # leverage 0, 2, 2, 0, 2 -> mean 1.2
        invocations=INVOCATIONS,
        realised_pnl=Decimal(20),
        unrealised_pnl=Decimal(15),
        fees_paid=Decimal("2.5"),
        funding_paid=Decimal("-0.5"),
    )
    assert metrics.equity == 135.0
    assert metrics.pnl == 35.0
    assert metrics.pnl_before_fees == pytest.approx(37.5)  # 35 + 2.5 fees
    assert (metrics.realised_pnl, metrics.unrealised_pnl) == (20.0, 15.0)
    assert (metrics.fees_paid, metrics.funding_paid) == (2.5, -0.5)
    assert metrics.return_pct == pytest.approx(35.0)
    assert metrics.annualised_return_pct == pytest.approx(35.0)
    assert metrics.sharpe == pytest.approx(0.2 / math.sqrt(0.055))
    assert metrics.sortino == pytest.approx(1.6)
    assert metrics.calmar == pytest.approx(1.4)
    assert metrics.max_drawdown == pytest.approx(-25.0)
    assert metrics.max_drawdown_rounds == 3
    assert metrics.max_drawdown_duration == 3 * HOUR
    assert metrics.current_drawdown == 0.0
    assert metrics.rounds == 4
    assert metrics.win_rate == pytest.approx(40.0)
    assert metrics.profit_factor == pytest.approx(50 / 30)
    assert metrics.trades == 5
    assert metrics.exposure.long == 50.0
    assert metrics.average_leverage == pytest.approx(1.2)
    assert metrics.llm.invocations == 5
    # (35 - 0.05) / 100 x 100 = 34.95 %
    assert metrics.cost_adjusted_return == pytest.approx(34.95)


def test_buy_and_hold_is_equal_weight_at_the_first_price():
    # 1000 capital, 2 symbols: 500 / 100 = 5 BTC units, 500 / 10 = 50 ETH units
    # E_1 = 5 x 110 + 50 x 5 = 800; E_2 = 5 x 120 + 50 x 20 = 1600
    equity = analytics.buy_and_hold_equity(
        {"BTC/USDT": [Decimal(100), Decimal(110), Decimal(120)], "ETH/USDT": [10, 5, 20]},
        Decimal(1000),
    )
    assert equity == pytest.approx([1000.0, 800.0, 1600.0])


def test_buy_and_hold_refuses_misaligned_prices():
    with pytest.raises(ValueError):
        analytics.buy_and_hold_equity({"A": [1, 2], "B": [1]}, 100)
    assert analytics.buy_and_hold_equity({}, 100) == []


# --- leaderboard ----------------------------------------------------------------------


def _rows(metric, values):
    return [SimpleNamespace(name=f"p{i}", **{metric: value}) for i, value in enumerate(values)]


@pytest.mark.parametrize("metric", sorted(analytics.LEADERBOARD_METRICS))
def test_leaderboard_orders_each_metric_in_its_direction_with_none_last(metric):
    rows = _rows(metric, [2.0, None, 3.0, 1.0])
    names = [row.name for row in analytics.leaderboard_sort(rows, metric)]
    if analytics.LEADERBOARD_METRICS[metric]:
        assert names == ["p2", "p0", "p3", "p1"]
    else:
        assert names == ["p3", "p0", "p2", "p1"]


def test_leaderboard_ranks_shallowest_drawdown_and_fewest_invalid_responses_first():
    drawdowns = [
        row.name for row in analytics.leaderboard_sort(_rows("max_drawdown", [-20.0, -5.0]), "max_drawdown")
    ]
    assert drawdowns == ["p1", "p0"]
    invalid = [
        row.name for row in analytics.leaderboard_sort(_rows("invalid_rate", [10.0, 0.0]), "invalid_rate")
    ]
    assert invalid == ["p1", "p0"]


def test_leaderboard_puts_infinite_profit_factor_first_and_keeps_ties_in_input_order():
    rows = _rows("profit_factor", [1.5, math.inf, 1.5, None])
    assert [row.name for row in analytics.leaderboard_sort(rows, "profit_factor")] == ["p1", "p0", "p2", "p3"]


def test_leaderboard_defaults_to_equity_and_reads_metrics_through_a_getter():
    metrics = [
        analytics.participant_metrics(equity=series, initial_capital=100, periods_per_year=A)
        for series in ([100, 90], [100, 130], [100, 110])
    ]
    rows = [{"name": name, "metrics": m} for name, m in zip("abc", metrics, strict=True)]
    ordered = analytics.leaderboard_sort(rows, metrics_of=lambda row: row["metrics"])
    assert [row["name"] for row in ordered] == ["b", "c", "a"]


def test_every_leaderboard_metric_is_a_participant_metric():
    metrics = analytics.participant_metrics(equity=EQUITY, initial_capital=100, periods_per_year=A)
    for metric in analytics.LEADERBOARD_METRICS:
        getattr(metrics, metric)
    with pytest.raises(ValueError):
        analytics.leaderboard_sort([metrics], "vibes")
