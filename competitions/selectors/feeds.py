"""Fills, decisions and closed positions, newest first: feeds and paginated logs.

A page shows the latest rows and loads older ones on demand: `before` is the id of the
last row shown, and the next page is what sorts after it (keyset pagination on the list's
order, with the id as tie-breaker), so rows written meanwhile neither repeat nor vanish.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Subquery
from django.db.models.fields.json import KeyTextTransform

import analytics
from agents.models import Invocation
from trading.models import Fill, Position

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


def participant_fills(
    *, participant_id: int, limit: int | None = None, before: int | None = None
) -> list[FillLine]:
    """One participant's fills, newest first; with `before`, those after that fill. Two queries."""
    fills = Fill.objects.filter(account__participant_id=participant_id)
    if before is not None:
        fills = _after(fills, Fill.objects.filter(pk=before), ("market_time",), before)
    fills = fills.order_by("-market_time", "-id")
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
    *, participant_id: int, status: str | None = None, limit: int | None = None, before: int | None = None
) -> list[DecisionLine]:
    """One participant's invocations, newest round first, optionally of one status; with
    `before`, those after that invocation. One query."""
    invocations = Invocation.objects.filter(participant_id=participant_id)
    if status is not None:
        invocations = invocations.filter(status=status)
    if before is not None:
        anchor = Invocation.objects.filter(pk=before)
        invocations = _after(invocations, anchor, ("round__market_time", "round__number"), before)
    invocations = invocations.order_by("-round__market_time", "-round__number", "-id")
    return _decision_lines(invocations[:limit] if limit is not None else invocations)


def participant_positions(
    *, participant_id: int, status: str = "open", limit: int | None = None, before: int | None = None
) -> list[Position]:
    """Open positions (oldest first) or closed ones (latest closed first), as Position rows,
    the first `limit` of them; with `before` (closed only), those after that position.
    Closed rows carry `net_pnl` (analytics.net_pnl). One query.

    Open positions' unrealised PnL needs prices: trading.selectors.account_view has it.
    """
    if status not in ("open", "closed"):
        raise ValueError("status must be 'open' or 'closed'")
    rows = Position.objects.filter(account__participant_id=participant_id, is_open=status == "open")
    if status == "open":
        rows = rows.order_by("opened_at", "id")
    else:
        if before is not None:
            rows = _after(rows, Position.objects.filter(pk=before), ("closed_at",), before)
        rows = rows.order_by("-closed_at", "-id")
    positions = list(rows[:limit] if limit is not None else rows)
    for position in positions:
        position.net_pnl = analytics.net_pnl(
            realised_pnl=position.realised_pnl, fees=position.fees, funding=position.funding
        )
    return positions


def _after(rows: QuerySet, anchor: QuerySet, keys: tuple[str, ...], before: int) -> QuerySet:
    """The rows that sort after the anchor row (id `before`) in descending (keys..., id) order.

    The anchor's keys are read by subqueries in the same query, so a page costs what the
    first page costs; an unknown anchor gives no rows.
    """
    values = {key: Subquery(anchor.values(key)[:1]) for key in keys}
    later = Q(pk__lt=before)
    for key in reversed(keys):
        # (k1, k2, ..., id) < anchor: k1 smaller, or k1 equal and the rest smaller
        later = Q(**{f"{key}__lt": values[key]}) | (Q(**{key: values[key]}) & later)
    return rows.filter(later)
