"""Reads of competitions: the leaderboard, benchmarks, significance, histories and feeds.

Selectors load rows; `competitions/analytics.py` (pure) computes every metric. Each selector
fetches each table once for the whole competition with `values_list` and groups in Python,
so its query count is constant whatever the number of participants, rounds, fills or
invocations (the tests pin the counts with django_assert_max_num_queries).

How rows become metric inputs (docs/analytics.md, "From rows to metrics"):
- equity: a participant's EquitySnapshot rows (one per round, written by account_mark) in
  market_time order, the initial capital prepended at `capital time` = min(competition
  start, first snapshot - one interval);
- trades: closed Position rows, net PnL = realised PnL - fees + funding (funding is signed,
  + received);
- exposure: net quantity per symbol replayed from Fill rows, each symbol at its last fill
  price, at each equity point; leverage: gross notional from the snapshots;
- ledger sums: LedgerEntry amounts by kind (fees and funding reported as paid, positive);
- LLM: Invocation rows (status, latency, tokens, cost, action outcome counts).

Trades and exposure come from competitions.aggregates: the stored running totals of each
participant (ParticipantAggregate, folded as rounds complete) plus the same fold over the
rows written after them, so a page reads the fills and closed positions of the last round,
not of the whole competition, and gets exactly what a fold from scratch would give.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    FloatField,
    OuterRef,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce

from agents.models import Invocation
from competitions import aggregates, analytics
from competitions.aggregates import ParticipantFold
from competitions.analytics import InvocationRecord, PairComparison, ParticipantMetrics
from competitions.models import Competition, Participant, Round
from marketdata.models import MarketSnapshotRecord
from trading.models import EquitySnapshot, Fill, LedgerEntry, Position

TimePoint = tuple[datetime, float]

BENCHMARK_NAME = "Buy and hold (equal weight)"
BENCHMARK_PROVIDER = "benchmark"

_OUTCOMES = {
    Invocation.Status.SUCCESS: "ok",
    Invocation.Status.INVALID_RESPONSE: "invalid",
    Invocation.Status.ERROR: "error",
    Invocation.Status.TIMEOUT: "timeout",
}


# --- the leaderboard row ----------------------------------------------------------------

# Flat column name -> path into ParticipantMetrics. Pages and the API iterate this for their
# columns; `row.<column>` and `row.as_dict()` read through it.
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "equity": ("equity",),
    "return_pct": ("return_pct",),
    "annualised_return_pct": ("annualised_return_pct",),
    "pnl": ("pnl",),
    "realised_pnl": ("realised_pnl",),
    "unrealised_pnl": ("unrealised_pnl",),
    "pnl_before_fees": ("pnl_before_fees",),
    "fees_paid": ("fees_paid",),
    "funding_paid": ("funding_paid",),
    "max_drawdown": ("max_drawdown",),
    "max_drawdown_rounds": ("max_drawdown_rounds",),
    "max_drawdown_duration": ("max_drawdown_duration",),
    "current_drawdown": ("current_drawdown",),
    "sharpe": ("sharpe",),
    "sortino": ("sortino",),
    "calmar": ("calmar",),
    "rounds": ("rounds",),
    "trades": ("trade", "trades"),
    "wins": ("trade", "wins"),
    "losses": ("trade", "losses"),
    "win_rate": ("trade", "win_rate"),
    "profit_factor": ("trade", "profit_factor"),
    "average_win": ("trade", "average_win"),
    "average_loss": ("trade", "average_loss"),
    "largest_win": ("trade", "largest_win"),
    "largest_loss": ("trade", "largest_loss"),
    "expectancy": ("trade", "expectancy"),
    "average_holding": ("trade", "average_holding"),
    "median_holding": ("trade", "median_holding"),
    "share_long": ("exposure", "long"),
    "share_short": ("exposure", "short"),
    "share_flat": ("exposure", "flat"),
    "average_leverage": ("average_leverage",),
    "invocations": ("llm", "invocations"),
    "invalid_rate": ("llm", "invalid_rate"),
    "rejected_action_rate": ("llm", "rejected_action_rate"),
    "error_rate": ("llm", "error_rate"),
    "latency_p50": ("llm", "latency_p50"),
    "latency_p95": ("llm", "latency_p95"),
    "input_tokens": ("llm", "input_tokens"),
    "output_tokens": ("llm", "output_tokens"),
    "total_tokens": ("llm", "total_tokens"),
    "llm_cost_usd": ("llm", "cost_usd"),
    "cost_adjusted_return": ("cost_adjusted_return",),
}


@dataclass(frozen=True)
class LeaderboardRow:
    """One leaderboard line: who, and every metric (as `metrics` and as flat `row.<column>`).

    rank: 1 = best by the metric the list was sorted on; None for the buy-and-hold benchmark
    row and for rows returned by participant_performance. participant_id is None for the
    benchmark row. Units as in competitions.analytics (percent for returns and rates).
    """

    rank: int | None
    participant_id: int | None
    name: str
    provider: str
    model: str
    status: str
    is_baseline: bool
    metrics: ParticipantMetrics
    is_benchmark: bool = False

    def __getattr__(self, name: str) -> Any:
        path = ROW_COLUMNS.get(name)
        if path is None:
            raise AttributeError(name)
        value: Any = object.__getattribute__(self, "metrics")
        for part in path:
            value = getattr(value, part)
        return value

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-friendly: floats (inf stays inf for the profit factor), durations in seconds."""
        data: dict[str, Any] = {
            "rank": self.rank,
            "participant_id": self.participant_id,
            "name": self.name,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "is_baseline": self.is_baseline,
            "is_benchmark": self.is_benchmark,
        }
        for column in ROW_COLUMNS:
            value = getattr(self, column)
            data[column] = value.total_seconds() if isinstance(value, timedelta) else value
        return data


