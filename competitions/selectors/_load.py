"""Loading a competition for the selectors: every table once, grouped in Python.

Each loader fetches each table once for the whole competition with `values_list`, so a
selector's query count is constant whatever the number of participants, rounds, fills or
invocations (the tests pin the counts with django_assert_max_num_queries).

How rows become metric inputs (docs/analytics.md, "From rows to metrics"):
- equity: a participant's EquitySnapshot rows (one per round, written by account_mark) in
  market_time order, the initial capital prepended at `capital time` = min(competition
  start, first snapshot - one interval);
- trades: closed Position rows, net PnL by analytics.net_pnl;
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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Case, F, FloatField, Sum, TextField, When
from django.db.models.functions import Cast

import analytics
from agents.models import Invocation
from analytics import InvocationRecord, TimePoint
from competitions import aggregates
from competitions.aggregates import ParticipantFold
from competitions.models import Competition, Participant, Round
from trading.models import EquitySnapshot, LedgerEntry

_OUTCOMES = {
    Invocation.Status.SUCCESS: "ok",
    Invocation.Status.INVALID_RESPONSE: "invalid",
    Invocation.Status.ERROR: "error",
    Invocation.Status.TIMEOUT: "timeout",
}



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



def _history(competition: Competition, participant: _ParticipantData) -> list[TimePoint]:
    times, equity = _equity_series(competition, participant)
    return list(zip(times, equity))
