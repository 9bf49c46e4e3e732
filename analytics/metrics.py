"""Performance analytics: pure functions over equity, trade and invocation sequences.

No Django and no ORM here: selectors load the rows and feed plain sequences in. Money may
arrive as Decimal; analytics work in float (they are read, never booked). Every convention
is stated once in docs/analytics.md; the one-line comments below cite them.

Units: every rate, return and drawdown is in percent (12.5 means 12.5 %); ratios (Sharpe,
Sortino, Calmar, profit factor) are plain numbers. A metric that is undefined for the data
(too few returns, zero risk, no trades) is None, never NaN and never an exception.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from analytics._numbers import Number, _no_dispersion, _optional_float, _to_floats
from analytics.trades import (
    ClosedTrade,
    ExposureShares,
    ExposureTally,
    TradeStats,
    TradeTotals,
    exposure_shares,
    trade_stats,
)

TRADING_DAYS_PER_YEAR = 252
CALENDAR_DAYS_PER_YEAR = 365
MINUTES_PER_DAY = 1440


# --- returns and annualisation -------------------------------------------------------


def periods_per_year(
    interval_minutes: float,
    asset_classes: Sequence[str],
    *,
    trading_day_minutes: float = MINUTES_PER_DAY,
) -> float:
    """Rounds per year, A, used to annualise per-round statistics.

    A = 365 x rounds per day when any traded class is crypto (crypto trades every day,
    so the round grid does too); otherwise 252 trading days x rounds per trading day.
    A trading day is 24 h by default (forex, index and commodity CFDs trade round the
    clock on weekdays); pass trading_day_minutes=390 for cash-session stocks.
    """
    if interval_minutes <= 0:
        raise ValueError("interval_minutes must be positive")
    if not asset_classes or "crypto" in asset_classes:
        return CALENDAR_DAYS_PER_YEAR * MINUTES_PER_DAY / interval_minutes
    return TRADING_DAYS_PER_YEAR * trading_day_minutes / interval_minutes


def returns_from_equity(equity: Sequence[Number]) -> list[float]:
    """Simple per-round returns r_t = E_t / E_{t-1} - 1 on the round grid (N+1 points -> N returns).

    After equity reaches zero (or below) there is nothing left to grow or lose: the return
    of a round that starts at E_{t-1} <= 0 is 0.
    """
    values = _to_floats(equity)
    if len(values) < 2:
        return []
    previous, current = values[:-1], values[1:]
    alive = previous > 0
    returns = np.zeros(len(current))
    returns[alive] = current[alive] / previous[alive] - 1.0
    return returns.tolist()


def total_return_pct(equity: Sequence[Number]) -> float | None:
    """(E_N / E_0 - 1) x 100; None when the series is empty or starts at or below zero."""
    values = _to_floats(equity)
    if len(values) == 0 or values[0] <= 0:
        return None
    return (values[-1] / values[0] - 1.0) * 100.0


def annualised_return_pct(equity: Sequence[Number], periods_per_year: float) -> float | None:
    """Compound annual growth: ((E_N / E_0) ^ (A / N) - 1) x 100, N = number of returns.

    None with fewer than one return, E_0 <= 0, or when the extrapolation overflows a float
    (a short series with a large return annualises to astronomically large numbers).
    """
    values = _to_floats(equity)
    n_returns = len(values) - 1
    if n_returns < 1 or values[0] <= 0:
        return None
    growth = values[-1] / values[0]
    if growth <= 0:
        return -100.0
    try:
        annual_growth = math.exp(math.log(growth) * periods_per_year / n_returns)
    except OverflowError:
        return None
    return (annual_growth - 1.0) * 100.0


def sharpe_ratio(
    returns: Sequence[Number], periods_per_year: float, *, risk_free_per_period: float = 0.0
) -> float | None:
    """Sharpe = mean(r - rf) / std(r - rf, ddof=1) x sqrt(A).

    None with fewer than 2 returns or when the excess returns do not vary (zero std:
    all equal within 1e-12 relative, so float residue of a constant return is zero too).
    """
    excess = _to_floats(returns) - risk_free_per_period
    if len(excess) < 2 or _no_dispersion(excess):
        return None
    return float(excess.mean() / excess.std(ddof=1) * math.sqrt(periods_per_year))


def sortino_ratio(returns: Sequence[Number], periods_per_year: float) -> float | None:
    """Sortino = mean(r) x A / (sqrt(mean(min(r, 0)^2)) x sqrt(A)), downside over all N returns.

    None with fewer than 2 returns or when no return is negative (zero downside deviation).
    """
    values = _to_floats(returns)
    if len(values) < 2:
        return None
    downside_deviation = math.sqrt(float(np.mean(np.minimum(values, 0.0) ** 2)))
    if downside_deviation == 0:
        return None
    return float(values.mean() * periods_per_year / (downside_deviation * math.sqrt(periods_per_year)))


# --- drawdown -------------------------------------------------------------------------


@dataclass(frozen=True)
class DrawdownStats:
    max_drawdown: float  # % (<= 0): min over t of (E_t / max_{s<=t} E_s - 1) x 100
    current_drawdown: float  # % (<= 0): E_N / max_{s<=N} E_s - 1, x 100
    peak_index: int | None  # equity index of the peak before the deepest trough
    trough_index: int | None
    recovery_index: int | None  # first index after the trough back at the peak, None if not yet
    duration_rounds: int  # peak -> recovery, or peak -> last point while not recovered
    duration: timedelta | None  # same span in time, when times are given


def drawdown_stats(equity: Sequence[Number], times: Sequence[datetime] | None = None) -> DrawdownStats:
    """Max drawdown (% and duration from its peak to recovery or now) and current drawdown.

    Flat or rising equity has drawdown 0, duration 0, indices None. Running peaks at or
    below zero give drawdown 0 (nothing to fall from).
    """
    values = _to_floats(equity)
    if times is not None and len(times) != len(values):
        raise ValueError("times must align with equity")
    if len(values) == 0:
        return DrawdownStats(0.0, 0.0, None, None, None, 0, timedelta(0) if times is not None else None)
    running_peak = np.maximum.accumulate(values)
    positive_peak = running_peak > 0
    drawdowns = np.zeros(len(values))
    drawdowns[positive_peak] = values[positive_peak] / running_peak[positive_peak] - 1.0
    current = float(drawdowns[-1]) * 100.0
    trough = int(np.argmin(drawdowns))
    if drawdowns[trough] >= 0:
        return DrawdownStats(0.0, current, None, None, None, 0, timedelta(0) if times is not None else None)
    peak_value = running_peak[trough]
    peak = int(np.flatnonzero(values[: trough + 1] == peak_value)[-1])
    recovered = np.flatnonzero(values[trough:] >= peak_value)
    recovery = int(trough + recovered[0]) if len(recovered) else None
    end = recovery if recovery is not None else len(values) - 1
    duration = (times[end] - times[peak]) if times is not None else None
    return DrawdownStats(
        max_drawdown=float(drawdowns[trough]) * 100.0,
        current_drawdown=current,
        peak_index=peak,
        trough_index=trough,
        recovery_index=recovery,
        duration_rounds=end - peak,
        duration=duration,
    )


def calmar_ratio(equity: Sequence[Number], periods_per_year: float) -> float | None:
    """Calmar = annualised return / |max drawdown|; None when there is no drawdown."""
    max_drawdown = drawdown_stats(equity).max_drawdown
    annual = annualised_return_pct(equity, periods_per_year)
    if max_drawdown >= 0 or annual is None:
        return None
    return annual / abs(max_drawdown)


# --- leverage -------------------------------------------------------------------------


def average_leverage(gross_notional: Sequence[Number], equity: Sequence[Number]) -> float | None:
    """Mean over equity points of gross notional / equity (flat points count as 0).

    Points with equity <= 0 are skipped (leverage is undefined there); None when none remain.
    """
    notional = np.abs(_to_floats(gross_notional))
    values = _to_floats(equity)
    if len(notional) != len(values):
        raise ValueError("gross_notional must align with equity")
    alive = values > 0
    if not alive.any():
        return None
    return float(np.mean(notional[alive] / values[alive]))


# --- LLM reliability ------------------------------------------------------------------

InvocationOutcome = Literal["ok", "invalid", "error", "timeout"]


@dataclass(frozen=True)
class InvocationRecord:
    """One model invocation as the round recorded it.

    outcome: "ok" (a valid decision), "invalid" (unparseable or schema-invalid response),
    "error" (provider error) or "timeout". actions / rejected_actions: actions in the decision
    and how many of them the engine refused.
    """

    outcome: InvocationOutcome
    latency_seconds: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Number = 0
    actions: int = 0
    rejected_actions: int = 0


@dataclass(frozen=True)
class LLMStats:
    invocations: int
    invalid_rate: float | None  # % of invocations with an invalid response
    rejected_action_rate: float | None  # % of proposed actions the engine rejected; None without actions
    error_rate: float | None  # % of invocations that errored or timed out
    latency_p50: float | None  # seconds, linear-interpolated percentile
    latency_p95: float | None
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float


def llm_stats(invocations: Sequence[InvocationRecord]) -> LLMStats:
    """Reliability and cost of a participant's model invocations."""
    count = len(invocations)
    invalid = sum(1 for invocation in invocations if invocation.outcome == "invalid")
    failed = sum(1 for invocation in invocations if invocation.outcome in ("error", "timeout"))
    actions = sum(invocation.actions for invocation in invocations)
    rejected = sum(invocation.rejected_actions for invocation in invocations)
    latencies = _to_floats(
        invocation.latency_seconds for invocation in invocations if invocation.latency_seconds is not None
    )
    input_tokens = sum(invocation.input_tokens for invocation in invocations)
    output_tokens = sum(invocation.output_tokens for invocation in invocations)
    return LLMStats(
        invocations=count,
        invalid_rate=invalid / count * 100.0 if count else None,
        rejected_action_rate=rejected / actions * 100.0 if actions else None,
        error_rate=failed / count * 100.0 if count else None,
        latency_p50=float(np.percentile(latencies, 50)) if len(latencies) else None,
        latency_p95=float(np.percentile(latencies, 95)) if len(latencies) else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=input_tokens + output_tokens,
        cost_usd=float(sum(float(invocation.cost_usd) for invocation in invocations)),
    )