# --- loading: every table once for the whole competition ---------------------------------


@dataclass
class _ParticipantData:
    participant_id: int
    name: str
    provider: str
    model: str
    status: str
    account_id: int | None
    capital: Decimal
    times: list[datetime] = field(default_factory=list)  # one per equity snapshot (round)
    equity: list[float] = field(default_factory=list)
    gross_notional: list[float] = field(default_factory=list)
    unrealised: float | None = None
    ledger: dict[str, Decimal] = field(default_factory=dict)
    # exposure and trade totals: stored ones, then (at load) the rows past their watermarks
    fold: ParticipantFold = field(default_factory=ParticipantFold)
    # (snapshot id, market time) of the snapshots past the fold's snapshot watermark
    new_points: list[tuple[int, datetime]] = field(default_factory=list)
    invocations: list[InvocationRecord] = field(default_factory=list)


@dataclass
class _RoundPrices:
    times: list[datetime]
    prices: list[dict[str, Decimal]]  # per round, symbol -> mid (symbols missing at a round absent)


def _competition(competition_id: int) -> Competition:
    return Competition.objects.get(pk=competition_id)


def _periods_per_year(competition: Competition) -> float:
    return analytics.periods_per_year(
        competition.invocation_interval_minutes, competition.allowed_asset_classes
    )


def _as_float(column: str) -> Cast:
    # analytics work in float; casting in the database skips a Decimal per value
    return Cast(column, FloatField())


def _load_snapshots(
    competition: Competition, participants: Iterable[_ParticipantData], *, new_points: bool = False
) -> None:
    """Fill times, equity, gross notional and last unrealised PnL from the equity snapshots.

    Two queries (three when a snapshot names a round the competition has no row for): a
    snapshot's time comes from its round's market time, so thousands of rows share a few
    datetime objects instead of converting one each. Gross notional is read back from the
    stored maintenance requirement (the engine's: gross notional at mark x maintenance %).
    A re-marked round (two snapshots at one market time) counts once, with the later values.
    new_points: also collect the snapshots past each participant's fold (its new_points).
    """
    by_account = {p.account_id: p for p in participants if p.account_id is not None}
    if not by_account:
        return
    round_times = dict(Round.objects.filter(competition=competition).values_list("number", "market_time"))
    maintenance_rate = float(competition.maintenance_margin_pct) / 100.0
    rows = list(
        EquitySnapshot.objects.filter(account_id__in=list(by_account))
        .order_by("account_id", "market_time", "id")
        .values_list(
            "id",
            "account_id",
            "round_number",
            Case(When(round_number__isnull=True, then=F("market_time")), default=None),
            _as_float("equity"),
            _as_float("unrealised_pnl"),
            _as_float("maintenance_requirement"),
        )
    )
    unknown = {row[1] for row in rows if row[2] is not None and row[2] not in round_times}
    own_times = (
        dict(EquitySnapshot.objects.filter(account_id__in=unknown).values_list("id", "market_time"))
        if unknown
        else {}
    )
    for snapshot_id, account_id, number, moment, equity, unrealised, maintenance in rows:
        participant = by_account[account_id]
        if moment is None:
            moment = round_times.get(number) or own_times[snapshot_id]
        if new_points and snapshot_id > participant.fold.snapshot_watermark:
            participant.new_points.append((snapshot_id, moment))
        gross = maintenance / maintenance_rate if maintenance_rate > 0 else 0.0
        if participant.times and participant.times[-1] == moment:
            participant.equity[-1], participant.gross_notional[-1] = equity, gross
        else:
            participant.times.append(moment)
            participant.equity.append(equity)
            participant.gross_notional.append(gross)
        participant.unrealised = unrealised


