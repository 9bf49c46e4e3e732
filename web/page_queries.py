"""Page reads the competitions selectors do not cover, each one query.

The pages read leaderboards, histories, fills, decisions and the market strip through
competitions.selectors; this module adds what only a page needs: the competition clock and
time left, the round counter, the open book marked at the last round's prices
(trading.selectors.account_view), order counts, one invocation with its orders, the
compare page's chosen pairs, and the live-region version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Max, OuterRef, Q, Subquery
from django.utils import timezone

import analytics
from agents.models import Invocation
from competitions import selectors
from competitions.models import Competition, Participant, Round
from competitions.rules import account_view
from trading.models import Account, EquitySnapshot, Fill, Order
from trading.selectors import AccountLine, PositionLine


def competition_clock(competition: Competition, *, now: datetime | None = None) -> datetime | None:
    """'Now' for this competition: the replay clock in replay, the wall clock when live."""
    if competition.mode == Competition.Mode.REPLAY:
        return competition.market_time or (competition.start_time if competition.status != "draft" else None)
    return now or timezone.now()


def competition_time_left(competition: Competition, *, now: datetime | None = None) -> timedelta | None:
    """Market time left until end_time (replay: from the replay clock); None when finished."""
    if competition.is_finished:
        return None
    clock = competition_clock(competition, now=now)
    if clock is None:
        return competition.end_time - competition.start_time
    return max(competition.end_time - clock, timedelta(0))


# --- dashboard -----------------------------------------------------------------------------


@dataclass
class RoundSummary:
    count: int
    last_number: int | None
    last_market_time: datetime | None
    last_finished_at: datetime | None


def round_summary(competition: Competition) -> RoundSummary:
    stats = Round.objects.filter(competition=competition).aggregate(
        count=Count("id"),
        last_number=Max("number"),
        last_market_time=Max("market_time"),
        last_finished_at=Max("finished_at"),
    )
    return RoundSummary(**stats)


def next_round_in(
    competition: Competition, rounds: RoundSummary, *, now: datetime | None = None
) -> timedelta | None:
    """Wall time until the next live round; None for replays (paced by the runner) and finished ones."""
    if competition.status != Competition.Status.ACTIVE or competition.mode != Competition.Mode.LIVE:
        return None
    now = now or timezone.now()
    interval = timedelta(minutes=competition.invocation_interval_minutes)
    elapsed = now - competition.start_time
    if elapsed < timedelta(0):
        return competition.start_time - now
    periods = int(elapsed / interval) + 1
    return competition.start_time + periods * interval - now


# --- participant page ------------------------------------------------------------------------


@dataclass
class OpenPositionRow:
    position: PositionLine
    unrealised_pct: Decimal | None  # of the position's initial margin
    marked: bool  # False when the last snapshot had no price and entry stands in for the mark


def open_book(
    participant: Participant, prices: dict[str, Decimal]
) -> tuple[AccountLine | None, list[OpenPositionRow]]:
    """The account marked at `prices`, with each open position's PnL as % of its margin (3 queries)."""
    if not Account.objects.filter(participant=participant).exists():
        return None, []
    line = account_view(participant=participant, prices=prices)
    rows = [
        OpenPositionRow(
            position=position,
            unrealised_pct=position.unrealised_pnl / position.initial_margin * 100
            if position.initial_margin
            else None,
            marked=position.symbol in prices,
        )
        for position in line.positions
    ]
    return line, rows


def order_counts(participant: Participant) -> dict[str, int]:
    return Order.objects.filter(account__participant=participant).aggregate(
        filled=Count("id", filter=Q(status=Order.Status.FILLED)),
        rejected=Count("id", filter=Q(status=Order.Status.REJECTED)),
    )


def invocation_get(*, invocation_id: int) -> Invocation:
    return Invocation.objects.select_related("participant__competition", "round").get(pk=invocation_id)