def cost_adjusted_return_pct(pnl: Number, llm_cost_usd: Number, initial_capital: Number) -> float | None:
    """(PnL - LLM cost) / initial capital x 100; the account currency is taken as USD (USDT ~ USD)."""
    capital = float(initial_capital)
    if capital <= 0:
        return None
    return (float(pnl) - float(llm_cost_usd)) / capital * 100.0


# --- one participant ------------------------------------------------------------------


@dataclass(frozen=True)
class ParticipantMetrics:
    equity: float  # last equity point
    pnl: float  # equity - initial capital (after fees, funding and financing)
    pnl_before_fees: float | None  # pnl + fees_paid, when fees are given
    realised_pnl: float | None  # passed through from the ledger
    unrealised_pnl: float | None  # passed through from the ledger
    fees_paid: float | None  # passed through: trading fees paid (positive = paid)
    funding_paid: float | None  # passed through: funding and financing (positive = paid)
    return_pct: float | None  # (equity / initial capital - 1) x 100
    annualised_return_pct: float | None
    sharpe: float | None
    sortino: float | None
    calmar: float | None
    max_drawdown: float  # %, <= 0
    max_drawdown_rounds: int
    max_drawdown_duration: timedelta | None
    current_drawdown: float  # %, <= 0
    rounds: int  # number of per-round returns, N
    trade: TradeStats
    exposure: ExposureShares
    average_leverage: float | None
    llm: LLMStats
    cost_adjusted_return: float | None  # %, (PnL - LLM cost) / initial capital x 100

    @property
    def win_rate(self) -> float | None:
        return self.trade.win_rate

    @property
    def profit_factor(self) -> float | None:
        return self.trade.profit_factor

    @property
    def trades(self) -> int:
        return self.trade.trades

    @property
    def expectancy(self) -> float | None:
        return self.trade.expectancy

    @property
    def llm_cost_usd(self) -> float:
        return self.llm.cost_usd

    @property
    def invalid_rate(self) -> float | None:
        return self.llm.invalid_rate

    @property
    def error_rate(self) -> float | None:
        return self.llm.error_rate