def _load_participants(
    competition: Competition, participant_ids: Sequence[int] | None = None, *, equity_only: bool = False
) -> dict[int, _ParticipantData]:
    """Participants with their accounts, stored aggregates, equity snapshots, ledger sums,
    trade and exposure totals and invocations: eight queries whatever the history (three
    with equity_only)."""
    participants = Participant.objects.filter(competition=competition)
    if participant_ids is not None:
        participants = participants.filter(pk__in=participant_ids)
    stored_columns = () if equity_only else tuple(f"aggregate__{name}" for name in aggregates.STORED_FIELDS)
    data: dict[int, _ParticipantData] = {}
    columns = ("id", "name", "llm_provider", "llm_model", "status", "account__id", "account__initial_capital")
    for pk, name, provider, model, status, account_id, capital, *stored in participants.order_by(
        "id"
    ).values_list(*columns, *stored_columns):
        data[pk] = _ParticipantData(
            pk,
            name,
            provider,
            model,
            status,
            account_id,
            capital if capital is not None else competition.initial_capital,
        )
        if stored:
            stored_values = dict(zip(aggregates.STORED_FIELDS, stored, strict=True))
            data[pk].fold = ParticipantFold.from_stored(stored_values)
    by_account = {p.account_id: p for p in data.values() if p.account_id is not None}
    if not data:
        return data
    _load_snapshots(competition, data.values(), new_points=not equity_only)
    if equity_only:
        return data
    account_filter = {"account_id__in": list(by_account)}

    for account_id, kind, total in (
        LedgerEntry.objects.filter(**account_filter)
        .order_by()
        .values("account_id", "kind")
        .annotate(total=Sum("amount"))
        .values_list("account_id", "kind", "total")
    ):
        by_account[account_id].ledger[kind] = Decimal(total)

    # the fills and closed positions past the stored totals (all of them when none are stored)
    fills, _ = aggregates.fills_after({pk: p.fold.fill_watermark for pk, p in by_account.items()})
    closed = aggregates.closed_after({pk: p.fold.trade_watermark for pk, p in by_account.items()})
    for account_id, participant in by_account.items():
        participant.fold.fold(
            points=participant.new_points, fills=fills[account_id], closed=closed[account_id]
        )

    # action outcomes are counted when a round completes; until then (or for invocations
    # written without a round) the JSON is read and counted here
    uncounted_outcomes = Case(
        When(actions_count__isnull=True, then=Cast("action_outcomes", TextField())),
        default=None,
        output_field=TextField(),
    )
    for participant_id, status, latency_ms, input_tokens, output_tokens, cost, actions, rejected, text in (
        Invocation.objects.filter(participant_id__in=list(data))
        .order_by("round_id", "participant_id")
        .values_list(
            "participant_id",
            "status",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            _as_float("cost_usd"),
            "actions_count",
            "rejected_actions_count",
            uncounted_outcomes,
        )
    ):
        if actions is None:
            actions, rejected = _count_actions(text)
        data[participant_id].invocations.append(
            InvocationRecord(
                outcome=_OUTCOMES.get(status, "error"),
                latency_seconds=latency_ms / 1000.0 if latency_ms is not None else None,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost_usd=cost,
                actions=actions,
                rejected_actions=rejected or 0,
            )
        )
    return data


def _count_actions(text: str | None) -> tuple[int, int]:
    """aggregates.action_counts of Invocation.action_outcomes as JSON text (a hold's "[]" is
    never decoded)."""
    if not text or text.strip() == "[]":
        return 0, 0
    return aggregates.action_counts(text)


def _snapshot_symbols(competition: Competition) -> list[str]:
    """The competition's symbols; when it lists none, the symbols of its latest round snapshot."""
    if competition.symbols:
        return list(competition.symbols)
    payload = (
        MarketSnapshotRecord.objects.filter(rounds__competition=competition)
        .order_by("-at")
        .values_list(KeyTransform("symbols", "payload"), flat=True)
        .first()
    )
    return sorted(payload) if isinstance(payload, dict) else []


