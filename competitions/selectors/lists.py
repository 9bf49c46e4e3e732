"""The competitions list: each competition with its counts, cost and leader."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, DecimalField, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from competitions.models import Competition, Participant, Round
from trading.models import EquitySnapshot

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
