"""The leaderboard and one participant's performance: every metric from one load."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import analytics
from analytics import ParticipantMetrics, TimePoint
from competitions.models import Competition, Participant
from competitions.selectors._load import (
    _competition,
    _equity_series,
    _history,
    _load_participants,
    _ParticipantData,
    _periods_per_year,
)
from competitions.selectors.benchmark import _benchmark, _benchmark_row
from competitions.selectors.rows import LeaderboardRow

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