def _load_round_prices(competition: Competition, symbols: Iterable[str]) -> _RoundPrices:
    """Mid price per symbol at every round that stored a snapshot, in one query.

    From Round.prices (the mids copied when the round completed); a round without them yet
    has them extracted from its snapshot JSON by the database, not the candles around them.
    """
    symbols = sorted(set(symbols))
    snapshot_symbols = KeyTransform("symbols", "snapshot__payload")
    expressions = [
        Case(
            When(prices__isnull=True, then=KeyTextTransform("price", KeyTransform(symbol, snapshot_symbols))),
            default=KeyTextTransform(symbol, "prices"),
            output_field=TextField(),
        )
        for symbol in symbols
    ]
    times: list[datetime] = []
    prices: list[dict[str, Decimal]] = []
    rows = (
        Round.objects.filter(competition=competition, snapshot__isnull=False)
        .order_by("market_time", "number")
        .values_list("market_time", *expressions)
    )
    for moment, *values in rows:
        round_prices = {}
        for symbol, value in zip(symbols, values):
            if value not in (None, ""):
                round_prices[symbol] = Decimal(str(value))
        if times and times[-1] == moment:
            prices[-1] = round_prices
            continue
        times.append(moment)
        prices.append(round_prices)
    return _RoundPrices(times, prices)


def _capital_time(competition: Competition, first: datetime) -> datetime:
    return min(competition.start_time, first - timedelta(minutes=competition.invocation_interval_minutes))


def _equity_series(
    competition: Competition, participant: _ParticipantData
) -> tuple[list[datetime], list[float]]:
    """Times and equity with the initial capital prepended; empty before the first round."""
    if not participant.equity:
        return [], []
    return (
        [_capital_time(competition, participant.times[0]), *participant.times],
        [float(participant.capital), *participant.equity],
    )


def _metrics(competition: Competition, participant: _ParticipantData, periods: float) -> ParticipantMetrics:
    times, equity = _equity_series(competition, participant)
    has_account = participant.account_id is not None
    ledger = participant.ledger
    return analytics.participant_metrics(
        equity=equity,
        initial_capital=participant.capital,
        periods_per_year=periods,
        times=times or None,
        trades=participant.fold.trades,
        exposure_signs=participant.fold.exposure if equity else (),
        gross_notional=[0.0, *participant.gross_notional] if equity else None,
        invocations=participant.invocations,
        realised_pnl=ledger.get("realised_pnl", Decimal(0)) if has_account else None,
        unrealised_pnl=(participant.unrealised or 0.0) if has_account else None,
        fees_paid=-ledger.get("fee", Decimal(0)) if has_account else None,
        funding_paid=-(ledger.get("funding", Decimal(0)) + ledger.get("financing", Decimal(0)))
        if has_account
        else None,
    )


def _row(
    participant: _ParticipantData, metrics: ParticipantMetrics, rank: int | None = None
) -> LeaderboardRow:
    return LeaderboardRow(
        rank=rank,
        participant_id=participant.participant_id,
        name=participant.name,
        provider=participant.provider,
        model=participant.model,
        status=participant.status,
        is_baseline=participant.provider == Participant.Provider.BASELINE,
        metrics=metrics,
    )


# --- leaderboard ------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaderboard:
    """Ranked rows and what a page draws beside them, from one load of the competition.

    equity: participant id -> [(market time, equity)] with the capital point first, not
    downsampled (as equity_history before downsampling); benchmark: the buy-and-hold
    reference (buy_and_hold_reference), [] unless asked for or before the first round.
    """

    rows: list[LeaderboardRow]
    equity: dict[int, list[TimePoint]]
    benchmark: list[TimePoint]


def leaderboard_get(
    *,
    competition_id: int,
    metric: str = analytics.DEFAULT_LEADERBOARD_METRIC,
    include_benchmark: bool = False,
    participant_ids: Sequence[int] | None = None,
) -> Leaderboard:
    """The leaderboard (as leaderboard_list) with every participant's equity history and,
    with include_benchmark, the buy-and-hold reference the benchmark row was computed from.

    participant_ids: only these participants, ranked among themselves. At most 8 queries
    (10 with the benchmark) whatever the number of participants, rounds, fills or invocations.
    """
    if metric not in analytics.LEADERBOARD_METRICS:
        raise ValueError(
            f"unknown leaderboard metric {metric!r}; choose from {sorted(analytics.LEADERBOARD_METRICS)}"
        )
    competition = _competition(competition_id)
    periods = _periods_per_year(competition)
    participants = _load_participants(competition, participant_ids)
    rows = [_row(p, _metrics(competition, p, periods)) for p in participants.values()]
    ranked = [
        _with_rank(row, rank)
        for rank, row in enumerate(analytics.leaderboard_sort(rows, metric, metrics_of=_metrics_of), start=1)
    ]
    reference: list[TimePoint] = []
    if include_benchmark:
        reference = _benchmark(competition)
        benchmark = _benchmark_row(competition, reference, periods)
        if benchmark is not None:
            ranked = analytics.leaderboard_sort([*ranked, benchmark], metric, metrics_of=_metrics_of)
    return Leaderboard(
        rows=ranked,
        equity={p.participant_id: _history(competition, p) for p in participants.values()},
        benchmark=reference,
    )


