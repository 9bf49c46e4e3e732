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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import numpy as np

Number = float | int | Decimal

TRADING_DAYS_PER_YEAR = 252
CALENDAR_DAYS_PER_YEAR = 365
MINUTES_PER_DAY = 1440


def _to_floats(values: Iterable[Number]) -> np.ndarray:
    return np.array([float(value) for value in values], dtype=float)


def _optional_float(value: Number | None) -> float | None:
    return None if value is None else float(value)


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


# Returns computed from a compounding equity series differ in the last bits even when
# they are "the same"; dividing by that residue would give a Sharpe near 1e15.
_DISPERSION_TOLERANCE = 1e-12


def _no_dispersion(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """True where the values are all equal within 1e-12 of their largest magnitude."""
    spread = np.ptp(values, axis=axis)
    scale = np.max(np.abs(values), axis=axis)
    return spread <= _DISPERSION_TOLERANCE * scale


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


# --- trades ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClosedTrade:
    """One closed position: its net PnL (after fees and funding) and when it was open."""

    net_pnl: Number
    opened_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int  # net PnL > 0
    losses: int  # net PnL < 0; break-even trades count in trades only
    win_rate: float | None  # % of trades that won; None without trades
    profit_factor: float | None  # sum wins / |sum losses|; inf with wins and no losses; None with neither
    average_win: float | None
    average_loss: float | None  # negative
    largest_win: float | None
    largest_loss: float | None  # negative (the most negative PnL)
    expectancy: float | None  # mean net PnL per trade
    average_holding: timedelta | None
    median_holding: timedelta | None


@dataclass
class TradeTotals:
    """Closed trades folded into exact running sums: all trade_stats needs, without keeping
    every trade (competitions.aggregates stores one per participant and adds each round's).

    PnL sums are Decimal, so the order trades are added in never changes a digit; holding
    times are kept as a histogram (holding -> trades) for the median.
    """

    trades: int = 0
    wins: int = 0
    losses: int = 0
    net_pnl: Decimal = Decimal(0)
    gross_win: Decimal = Decimal(0)
    gross_loss: Decimal = Decimal(0)  # sum of the losing trades' PnL, <= 0
    largest_win: Decimal | None = None
    largest_loss: Decimal | None = None
    holding_trades: int = 0  # trades with both times
    holding_total: timedelta = timedelta(0)
    holdings: dict[timedelta, int] = field(default_factory=dict)

    @classmethod
    def of(cls, trades: Iterable[ClosedTrade]) -> TradeTotals:
        totals = cls()
        for trade in trades:
            totals.add(trade)
        return totals

    def add(self, trade: ClosedTrade) -> None:
        pnl = trade.net_pnl if isinstance(trade.net_pnl, Decimal) else Decimal(trade.net_pnl)
        self.trades += 1
        self.net_pnl += pnl
        if pnl > 0:
            self.wins += 1
            self.gross_win += pnl
            self.largest_win = pnl if self.largest_win is None else max(self.largest_win, pnl)
        elif pnl < 0:
            self.losses += 1
            self.gross_loss += pnl
            self.largest_loss = pnl if self.largest_loss is None else min(self.largest_loss, pnl)
        if trade.opened_at is not None and trade.closed_at is not None:
            holding = trade.closed_at - trade.opened_at
            self.holding_trades += 1
            self.holding_total += holding
            self.holdings[holding] = self.holdings.get(holding, 0) + 1

    def median_holding(self) -> timedelta | None:
        """statistics.median of the holding times: the middle one, or the mean of the middle two."""
        if not self.holding_trades:
            return None
        wanted = [(self.holding_trades - 1) // 2, self.holding_trades // 2]
        middle: list[timedelta] = []
        seen = 0
        for holding in sorted(self.holdings):
            seen += self.holdings[holding]
            while wanted and wanted[0] < seen:
                middle.append(holding)
                wanted.pop(0)
        return middle[0] if middle[0] == middle[1] else (middle[0] + middle[1]) / 2

    def stats(self) -> TradeStats:
        trades, wins, losses = self.trades, self.wins, self.losses
        if losses:
            profit_factor: float | None = float(self.gross_win / -self.gross_loss)
        elif wins:
            profit_factor = math.inf
        else:
            profit_factor = None
        return TradeStats(
            trades=trades,
            wins=wins,
            losses=losses,
            win_rate=wins / trades * 100.0 if trades else None,
            profit_factor=profit_factor,
            average_win=float(self.gross_win / wins) if wins else None,
            average_loss=float(self.gross_loss / losses) if losses else None,
            largest_win=_optional_float(self.largest_win),
            largest_loss=_optional_float(self.largest_loss),
            expectancy=float(self.net_pnl / trades) if trades else None,
            average_holding=self.holding_total / self.holding_trades if self.holding_trades else None,
            median_holding=self.median_holding(),
        )


def trade_stats(trades: Sequence[ClosedTrade] | TradeTotals) -> TradeStats:
    """Trade statistics by closed position (not by period), from the trades or their totals.

    Sums are exact (Decimal) and rounded to float once, so they do not depend on trade order.
    """
    totals = trades if isinstance(trades, TradeTotals) else TradeTotals.of(trades)
    return totals.stats()


# --- exposure and leverage ------------------------------------------------------------


@dataclass(frozen=True)
class ExposureShares:
    long: float | None  # % of rounds with net exposure > 0
    short: float | None  # % of rounds with net exposure < 0
    flat: float | None  # % of rounds with no exposure


@dataclass
class ExposureTally:
    """Rounds counted by the sign of net exposure: all exposure_shares needs."""

    long: int = 0
    short: int = 0
    flat: int = 0

    @classmethod
    def of(cls, exposure_signs: Iterable[Number]) -> ExposureTally:
        signs = np.sign(_to_floats(exposure_signs))
        return cls(int(np.sum(signs > 0)), int(np.sum(signs < 0)), int(np.sum(signs == 0)))

    def count(self, sign: int, times: int = 1) -> None:
        if sign > 0:
            self.long += times
        elif sign < 0:
            self.short += times
        else:
            self.flat += times


def exposure_shares(exposure_signs: Sequence[Number] | ExposureTally) -> ExposureShares:
    """Share of rounds long / short / flat from the per-round sign of net exposure (or its tally)."""
    tally = exposure_signs if isinstance(exposure_signs, ExposureTally) else ExposureTally.of(exposure_signs)
    rounds = tally.long + tally.short + tally.flat
    if rounds == 0:
        return ExposureShares(None, None, None)
    return ExposureShares(
        long=tally.long / rounds * 100.0,
        short=tally.short / rounds * 100.0,
        flat=tally.flat / rounds * 100.0,
    )


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


# --- per competition: significance ----------------------------------------------------

Statistic = Literal["sharpe", "total_return"]
Verdict = Literal["better", "worse", "not distinguishable"]


@dataclass(frozen=True)
class PairComparison:
    """Is `first` better than `second`? Difference = statistic(first) - statistic(second)."""

    first: str
    second: str
    statistic: Statistic
    difference: float | None  # on the observed series
    ci_low: float | None
    ci_high: float | None
    verdict: Verdict
    block_length: int = 0
    resamples: int = 0


_RESAMPLE_CELLS = 2_000_000


def default_block_length(n_returns: int) -> int:
    """ceil(sqrt(N)), at least 1: long enough to keep short-range autocorrelation."""
    return max(1, math.ceil(math.sqrt(n_returns)))


def _block_indices(n: int, block_length: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    # moving block bootstrap: uniform block starts in [0, N - L], blocks concatenated, cut to N
    n_blocks = math.ceil(n / block_length)
    starts = rng.integers(0, n - block_length + 1, size=(n_resamples, n_blocks))
    return (starts[:, :, None] + np.arange(block_length)).reshape(n_resamples, -1)[:, :n]


def _statistic_per_row(
    samples: np.ndarray, statistic: Statistic, periods_per_year: float, risk_free_per_period: float
) -> np.ndarray:
    """The statistic along axis 1; NaN where undefined (zero std)."""
    if statistic == "total_return":
        return (np.prod(1.0 + samples, axis=1) - 1.0) * 100.0
    excess = samples - risk_free_per_period
    std = excess.std(axis=1, ddof=1)
    constant = _no_dispersion(excess, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sharpe = excess.mean(axis=1) / std * math.sqrt(periods_per_year)
    sharpe[constant] = np.nan
    return sharpe


def compare_participants(
    returns: Mapping[str, Sequence[Number]],
    *,
    statistic: Statistic = "sharpe",
    periods_per_year: float = 1.0,
    n_resamples: int = 2000,
    block_length: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
    risk_free_per_period: float = 0.0,
) -> list[PairComparison]:
    """Paired moving-block bootstrap of the difference in Sharpe or total return, every pair.

    returns: participant -> per-round returns, aligned on the same rounds. Each resample
    draws one set of round indices shared by all participants (the same market for all),
    so the comparison is paired. Percentile CI at `confidence`; verdict "better" when the
    whole interval is above 0, "worse" when below, else "not distinguishable".
    Deterministic for a fixed seed (numpy default_rng). Pairs are (i, j) for i < j in
    input order; (j, i) is the mirror image.
    """
    names = list(returns)
    matrix = np.vstack([_to_floats(returns[name]) for name in names]) if names else np.empty((0, 0))
    n = matrix.shape[1] if names else 0
    if any(len(returns[name]) != n for name in names):
        raise ValueError("return series must be aligned on the same rounds")
    length = min(block_length or default_block_length(n), max(n, 1))
    observed = (
        _statistic_per_row(matrix, statistic, periods_per_year, risk_free_per_period) if n >= 2 else None
    )

    resampled: np.ndarray | None = None
    if n >= 2 and names:
        rng = np.random.default_rng(seed)
        resampled = np.empty((len(names), n_resamples))
        # resample in chunks of ~2M cells so memory stays flat however long the competition
        chunk = max(1, _RESAMPLE_CELLS // n)
        for start in range(0, n_resamples, chunk):
            stop = min(start + chunk, n_resamples)
            indices = _block_indices(n, length, stop - start, rng)
            for row, series in enumerate(matrix):
                resampled[row, start:stop] = _statistic_per_row(
                    series[indices], statistic, periods_per_year, risk_free_per_period
                )

    tail = (1.0 - confidence) / 2.0 * 100.0
    comparisons = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            difference = None
            ci_low = ci_high = None
            verdict: Verdict = "not distinguishable"
            if observed is not None and resampled is not None:
                observed_difference = observed[i] - observed[j]
                difference = None if math.isnan(observed_difference) else float(observed_difference)
                differences = resampled[i] - resampled[j]
                differences = differences[~np.isnan(differences)]
                # a CI from under half the resamples says more about the NaNs than the skill
                if len(differences) >= n_resamples / 2:
                    ci_low = float(np.percentile(differences, tail))
                    ci_high = float(np.percentile(differences, 100.0 - tail))
                    if ci_low > 0:
                        verdict = "better"
                    elif ci_high < 0:
                        verdict = "worse"
            comparisons.append(
                PairComparison(
                    first=names[i],
                    second=names[j],
                    statistic=statistic,
                    difference=difference,
                    ci_low=ci_low,
                    ci_high=ci_high,
                    verdict=verdict,
                    block_length=length,
                    resamples=n_resamples,
                )
            )
    return comparisons
