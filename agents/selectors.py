"""Reads for the agents app: what the round needs before invoking an agent."""

from __future__ import annotations

from agents.context import DecisionHistoryItem
from agents.decision import ACTION_HOLD
from agents.models import Invocation


def invocation_get(*, participant_id: int, round_id: int) -> Invocation | None:
    return Invocation.objects.filter(participant_id=participant_id, round_id=round_id).first()


def invocation_count(*, participant_id: int) -> int:
    """How many times this participant was invoked: the scripted agent's list index."""
    return Invocation.objects.filter(participant_id=participant_id).count()


def _action_text(action: dict | None) -> str:
    if not isinstance(action, dict):
        return str(action)[:80]
    name = action.get("action", "?")
    parts = [str(name)]
    for key in ("side", "symbol", "quantity", "notional_usd", "leverage", "stop_loss", "take_profit"):
        value = action.get(key)
        if value not in (None, ""):
            parts.append(f"{key}={value}" if key not in ("side", "symbol") else str(value))
    return " ".join(parts)[:160]


def decision_history_list(*, participant_id: int, limit: int = 6) -> list[DecisionHistoryItem]:
    """The participant's last actions and what became of them, oldest first, for the prompt."""
    rows = (
        Invocation.objects.filter(participant_id=participant_id)
        .select_related("round")
        .order_by("-round__number")[:limit]
    )
    items: list[DecisionHistoryItem] = []
    for row in reversed(list(rows)):
        number, at = row.round.number, row.round.market_time
        if row.status != Invocation.Status.SUCCESS:
            items.append(DecisionHistoryItem(number, at, "no decision", row.status, (row.error or "")[:160]))
            continue
        outcomes = [o for o in row.action_outcomes if (o.get("action") or {}).get("action") != ACTION_HOLD]
        if not outcomes:
            items.append(DecisionHistoryItem(number, at, "hold", "hold"))
        for outcome in outcomes:
            detail = outcome.get("reason") or outcome.get("detail") or ""
            if outcome.get("code"):
                detail = f"{outcome['code']}: {detail}"
            items.append(
                DecisionHistoryItem(
                    number,
                    at,
                    outcome.get("summary") or _action_text(outcome.get("action")),
                    outcome.get("status", "?"),
                    detail[:160],
                )
            )
    return items[-limit:]