def leaderboard_list(
    *,
    competition_id: int,
    metric: str = analytics.DEFAULT_LEADERBOARD_METRIC,
    limit: int | None = None,
    include_benchmark: bool = False,
) -> list[LeaderboardRow]:
    """Every participant's leaderboard row, best first by `metric`, ranked 1..n.

    metric: any key of analytics.LEADERBOARD_METRICS (ValueError naming them otherwise);
    None values sort last, ties keep participant id order. include_benchmark adds the
    buy-and-hold row (rank None) sorted among the participants. limit cuts the list after
    sorting. At most 8 queries (10 with the benchmark) whatever the number of participants,
    rounds, fills or invocations.
    """
    rows = leaderboard_get(
        competition_id=competition_id, metric=metric, include_benchmark=include_benchmark
    ).rows
    return rows[:limit] if limit is not None else rows


def _metrics_of(row: LeaderboardRow) -> ParticipantMetrics:
    return row.metrics


def _with_rank(row: LeaderboardRow, rank: int | None) -> LeaderboardRow:
    return LeaderboardRow(
        rank=rank,
        participant_id=row.participant_id,
        name=row.name,
        provider=row.provider,
        model=row.model,
        status=row.status,
        is_baseline=row.is_baseline,
        metrics=row.metrics,
        is_benchmark=row.is_benchmark,
    )


@dataclass(frozen=True)
class ParticipantPerformance:
    """One participant's row and its full equity history ([(market time, equity)], capital first)."""

    row: LeaderboardRow
    equity: list[TimePoint]


def participant_performance_get(*, participant_id: int) -> ParticipantPerformance:
    """participant_performance and the equity history it was computed from, in one load
    (a page draws the equity and drawdown charts from it: downsample, drawdown_history).
    8 queries."""
    participant = Participant.objects.select_related("competition").get(pk=participant_id)
    competition = participant.competition
    data = _load_participants(competition, [participant_id])[participant_id]
    row = _row(data, _metrics(competition, data, _periods_per_year(competition)))
    return ParticipantPerformance(row=row, equity=_history(competition, data))


def participant_performance(*, participant_id: int) -> LeaderboardRow:
    """One participant's row (every metric) for its page and the API performance endpoint.

    rank is None: ranking needs the whole competition (use leaderboard_list). 8 queries.
    """
    return participant_performance_get(participant_id=participant_id).row


# --- buy-and-hold benchmark ---------------------------------------------------------------


def _buy_and_hold(
    competition: Competition, round_prices: _RoundPrices, symbols: Sequence[str]
) -> list[TimePoint]:
    """Equal weight at the first round's mids; a symbol without a mid at that round is left
    out, and a later missing mid repeats the symbol's previous one."""
    if not round_prices.times:
        return []
    first = round_prices.prices[0]
    held = [symbol for symbol in symbols if first.get(symbol)]
    if not held:
        return []
    series: dict[str, list[Decimal]] = {symbol: [] for symbol in held}
    for prices in round_prices.prices:
        for symbol in held:
            price = prices.get(symbol)
            series[symbol].append(price if price else series[symbol][-1])
    equity = analytics.buy_and_hold_equity(series, competition.initial_capital)
    return list(zip(round_prices.times, equity))


def buy_and_hold_reference(*, competition_id: int) -> list[TimePoint]:
    """Equal-weight buy and hold of the competition's symbols over its rounds' market times.

    Bought at the mids of the first round's stored snapshot with the initial capital, no
    costs, held to the last round: E_t = sum_i (C / n / P_i,first) x P_i,t. Empty before the
    first round. Two or three queries.
    """
    return _benchmark(_competition(competition_id))


def _benchmark(competition: Competition) -> list[TimePoint]:
    symbols = _snapshot_symbols(competition)
    return _buy_and_hold(competition, _load_round_prices(competition, symbols), symbols)


def _benchmark_row(
    competition: Competition, points: list[TimePoint], periods: float
) -> LeaderboardRow | None:
    if not points:
        return None
    metrics = analytics.participant_metrics(
        equity=[equity for _, equity in points],
        times=[moment for moment, _ in points],
        initial_capital=competition.initial_capital,
        periods_per_year=periods,
    )
    return LeaderboardRow(
        rank=None,
        participant_id=None,
        name=BENCHMARK_NAME,
        provider=BENCHMARK_PROVIDER,
        model="",
        status="",
        is_baseline=True,
        metrics=metrics,
        is_benchmark=True,
    )


# --- significance -----------------------------------------------------------------------