def participant_metrics(
    *,
    equity: Sequence[Number],
    initial_capital: Number,
    periods_per_year: float,
    times: Sequence[datetime] | None = None,
    trades: Sequence[ClosedTrade] | TradeTotals = (),
    exposure_signs: Sequence[Number] | ExposureTally = (),
    gross_notional: Sequence[Number] | None = None,
    invocations: Sequence[InvocationRecord] = (),
    risk_free_per_period: float = 0.0,
    realised_pnl: Number | None = None,
    unrealised_pnl: Number | None = None,
    fees_paid: Number | None = None,
    funding_paid: Number | None = None,
) -> ParticipantMetrics:
    """Every per-participant metric from plain sequences a selector loads.

    equity: equity on the round grid, oldest first, starting with the initial capital
    before the first round (an empty series means "no round yet": equity = capital).
    times: the market time of each equity point (optional, for drawdown duration).
    trades, exposure_signs: the closed trades and per-round exposure signs, or their running
    totals (TradeTotals, ExposureTally) when the caller keeps those instead.
    gross_notional: per equity point, aligned with equity (optional, for leverage).
    realised_pnl, unrealised_pnl, fees_paid, funding_paid: ledger sums the selector already
    has, carried into the row so one object holds the whole leaderboard line.
    """
    capital = float(initial_capital)
    series = _to_floats(equity) if len(equity) else np.array([capital])
    returns = returns_from_equity(series)
    last = float(series[-1])
    drawdown = drawdown_stats(series, times if times is not None and len(equity) else None)
    llm = llm_stats(invocations)
    pnl = last - capital
    return ParticipantMetrics(
        equity=last,
        pnl=pnl,
        pnl_before_fees=pnl + float(fees_paid) if fees_paid is not None else None,
        realised_pnl=_optional_float(realised_pnl),
        unrealised_pnl=_optional_float(unrealised_pnl),
        fees_paid=_optional_float(fees_paid),
        funding_paid=_optional_float(funding_paid),
        return_pct=(last / capital - 1.0) * 100.0 if capital > 0 else None,
        annualised_return_pct=annualised_return_pct(series, periods_per_year),
        sharpe=sharpe_ratio(returns, periods_per_year, risk_free_per_period=risk_free_per_period),
        sortino=sortino_ratio(returns, periods_per_year),
        calmar=calmar_ratio(series, periods_per_year),
        max_drawdown=drawdown.max_drawdown,
        max_drawdown_rounds=drawdown.duration_rounds,
        max_drawdown_duration=drawdown.duration,
        current_drawdown=drawdown.current_drawdown,
        rounds=len(returns),
        trade=trade_stats(trades),
        exposure=exposure_shares(exposure_signs),
        average_leverage=(
            average_leverage(gross_notional, series) if gross_notional is not None and len(equity) else None
        ),
        llm=llm,
        cost_adjusted_return=cost_adjusted_return_pct(pnl, llm.cost_usd, capital),
    )