def invocation_orders(invocation: Invocation) -> dict[int, Order]:
    ids = [
        o.get("order_id")
        for o in invocation.action_outcomes or []
        if isinstance(o, dict) and o.get("order_id")
    ]
    return {order.pk: order for order in Order.objects.filter(pk__in=ids).prefetch_related("fills")}


# --- compare page ----------------------------------------------------------------------------


@dataclass
class Comparison:
    rows: list[selectors.LeaderboardRow]
    pairs: list[analytics.PairComparison]
    aligned_rounds: int
    histories: dict[int, list[tuple[datetime, float]]]  # participant id -> full equity history


def compare_get(
    competition: Competition, *, participant_ids: list[int], statistic: str = "sharpe"
) -> Comparison:
    """Chosen participants side by side, and the paired block-bootstrap test of every chosen pair.

    Every chosen participant's returns are taken on one grid of market times
    (analytics.aligned_returns), so each resample compares them on the same rounds; only the
    chosen ones are resampled.
    Also returns the full equity histories, for the chart. Only the chosen participants are
    read (their rows' ranks are among themselves; the page does not show them).
    """
    board = selectors.leaderboard_get(competition_id=competition.pk, participant_ids=participant_ids)
    by_id = {row.participant_id: row for row in board.rows}
    rows = [by_id[pk] for pk in participant_ids if pk in by_id]
    histories = {row.participant_id: board.equity.get(row.participant_id, []) for row in rows}
    pairs: list[analytics.PairComparison] = []
    aligned = 0
    if len(rows) >= 2:
        returns = analytics.aligned_returns(histories)
        chosen = {row.name: returns[row.participant_id] for row in rows}
        aligned = len(next(iter(chosen.values()), []))
        pairs = analytics.compare_participants(
            chosen,
            statistic=statistic,
            periods_per_year=analytics.periods_per_year(
                competition.invocation_interval_minutes, competition.allowed_asset_classes or ["crypto"]
            ),
            seed=competition.seed,
        )
    return Comparison(rows=rows, pairs=pairs, aligned_rounds=aligned, histories=histories)


# --- live regions: what changed since the last poll --------------------------------------------


def competition_live_get(competition_id: int) -> Competition:
    """The competition, annotated in the same single query with what a live page depends on.

    `competition.live_version` changes whenever a round starts or ends, an agent answers, a
    fill or an equity snapshot is written, a participant joins or drops out, or the
    competition's status or clock moves: the pages cache their live regions under it.
    Raises Competition.DoesNotExist.
    """
    mine = {"competition": OuterRef("pk")}
    in_competition = {"account__participant__competition": OuterRef("pk")}

    def latest_id(queryset):
        return Subquery(queryset.order_by("-id").values("id")[:1])

    def count(queryset):
        return Subquery(queryset.order_by().values("competition").annotate(n=Count("id")).values("n"))

    competition = Competition.objects.annotate(
        live_rounds=count(Round.objects.filter(**mine)),
        live_round_done=Subquery(
            Round.objects.filter(**mine, finished_at__isnull=False)
            .order_by("-finished_at")
            .values("finished_at")[:1]
        ),
        live_invocation=latest_id(Invocation.objects.filter(participant__competition=OuterRef("pk"))),
        live_fill=latest_id(Fill.objects.filter(**in_competition)),
        live_snapshot=latest_id(EquitySnapshot.objects.filter(**in_competition)),
        live_participants=count(Participant.objects.filter(**mine)),
        live_out=count(Participant.objects.filter(**mine).exclude(status=Participant.Status.ACTIVE)),
    ).get(pk=competition_id)
    competition.live_version = "|".join(
        str(value)
        for value in (
            competition.created_at.timestamp(), competition.status, competition.market_time, competition.live_rounds,
            competition.live_round_done, competition.live_invocation, competition.live_fill,
            competition.live_snapshot, competition.live_participants, competition.live_out,
        )
    )  # fmt: skip
    return competition