def aligned_returns(*, competition_id: int) -> dict[str, list[float]]:
    """Per-round returns of every participant on one grid: the union of snapshot times.

    Before its first snapshot a participant holds its capital; after its last (e.g. a
    disqualified participant no longer marked) its equity carries forward, so its return is 0.
    """
    competition = _competition(competition_id)
    return _aligned_returns(_load_participants(competition, equity_only=True))


def _aligned_returns(participants: dict[int, _ParticipantData]) -> dict[str, list[float]]:
    grid = sorted({moment for p in participants.values() for moment in p.times})
    returns: dict[str, list[float]] = {}
    for participant in participants.values():
        values = [participant.capital]
        index = 0
        current = participant.capital
        for moment in grid:
            while index < len(participant.times) and participant.times[index] <= moment:
                current = participant.equity[index]
                index += 1
            values.append(current)
        returns[participant.name] = analytics.returns_from_equity(values)
    return returns


def significance_matrix(
    *,
    competition_id: int,
    statistic: analytics.Statistic = "sharpe",
    seed: int | None = None,
    n_resamples: int = 2000,
) -> list[PairComparison]:
    """For each pair of participants (in id order), the seeded block-bootstrap 95 % interval of
    the difference in Sharpe or total return and its verdict (analytics.compare_participants).

    Returns are aligned per round (aligned_returns); seed defaults to the competition's seed,
    so the page and the API show the same intervals every time.
    """
    if statistic not in ("sharpe", "total_return"):
        raise ValueError(f"unknown statistic {statistic!r}; choose from ['sharpe', 'total_return']")
    competition = _competition(competition_id)
    participants = _load_participants(competition, equity_only=True)
    return analytics.compare_participants(
        _aligned_returns(participants),
        statistic=statistic,
        periods_per_year=_periods_per_year(competition),
        n_resamples=n_resamples,
        seed=competition.seed if seed is None else seed,
    )


# --- histories for charts -------------------------------------------------------------------


def downsample(points: Sequence[TimePoint], target_points: int) -> list[TimePoint]:
    """About `target_points` points: the first point, then the last point of each of
    ceil(n / bucket) equal buckets (so the final point is always kept). Unchanged when short."""
    if target_points < 1:
        raise ValueError("target_points must be at least 1")
    if len(points) <= target_points:
        return list(points)
    bucket = math.ceil(len(points) / target_points)
    kept = [points[0]]
    for end in range(bucket - 1, len(points), bucket):
        if end != 0:
            kept.append(points[end])
    if kept[-1] is not points[-1]:
        kept.append(points[-1])
    return kept


def _downsample_deepest(points: Sequence[TimePoint], target_points: int) -> list[TimePoint]:
    """Like downsample, but each bucket keeps its lowest point (a drawdown chart must show
    the trough), plus the first and final points."""
    if target_points < 1:
        raise ValueError("target_points must be at least 1")
    if len(points) <= target_points:
        return list(points)
    bucket = math.ceil(len(points) / target_points)
    kept = [points[0]]
    for start in range(1, len(points) - 1, bucket):
        chunk = points[start : min(start + bucket, len(points) - 1)]
        kept.append(min(chunk, key=lambda point: point[1]))
    kept.append(points[-1])
    return kept


def _history(competition: Competition, participant: _ParticipantData) -> list[TimePoint]:
    times, equity = _equity_series(competition, participant)
    return list(zip(times, equity))


def equity_history(*, competition_id: int, target_points: int = 500) -> dict[int, list[TimePoint]]:
    """participant id -> [(market time, equity)] with the capital point first, downsampled to
    about target_points (downsample). Four queries."""
    competition = _competition(competition_id)
    participants = [
        _ParticipantData(pk, "", "", "", "", account_id, capital or competition.initial_capital)
        for pk, account_id, capital in Participant.objects.filter(competition=competition)
        .order_by("id")
        .values_list("id", "account__id", "account__initial_capital")
    ]
    _load_snapshots(competition, participants)
    return {p.participant_id: downsample(_history(competition, p), target_points) for p in participants}


def _participant_series(participant_id: int) -> list[TimePoint]:
    participant = Participant.objects.select_related("competition", "account").get(pk=participant_id)
    competition = participant.competition
    account = getattr(participant, "account", None)
    data = _ParticipantData(
        participant.pk,
        participant.name,
        "",
        "",
        "",
        account.pk if account else None,
        account.initial_capital if account else competition.initial_capital,
    )
    _load_snapshots(competition, [data])
    return _history(competition, data)


def participant_equity_history(*, participant_id: int, target_points: int = 500) -> list[TimePoint]:
    """[(market time, equity)] of one participant, capital first, downsampled. Three queries."""
    return downsample(_participant_series(participant_id), target_points)