# --- per competition: leaderboard -----------------------------------------------------

# metric -> True when higher is better. Drawdowns are negative percentages, so the
# shallowest (closest to 0) ranks first; rates of failure and cost rank lowest first.
LEADERBOARD_METRICS: dict[str, bool] = {
    "equity": True,
    "pnl": True,
    "pnl_before_fees": True,
    "fees_paid": False,
    "return_pct": True,
    "annualised_return_pct": True,
    "sharpe": True,
    "sortino": True,
    "calmar": True,
    "max_drawdown": True,
    "current_drawdown": True,
    "win_rate": True,
    "profit_factor": True,
    "expectancy": True,
    "trades": True,
    "cost_adjusted_return": True,
    "average_leverage": False,
    "llm_cost_usd": False,
    "invalid_rate": False,
    "error_rate": False,
}
DEFAULT_LEADERBOARD_METRIC = "equity"


def leaderboard_sort[Row](
    rows: Iterable[Row],
    metric: str = DEFAULT_LEADERBOARD_METRIC,
    *,
    metrics_of: Callable[[Row], ParticipantMetrics] | None = None,
) -> list[Row]:
    """Rows best first by metric (direction from LEADERBOARD_METRICS); None sorts last.

    Ties keep the input order (stable sort), so a selector can pre-order by name or id.
    metrics_of picks the ParticipantMetrics out of a row (default: the row is one).
    """
    if metric not in LEADERBOARD_METRICS:
        raise ValueError(f"unknown leaderboard metric {metric!r}; choose from {sorted(LEADERBOARD_METRICS)}")
    higher_is_better = LEADERBOARD_METRICS[metric]

    def sort_key(row: Row) -> tuple[bool, float]:
        metrics = metrics_of(row) if metrics_of is not None else row
        value = getattr(metrics, metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (True, 0.0)
        value = float(value)
        return (False, -value if higher_is_better else value)

    return sorted(rows, key=sort_key)


# --- per competition: buy-and-hold reference ------------------------------------------


def buy_and_hold_equity(prices: Mapping[str, Sequence[Number]], initial_capital: Number) -> list[float]:
    """Equal-weight buy and hold: capital / n per symbol at the first price, no costs.

    prices: symbol -> price per equity point (aligned on the round grid, same length).
    E_t = sum over symbols of (capital / n / P_0) x P_t.
    """
    capital = float(initial_capital)
    if not prices:
        return []
    series = [_to_floats(values) for values in prices.values()]
    length = len(series[0])
    if any(len(values) != length for values in series):
        raise ValueError("price series must align")
    if length == 0:
        return []
    matrix = np.vstack(series)
    if (matrix[:, 0] <= 0).any():
        raise ValueError("first prices must be positive")
    units = capital / len(series) / matrix[:, 0]
    return (units @ matrix).tolist()
