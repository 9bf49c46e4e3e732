"""Decisions to trades: each recorded invocation's pending actions become trading
RoundActions, run through the Book in participant-id order, and what became of each is
written back on the invocation (filled, rejected with its reason, applied)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from agents.models import Invocation
from agents.services import action_counts
from gauntlet.db import update_rows
from marketdata.snapshot import MarketSnapshot
from trading.engine import OrderRequest
from trading.models import Order
from trading.services import Book, RoundAction, RoundActionResult

# what the settling step reads back of an invocation (never the prompts: ~30 kB a row)
INVOCATION_FIELDS = ("id", "participant_id", "action_outcomes", "cost_usd", "actions_count", "rejected_actions_count")
OUTCOME_FIELDS = ["action_outcomes", "actions_count", "rejected_actions_count"]


@dataclass
class OutcomeWrites:
    """Invocations whose outcomes were decided but not written yet, for a caller that writes
    the Book's rows later (a replay batch, at its end): the orders get their ids when the
    Book is flushed, and write() then names them in the outcomes and updates the rows."""

    invocations: list[Invocation] = field(default_factory=list)
    unnamed: list[tuple[dict, Order]] = field(default_factory=list)  # outcome item -> its order, not yet written

    def write(self) -> None:
        """After the Book's flush: each outcome's order id, then one UPDATE for all rows."""
        for item, order in self.unnamed:
            item["order_id"] = order.pk
        if self.invocations:
            update_rows(Invocation, self.invocations, OUTCOME_FIELDS)
        self.invocations, self.unnamed = [], []


def decisions_execute(
    book: Book,
    invocations: list[Invocation],
    *,
    snapshot: MarketSnapshot,
    market_time: datetime,
    is_market_open: Callable[[str], bool],
    check_done: bool,
    instruments: Callable[[str], object],
    deferred: OutcomeWrites | None = None,
) -> Decimal:
    """Each invocation's pending actions, in the order given (participant id), at the snapshot
    prices; the outcomes are written on the invocations. Returns the round's LLM cost.

    Orders carry client_ref "inv<invocation>:<action index>", so even a step run twice
    returns the orders already made instead of filling twice.

    `deferred`: nothing is written here; the Book's rows stay in it and the changed
    invocations go to `deferred`, for the caller to write after the Book's flush (a replay
    batch: a few statements for all its rounds instead of a few a round).
    """
    changed: list[Invocation] = []
    pending: list[dict] = []
    actions: list[RoundAction] = []
    cost = sum((invocation.cost_usd for invocation in invocations), Decimal(0))
    for invocation in invocations:
        items = [item for item in invocation.action_outcomes or [] if item.get("status") == "pending"]
        if items:
            changed.append(invocation)
        for item in items:
            try:
                action = round_action(invocation, item)
            except (ArithmeticError, TypeError, ValueError) as exc:
                item.update({"status": "rejected", "code": "invalid_action", "reason": str(exc)[:300]})
                continue
            if action is None:
                kind = (item.get("action") or {}).get("action")
                item.update({"status": "rejected", "code": "unknown_action", "reason": f"unknown action {kind!r}"})
                continue
            pending.append(item)
            actions.append(action)
    results = book.execute(
        actions, prices=snapshot.prices, market_time=market_time, is_market_open=is_market_open,
        check_done=check_done, instruments=instruments,
    )
    if deferred is None:
        book.flush()  # the orders get their ids before the outcomes name them
    for item, result in zip(pending, results, strict=True):
        item.update(action_outcome(result))
        if deferred is not None and result.order is not None and result.order.pk is None:
            deferred.unnamed.append((item, result.order))  # named once the Book is flushed
    for invocation in changed:
        invocation.actions_count, invocation.rejected_actions_count = action_counts(invocation.action_outcomes)
    if deferred is not None:
        deferred.invocations.extend(changed)
    elif changed:
        update_rows(Invocation, changed, OUTCOME_FIELDS)
    return cost


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def round_action(invocation: Invocation, item: dict) -> RoundAction | None:
    """A pending outcome item's validated action as a trading action (None: unknown kind)."""
    action = item.get("action") or {}
    kind = action.get("action")
    common = {
        "participant_id": invocation.participant_id, "symbol": action.get("symbol", ""),
        "invocation_id": invocation.pk, "client_ref": f"inv{invocation.pk}:{item.get('index', 0)}",
    }
    if kind == "open":
        request = OrderRequest(
            symbol=common["symbol"], side="buy" if action.get("side") == "long" else "sell",
            quantity=_dec(action.get("quantity")), notional_usd=_dec(action.get("notional_usd")),
            leverage=_dec(action.get("leverage")) or Decimal(1),
            stop_loss=_dec(action.get("stop_loss")), take_profit=_dec(action.get("take_profit")),
        )
        return RoundAction(kind="open", order_request=request, **common)
    if kind == "close":
        return RoundAction(kind="close", quantity=_dec(action.get("quantity")), **common)
    if kind == "update_exit":
        return RoundAction(
            kind="update_exit", stop_loss=_dec(action.get("stop_loss")),
            take_profit=_dec(action.get("take_profit")), **common,
        )
    return None


def action_outcome(result: RoundActionResult) -> dict:
    order = result.order
    if order is None:
        if result.rejection is not None:
            return {"status": "rejected", "code": str(result.rejection.code), "reason": result.rejection.reason}
        return {"status": "applied"}
    if order.status == "rejected":
        return {"status": "rejected", "order_id": order.pk, "code": order.reject_code, "reason": order.reject_reason}
    fills = [
        {"price": str(f.price), "quantity": str(f.quantity), "side": f.side, "fee": str(f.fee),
         "realised_pnl": str(f.realised_pnl), "reason": f.reason}
        for f in result.fills
    ]
    return {"status": "filled", "order_id": order.pk, "fills": fills}