def participant_drawdown_history(*, participant_id: int, target_points: int = 500) -> list[TimePoint]:
    """[(market time, drawdown %)] (<= 0, E_t / running peak - 1, x 100), downsampled keeping the
    deepest point of each bucket so the max drawdown stays on the chart. Three queries."""
    return drawdown_history(_participant_series(participant_id), target_points)


def drawdown_history(equity: Sequence[TimePoint], target_points: int = 500) -> list[TimePoint]:
    """participant_drawdown_history from an equity history already loaded (no query)."""
    points: list[TimePoint] = []
    peak = -math.inf
    for moment, value in equity:
        peak = max(peak, value)
        points.append((moment, (value / peak - 1.0) * 100.0 if peak > 0 else 0.0))
    return _downsample_deepest(points, target_points)


# --- lists for pages and the API ----------------------------------------------------------------


def competition_list(*, status: str | None = None) -> list[Competition]:
    """Competitions newest first, each annotated with participant_count, rounds_done (completed
    rounds), llm_cost_usd (sum over rounds) and, set in Python, leader_name / leader_equity
    (highest latest equity; a participant with no snapshot yet counts at its capital; None
    without participants). Two queries."""
    competitions = Competition.objects.all()
    if status is not None:
        competitions = competitions.filter(status=status)
    participant_count = (
        Participant.objects.filter(competition=OuterRef("pk"))
        .order_by()
        .values("competition")
        .annotate(count=Count("id"))
        .values("count")
    )
    rounds_done = (
        Round.objects.filter(competition=OuterRef("pk"), status=Round.Status.COMPLETED)
        .order_by()
        .values("competition")
        .annotate(count=Count("id"))
        .values("count")
    )
    cost = (
        Round.objects.filter(competition=OuterRef("pk"))
        .order_by()
        .values("competition")
        .annotate(total=Sum("llm_cost_usd"))
        .values("total")
    )
    money = DecimalField(max_digits=18, decimal_places=8)
    rows = list(
        competitions.annotate(
            participant_count=Coalesce(Subquery(participant_count), 0),
            rounds_done=Coalesce(Subquery(rounds_done), 0),
            llm_cost_usd=Coalesce(Subquery(cost, output_field=money), Value(Decimal(0), output_field=money)),
        )
    )
    if not rows:
        return rows
    latest_equity = (
        EquitySnapshot.objects.filter(account__participant=OuterRef("pk"))
        .order_by("-market_time", "-id")
        .values("equity")[:1]
    )
    leaders: dict[int, tuple[str, Decimal]] = {}
    for competition_id, name, equity, capital in (
        Participant.objects.filter(competition__in=[row.pk for row in rows])
        .order_by("competition_id", "id")
        .annotate(latest_equity=Subquery(latest_equity))
        .values_list("competition_id", "name", "latest_equity", "competition__initial_capital")
    ):
        value = equity if equity is not None else capital
        if competition_id not in leaders or value > leaders[competition_id][1]:
            leaders[competition_id] = (name, value)
    for row in rows:
        row.leader_name, row.leader_equity = leaders.get(row.pk, (None, None))
    return rows


@dataclass(frozen=True)
class FillLine:
    """A fill with who made it and why (the agent's reasoning when an agent order made it)."""

    id: int
    participant_id: int
    participant_name: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realised_pnl: Decimal
    closes: bool
    reason: str  # agent, stop_loss, take_profit, liquidation, competition_end
    market_time: datetime
    order_id: int | None
    invocation_id: int | None
    reasoning: str  # "" when no invocation made the order


def _fill_lines(fills) -> list[FillLine]:
    """Two queries: the fills (with participant and order) and the reasoning of their invocations."""
    rows = list(
        fills.select_related("account__participant", "order").only(
            "id",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "realised_pnl",
            "closes",
            "reason",
            "market_time",
            "order_id",
            "order__invocation_id",
            "account__participant__id",
            "account__participant__name",
        )
    )
    invocation_ids = {
        row.order.invocation_id for row in rows if row.order is not None and row.order.invocation_id
    }
    reasoning = (
        dict(
            Invocation.objects.filter(pk__in=invocation_ids).values_list(
                "pk", KeyTextTransform("reasoning", "parsed_decision")
            )
        )
        if invocation_ids
        else {}
    )
    lines = []
    for row in rows:
        invocation_id = row.order.invocation_id if row.order is not None else None
        participant = row.account.participant
        lines.append(
            FillLine(
                id=row.pk,
                participant_id=participant.pk,
                participant_name=participant.name,
                symbol=row.symbol,
                side=row.side,
                quantity=row.quantity,
                price=row.price,
                fee=row.fee,
                realised_pnl=row.realised_pnl,
                closes=row.closes,
                reason=row.reason,
                market_time=row.market_time,
                order_id=row.order_id,
                invocation_id=invocation_id,
                reasoning=reasoning.get(invocation_id) or "",
            )
        )
    return lines


