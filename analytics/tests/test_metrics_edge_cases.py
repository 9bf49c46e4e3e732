"""Degenerate inputs give the documented values (None, 0, inf), never an exception or NaN."""

import math
from datetime import UTC, datetime, timedelta

import pytest

import analytics
from analytics import ClosedTrade, InvocationRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _no_nan(metrics):
    for name, value in vars(metrics).items():
        if isinstance(value, float):
            assert not math.isnan(value), name


def test_no_trades_gives_zero_counts_and_undefined_averages():
    stats = analytics.trade_stats([])
    assert (stats.trades, stats.wins, stats.losses) == (0, 0, 0)
    assert stats.win_rate is None
    assert stats.profit_factor is None
    assert stats.expectancy is None
    assert stats.average_win is stats.average_loss is stats.largest_win is stats.largest_loss is None
    assert stats.average_holding is stats.median_holding is None


def test_all_losing_trades_have_zero_win_rate_and_zero_profit_factor():
    # losses -5 and -15: win rate 0 %, profit factor 0 / 20 = 0, expectancy -10
    stats = analytics.trade_stats([ClosedTrade(-5), ClosedTrade(-15)])
    assert stats.win_rate == 0.0
    assert stats.profit_factor == 0.0
    assert stats.average_win is None
    assert stats.average_loss == pytest.approx(-10.0)
    assert stats.largest_loss == pytest.approx(-15.0)
    assert stats.expectancy == pytest.approx(-10.0)


def test_winning_trades_without_a_loss_have_infinite_profit_factor():
    assert analytics.trade_stats([ClosedTrade(5), ClosedTrade(1)]).profit_factor == math.inf


def test_only_break_even_trades_have_undefined_profit_factor():
    stats = analytics.trade_stats([ClosedTrade(0)])
    assert stats.profit_factor is None
    assert stats.win_rate == 0.0


def test_trades_without_times_have_no_holding_time():
    assert analytics.trade_stats([ClosedTrade(5)]).average_holding is None


def test_no_round_yet_means_equity_is_the_capital_and_ratios_are_undefined():
    metrics = analytics.participant_metrics(equity=[], initial_capital=1000, periods_per_year=8760)
    assert metrics.equity == 1000.0
    assert metrics.return_pct == 0.0
    assert metrics.rounds == 0
    assert metrics.sharpe is metrics.sortino is metrics.calmar is metrics.annualised_return_pct is None
    assert metrics.max_drawdown == 0.0
    assert metrics.max_drawdown_duration is None
    assert metrics.average_leverage is None
    assert metrics.exposure.long is None
    assert metrics.llm.invocations == 0
    assert metrics.llm.invalid_rate is None
    assert metrics.cost_adjusted_return == 0.0


def test_one_round_has_a_return_but_no_sharpe_or_sortino():
    # one return of -10 %: std needs 2 returns
    metrics = analytics.participant_metrics(equity=[1000, 900], initial_capital=1000, periods_per_year=4)
    assert metrics.rounds == 1
    assert metrics.return_pct == pytest.approx(-10.0)
    assert metrics.sharpe is None
    assert metrics.sortino is None
    assert metrics.max_drawdown == pytest.approx(-10.0)
    # annualised (0.9)^(4/1) - 1 = -34.39 %; Calmar -34.39 / 10
    assert metrics.annualised_return_pct == pytest.approx(-34.39)
    assert metrics.calmar == pytest.approx(-3.439)


def test_flat_equity_has_no_risk_ratios_and_no_drawdown():
    times = [T0 + timedelta(hours=i) for i in range(5)]
    metrics = analytics.participant_metrics(
        equity=[1000] * 5, initial_capital=1000, periods_per_year=8760, times=times
    )
    assert metrics.sharpe is None  # zero std
    assert metrics.sortino is None  # zero downside deviation
    assert metrics.calmar is None  # no drawdown
    assert metrics.max_drawdown == 0.0
    assert metrics.max_drawdown_rounds == 0
    assert metrics.max_drawdown_duration == timedelta(0)
    assert metrics.return_pct == 0.0
    assert metrics.annualised_return_pct == 0.0
    _no_nan(metrics)


def test_constant_positive_returns_have_zero_volatility_so_no_sharpe():
    # 1 % every round: std 0 -> Sharpe None; no negative round -> Sortino None; no drawdown -> Calmar None
    equity = [100 * 1.01**i for i in range(10)]
    returns = analytics.returns_from_equity(equity)
    assert analytics.sharpe_ratio([0.01] * 9, 8760) is None
    # the same from compounded equity: returns differ in the last bits (~4e-16), still zero std
    assert analytics.sharpe_ratio(returns, 8760) is None
    assert analytics.sortino_ratio(returns, 8760) is None
    assert analytics.calmar_ratio(equity, 8760) is None


def test_steadily_losing_equity_has_negative_ratios():
    # 100, 90, 85, 70: every round a loss, max drawdown = the whole fall (-30 %), never recovered
    metrics = analytics.participant_metrics(equity=[100, 90, 85, 70], initial_capital=100, periods_per_year=4)
    assert metrics.sharpe < 0
    assert metrics.sortino < 0
    assert metrics.max_drawdown == pytest.approx(-30.0)
    assert metrics.current_drawdown == pytest.approx(-30.0)
    assert metrics.max_drawdown_rounds == 3
    assert metrics.calmar < 0


def test_wiped_out_account_has_minus_100_percent_everything():
    metrics = analytics.participant_metrics(equity=[100, 40, 0, 0], initial_capital=100, periods_per_year=4)
    assert metrics.return_pct == pytest.approx(-100.0)
    assert metrics.max_drawdown == pytest.approx(-100.0)
    assert metrics.annualised_return_pct == pytest.approx(-100.0)
    assert metrics.calmar == pytest.approx(-1.0)
    _no_nan(metrics)


def test_average_leverage_skips_points_with_no_equity():
    # 200/100 = 2; the zero-equity point is undefined and skipped
    assert analytics.average_leverage([200, 50], [100, 0]) == pytest.approx(2.0)
    assert analytics.average_leverage([50], [0]) is None
    with pytest.raises(ValueError):
        analytics.average_leverage([1, 2], [1])


def test_annualising_a_huge_short_run_return_overflows_to_none_not_an_error():
    # doubling in one hourly round annualises to 2^8760: beyond float
    assert analytics.annualised_return_pct([100, 200], 8760) is None
    assert analytics.calmar_ratio([100, 50, 200], 8760) is None


def test_invocations_without_actions_or_latencies_leave_those_rates_undefined():
    stats = analytics.llm_stats([InvocationRecord("error"), InvocationRecord("timeout")])
    assert stats.error_rate == 100.0
    assert stats.invalid_rate == 0.0
    assert stats.rejected_action_rate is None
    assert stats.latency_p50 is None and stats.latency_p95 is None
    assert stats.cost_usd == 0.0


def test_drawdown_of_empty_series_is_zero():
    stats = analytics.drawdown_stats([])
    assert stats.max_drawdown == 0.0 and stats.current_drawdown == 0.0 and stats.duration_rounds == 0


def test_times_must_align_with_equity():
    with pytest.raises(ValueError):
        analytics.drawdown_stats([1, 2], [T0])
