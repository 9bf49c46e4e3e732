"""What each agent is handed in a round: its account view, its decision history, the
standings (when the competition shows them), and how often it was invoked before.

`contexts_build` reads each of these once for the whole round (a query each, not one per
agent) and returns one AgentContext per pending participant.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, OuterRef, Subquery

from agents.context import (
    AccountView,
    AgentContext,
    CompetitionRules,
    DecisionHistoryItem,
    LeaderboardLine,
    PastInvocation,
    PositionView,
    decision_history,
)
from agents.models import Invocation
from agents.prompt import HISTORY_LIMIT, build_context
from marketdata.snapshot import MarketSnapshot
from trading.models import EquitySnapshot
from trading.selectors import AccountLine, account_view, account_views
from trading.services import Book

from ..models import Competition, Participant


class InvocationCounts:
    """How many times each participant of a competition has been invoked, for a runner that
    runs its rounds one after the other (the replay loop): counted once, then carried
    forward round by round instead of recounted (a count over every invocation so far
    would make a year of rounds quadratic). forget() when a round ran elsewhere."""

    def __init__(self) -> None:
        self._counts: dict[int, int] | None = None

    def get(self, competition: Competition) -> dict[int, int]:
        if self._counts is None:
            self._counts = dict(
                Invocation.objects.filter(participant__competition=competition)
                .values("participant_id").annotate(count=Count("id")).values_list("participant_id", "count")
            )
        return self._counts

    def add(self, participant_ids: Iterable[int]) -> None:
        if self._counts is not None:
            for pk in participant_ids:
                self._counts[pk] = self._counts.get(pk, 0) + 1

    def forget(self) -> None:
        self._counts = None


def contexts_build(
    *,
    competition: Competition,
    rules: CompetitionRules,
    trading_rules,
    round_number: int,
    market_time: datetime,
    snapshot: MarketSnapshot,
    pending: list[Participant],
    book: Book | None,
    counts: InvocationCounts | None,
    past: dict[int, list[PastInvocation]] | None = None,
) -> dict[int, AgentContext]:
    """participant id -> the AgentContext it is invoked with in this round.

    `past` (participant id -> its invocations of the last HISTORY_LIMIT rounds, oldest
    first, as past_invocations reads them) is what a runner carrying them from round to
    round knows; without it they are read."""
    if counts is not None:
        invocation_counts = counts.get(competition)
    else:
        invocation_counts = dict(
            Invocation.objects.filter(participant__in=pending)
            .values("participant_id").annotate(count=Count("id")).values_list("participant_id", "count")
        )
    standings = latest_equity(competition) if competition.prompt_leaderboard else None
    prices = snapshot.prices
    views = (
        book.views(prices=prices) if book is not None
        else account_views(competition_id=competition.pk, prices=prices, rules=trading_rules)
    )
    if past is None:
        past = past_invocations(competition, before_round=round_number)
    histories = {pk: decision_history(invocations, HISTORY_LIMIT) for pk, invocations in past.items()}
    contexts = {}
    for participant in pending:
        view = views.get(participant.pk)
        if view is None:  # registered after the views were read
            view = account_view(
                participant=participant, prices=prices, rules=trading_rules,
                initial_capital=competition.initial_capital,
            )
        contexts[participant.pk] = build_context(
            rules=rules, snapshot=snapshot, account=agent_account_view(view, competition.initial_capital),
            now=market_time, history=histories.get(participant.pk, []),
            leaderboard=leaderboard_lines(standings, participant.pk, competition.initial_capital)
            if standings is not None else None,
            participant_id=participant.pk, invocation_index=invocation_counts.get(participant.pk, 0),
            provider=participant.llm_provider,
            participant_name=participant.name,
        )
    return contexts


def agent_account_view(view: AccountLine, initial_capital: Decimal) -> AccountView:
    """trading's account line as the agent's AccountView (percentages, the agents' names)."""
    positions = tuple(
        PositionView(
            symbol=p.symbol, side=p.side, size=p.quantity, entry_price=p.entry_price, mark_price=p.mark_price,
            unrealized_pnl=p.unrealised_pnl, leverage=p.leverage, initial_margin=p.initial_margin,
            liquidation_price=p.liquidation_price, stop_loss=p.stop_loss, take_profit=p.take_profit,
            opened_at=p.opened_at,
        )
        for p in view.positions
    )
    margin_level = None if view.margin_level is None else (view.margin_level * 100).quantize(Decimal("0.01"))
    return AccountView(
        cash=view.cash, equity=view.equity, used_margin=view.used_margin, free_margin=view.free_margin,
        margin_level_pct=margin_level,
        return_pct=((view.equity - initial_capital) / initial_capital * 100).quantize(Decimal("0.0001")),
        positions=positions, realized_pnl=view.cash - initial_capital,
    )


def decision_histories(competition: Competition, *, before_round: int) -> dict[int, list[DecisionHistoryItem]]:
    """Every agent's last few actions and what became of them, oldest first: one query."""
    past = past_invocations(competition, before_round=before_round)
    return {pk: decision_history(invocations, HISTORY_LIMIT) for pk, invocations in past.items()}


def past_invocations(competition: Competition, *, before_round: int) -> dict[int, list[PastInvocation]]:
    """Every agent's invocations of the HISTORY_LIMIT rounds before `before_round`, oldest
    first: one query. An agent answers at most once a round, so those rounds hold its last
    HISTORY_LIMIT invocations."""
    recent = (
        Invocation.objects.filter(
            round__competition=competition, round__number__lt=before_round,
            round__number__gte=before_round - HISTORY_LIMIT,
        )
        .order_by("round__number", "participant_id")
        .values_list("participant_id", "status", "error", "action_outcomes", "round__number", "round__market_time")
    )
    by_participant: dict[int, list[PastInvocation]] = {}
    for row in recent:
        by_participant.setdefault(row[0], []).append(PastInvocation(*row[1:]))
    return by_participant


def latest_equity(competition: Competition) -> dict[int, tuple[str, Decimal]]:
    """participant id -> (name, equity at its latest mark): one query per round, reading
    one snapshot per participant, not the whole equity history."""
    latest = (
        EquitySnapshot.objects.filter(account__participant=OuterRef("pk"))
        .order_by("-market_time", "-id")
        .values("equity")[:1]
    )
    rows = (
        Participant.objects.filter(competition=competition)
        .annotate(latest_equity=Subquery(latest))
        .filter(latest_equity__isnull=False)
        .values_list("id", "name", "latest_equity")
    )
    return {participant_id: (name, equity) for participant_id, name, equity in rows}


def leaderboard_lines(
    standings: dict[int, tuple[str, Decimal]], participant_id: int, capital: Decimal
) -> list[LeaderboardLine]:
    """Standings by equity at the previous mark (what every agent can know now)."""
    ranked = sorted(standings.items(), key=lambda item: item[1][1], reverse=True)
    return [
        LeaderboardLine(
            rank=rank, name=name, equity=equity,
            return_pct=((equity - capital) / capital * 100).quantize(Decimal("0.01")),
            is_you=pk == participant_id,
        )
        for rank, (pk, (name, equity)) in enumerate(ranked, start=1)
    ]