def recent_fills(*, competition_id: int, limit: int = 20) -> list[FillLine]:
    """The competition's latest fills, newest first, with participant name and reasoning. Two queries."""
    fills = Fill.objects.filter(account__participant__competition_id=competition_id).order_by(
        "-market_time", "-id"
    )
    return _fill_lines(fills[:limit])


def participant_fills(*, participant_id: int, limit: int | None = None) -> list[FillLine]:
    """One participant's fills, newest first. Two queries."""
    fills = Fill.objects.filter(account__participant_id=participant_id).order_by("-market_time", "-id")
    return _fill_lines(fills[:limit] if limit is not None else fills)


@dataclass(frozen=True)
class DecisionLine:
    """One invocation as the model chat feed shows it."""

    id: int
    participant_id: int
    participant_name: str
    round_number: int
    market_time: datetime
    status: str  # success, invalid_response, error, timeout
    reasoning: str
    actions: list[dict]  # the parsed decision's actions (JSON, Decimals as strings)
    outcomes: list[dict]  # what became of each action (index, status, code, reason, order_id)
    error: str
    latency_ms: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal


def _decision_lines(invocations) -> list[DecisionLine]:
    rows = invocations.select_related("participant", "round").only(
        "id",
        "status",
        "parsed_decision",
        "action_outcomes",
        "error",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "participant__id",
        "participant__name",
        "round__number",
        "round__market_time",
    )
    lines = []
    for row in rows:
        decision = row.parsed_decision if isinstance(row.parsed_decision, dict) else {}
        lines.append(
            DecisionLine(
                id=row.pk,
                participant_id=row.participant.pk,
                participant_name=row.participant.name,
                round_number=row.round.number,
                market_time=row.round.market_time,
                status=row.status,
                reasoning=str(decision.get("reasoning") or ""),
                actions=list(decision.get("actions") or []),
                outcomes=list(row.action_outcomes or []),
                error=row.error,
                latency_ms=row.latency_ms,
                input_tokens=row.input_tokens,
                output_tokens=row.output_tokens,
                cost_usd=row.cost_usd,
            )
        )
    return lines


def recent_decisions(*, competition_id: int, limit: int = 20) -> list[DecisionLine]:
    """The latest invocations of a competition (newest round first), without prompts. One query."""
    invocations = Invocation.objects.filter(participant__competition_id=competition_id).order_by(
        "-round__market_time", "-round__number", "participant_id"
    )
    return _decision_lines(invocations[:limit])


def participant_invocations(
    *, participant_id: int, status: str | None = None, limit: int | None = None
) -> list[DecisionLine]:
    """One participant's invocations, newest round first, optionally of one status. One query."""
    invocations = Invocation.objects.filter(participant_id=participant_id)
    if status is not None:
        invocations = invocations.filter(status=status)
    invocations = invocations.order_by("-round__market_time", "-round__number")
    return _decision_lines(invocations[:limit] if limit is not None else invocations)


def participant_positions(
    *, participant_id: int, status: str = "open", limit: int | None = None
) -> list[Position]:
    """Open positions (oldest first) or closed ones (latest closed first), as Position rows,
    the first `limit` of them. Closed rows carry `net_pnl` (realised - fees + funding). One query.

    Open positions' unrealised PnL needs prices: trading.selectors.account_view has it.
    """
    if status not in ("open", "closed"):
        raise ValueError("status must be 'open' or 'closed'")
    rows = Position.objects.filter(account__participant_id=participant_id, is_open=status == "open")
    rows = rows.order_by("opened_at", "id") if status == "open" else rows.order_by("-closed_at", "-id")
    positions = list(rows[:limit] if limit is not None else rows)
    for position in positions:
        position.net_pnl = position.realised_pnl - position.fees + position.funding
    return positions


__all__ = [
    "BENCHMARK_NAME",
    "ROW_COLUMNS",
    "DecisionLine",
    "FillLine",
    "Leaderboard",
    "LeaderboardRow",
    "ParticipantPerformance",
    "aligned_returns",
    "buy_and_hold_reference",
    "competition_list",
    "downsample",
    "drawdown_history",
    "equity_history",
    "leaderboard_get",
    "leaderboard_list",
    "participant_drawdown_history",
    "participant_equity_history",
    "participant_fills",
    "participant_invocations",
    "participant_performance",
    "participant_performance_get",
    "participant_positions",
    "recent_decisions",
    "recent_fills",
    "significance_matrix",
]
