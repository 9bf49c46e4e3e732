"""Reads for the agents app: what the round needs before invoking an agent."""

from __future__ import annotations

from agents.context import DecisionHistoryItem, PastInvocation, decision_history
from agents.models import Invocation
from agents.prompt import HISTORY_LIMIT


def invocation_get(*, participant_id: int, round_id: int) -> Invocation | None:
    return Invocation.objects.filter(participant_id=participant_id, round_id=round_id).first()


def invocation_count(*, participant_id: int) -> int:
    """How many times this participant was invoked: the scripted agent's list index."""
    return Invocation.objects.filter(participant_id=participant_id).count()


def decision_history_list(*, participant_id: int, limit: int = HISTORY_LIMIT) -> list[DecisionHistoryItem]:
    """The participant's last actions and what became of them, oldest first, in the words the
    prompt uses (agents.context.decision_history; the round reads the same for all agents)."""
    rows = (
        Invocation.objects.filter(participant_id=participant_id)
        .order_by("-round__number")
        .values_list("status", "error", "action_outcomes", "round__number", "round__market_time")[:limit]
    )
    return decision_history([PastInvocation(*row) for row in reversed(list(rows))], limit)
