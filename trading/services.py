"""Writes of the trading app: the Book, the one path by which the ledger changes.

A Book locks a competition's accounts (select_for_update, in id order) inside the caller's
transaction, runs the engine on their state in memory and writes the events through
trading.ledger (the one row <-> engine mapping). The round drives a Book step by step; the
single-account services below (order_place, position_close, exit_plan_update, account_mark,
account_close_all) are thin wrappers that open a Book on one account.

Trading does not import competitions: the rules arrive as an engine.Rules value (built by
competitions.rules), and who was liquidated is returned (Book.liquidated) for the caller
to record on the participant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.db import transaction

from trading import engine, ledger
from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, Position
from trading.selectors import account_line

logger = logging.getLogger(__name__)

# Participant and competition status values as competitions stores them (read through the
# account's relations at lock time; trading never writes them).
ACTIVE = "active"
LIQUIDATED = "liquidated"


class AccountInvariantError(AssertionError):
    """cash != initial_capital + sum(ledger): money appeared or vanished."""


class BarLike(Protocol):
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class ExitPlanOutcome:
    position: Position | None
    rejection: engine.Rejection | None


@transaction.atomic
def account_open(*, participant, initial_capital: Decimal) -> Account:
    """The participant's trading account, created with `initial_capital` (idempotent)."""
    account, _ = Account.objects.get_or_create(
        participant=participant, defaults={"initial_capital": initial_capital, "cash": initial_capital}
    )
    return account


def _market_open_check(
    rules: engine.Rules,
    instrument_row,
    market_time: datetime,
    is_market_open: bool | Callable[[str], bool] | None,
) -> bool | Callable[[str], bool]:
    if is_market_open is not None:
        return is_market_open
    if not rules.market_hours_only or instrument_row is None:
        return True
    from marketdata.hours import is_market_open as hours_open

    return hours_open(instrument_row, market_time)


def _lock_competition(competition_id: int, participant_ids: list[int] | None = None):
    """Lock the accounts (in id order, so concurrent lockers never deadlock) and load their
    open rows. Returns (accounts, rows, the competition's status as of the lock)."""
    accounts = (
        # only the accounts are locked: a pause or a disqualification is never held up
        Account.objects.select_for_update(of=("self",))
        .select_related("participant", "participant__competition")
        # what the round's steps read of a participant (not its model config or key)
        .only("id", "participant_id", "initial_capital", "cash", "updated_at",
              "participant__id", "participant__competition_id", "participant__status",
              "participant__status_reason", "participant__name", "participant__competition__status")
        .filter(participant__competition_id=competition_id)
    )
    if participant_ids is not None:
        accounts = accounts.filter(participant_id__in=participant_ids)
    accounts = list(accounts.order_by("id"))
    rows: dict[int, dict[str, Position]] = {account.pk: {} for account in accounts}
    for row in Position.objects.filter(account__in=accounts, is_open=True):
        rows[row.account_id][row.symbol] = row
    status = accounts[0].participant.competition.status if accounts else None
    return accounts, rows, status


@dataclass(frozen=True)
class RoundAction:
    """One validated action of one participant's decision, for Book.execute.

    kind "open" carries `order_request`; "close" closes `quantity` of the position in `symbol`
    (None: all of it, and never more than is open); "update_exit" replaces its stop-loss and
    take-profit. `client_ref` makes it idempotent: an action whose ref already has an order
    returns that order.
    """

    participant_id: int
    kind: str
    symbol: str
    client_ref: str
    invocation_id: int | None = None
    order_request: engine.OrderRequest | None = None
    quantity: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass(frozen=True)
class RoundActionResult:
    """What became of a RoundAction: an order (filled or rejected) with its fills, or a
    rejection that made no order (an inactive participant, an exit plan refused), or
    neither (an exit plan applied)."""

    order: Order | None = None
    fills: tuple[Fill, ...] = ()
    rejection: engine.Rejection | None = None



class Book:
    """The one write path of the ledger: a competition's accounts, locked and loaded once
    inside the caller's transaction, with the engine's state of each. Steps (process_bars,
    execute, close_all, mark) run on it in memory; flush() writes what they changed in a
    few statements.

    `rules` is the competition's engine.Rules (competitions builds them from its row).
    Trading never writes a participant's status: a margin close-out that leaves no equity
    adds the participant to `liquidated`, and the caller records it. The Book treats it as
    inactive from then on. Use it only inside one transaction.
    """

    def __init__(self, *, competition_id: int, rules: engine.Rules, participant_ids: list[int] | None = None):
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("a Book holds row locks: open it inside transaction.atomic()")
        self.competition_id = competition_id
        self.rules = rules
        self.accounts, self.rows, self.competition_status = _lock_competition(competition_id, participant_ids)
        self.by_participant = {account.participant_id: account for account in self.accounts}
        self.states = {account.pk: ledger.account_state(account, self.rows[account.pk]) for account in self.accounts}
        self.writes = ledger.Writes()
        self.liquidated: list[int] = []  # participant ids, in the order their close-outs happened
        self._touched: dict[int, Account] = {}  # accounts whose state changed since as_stored()

    def is_active(self, account: Account) -> bool:
        return account.participant.status == ACTIVE and account.participant_id not in self.liquidated

    def _liquidate_if(self, account: Account, liquidated: bool) -> None:
        if liquidated and self.is_active(account):
            self.liquidated.append(account.participant_id)

    def _record(self, account: Account, state: engine.Account, events, market_time, order=None):
        self.states[account.pk] = state
        self._touched[account.pk] = account
        return ledger.record_events(self.writes, account, self.rows[account.pk], state, events, market_time, order)

    def flush(self) -> None:
        self.writes.flush()

    def as_stored(self) -> None:
        """Each changed account's state as a reload from the database would read it.

        The engine computes with exact decimals; a column keeps its scale (and SQLite 15
        significant digits). A round that loads a new Book starts from the stored values, so
        a Book kept across steps (a batch of replay rounds, a round of built-in strategies)
        takes them too at the same steps: the numbers then never depend on how the rounds
        were grouped into transactions. Called by the round after the market moves and after
        the mark; written or not yet, the rows hold the same values.
        """
        for pk, account in self._touched.items():
            ledger.rows_as_stored(account, self.rows[pk])
            self.states[pk] = ledger.account_state(account, self.rows[pk])
        self._touched.clear()

    # -- the steps of a round ---------------------------------------------------------

    def process_bars(
        self,
        *,
        participant_ids: Iterable[int],
        bars: Iterable[tuple[datetime, Mapping[str, BarLike]]],
        start: datetime,
        prices: Mapping[str, Decimal],
    ) -> None:
        """Market moves between two rounds, bar by bar, for these participants: stops and
        take-profits intrabar, the close-out at the bar's closes (when every open symbol has
        a bar), then the funding and financing moments inside the bar, so a position stopped
        out before a moment does not pay it. Ledger rows carry the bar's close time; the
        moment itself is in the description.

        `prices` (the round's snapshot) stands in for a symbol whose bar is missing, for
        funding only. Accounts with nothing open are skipped.
        """
        wanted = set(participant_ids)
        accounts = [a for a in self.accounts if a.participant_id in wanted and self.states[a.pk].positions]
        if not accounts:
            return
        rules = self.rules
        marks = dict(prices)
        bar_start = start
        for close_time, bar_map in bars:
            engine_bars = {
                symbol: engine.Bar(open=bar.open, high=bar.high, low=bar.low, close=bar.close)
                for symbol, bar in bar_map.items()
            }
            closes = {symbol: bar.close for symbol, bar in engine_bars.items()}
            marks.update(closes)
            moments = engine.funding_moments(bar_start, close_time)
            for account in accounts:
                state = self.states[account.pk]
                if not state.positions:
                    continue
                exits = engine.process_bar(state, engine_bars, rules=rules, at=close_time)
                events: tuple = exits.events
                state, liquidated = exits.account, False
                if all(symbol in closes for symbol in state.positions):
                    marked = engine.mark(state, closes, rules=rules, at=close_time)
                    state, events, liquidated = marked.account, events + marked.events, marked.liquidated
                if events:
                    self._record(account, state, events, close_time)
                    self._liquidate_if(account, liquidated)
                if moments and state.positions:
                    funding: list[engine.Event] = []
                    for moment in moments:
                        result = engine.apply_funding(state, moment, prices=marks, rules=rules)
                        state = result.account
                        funding.extend(
                            engine.LedgerEvent(
                                e.kind, e.amount, e.at, e.symbol, None, f"{e.kind} at {e.at:%Y-%m-%d %H:%M} UTC"
                            )
                            for e in result.events
                        )
                    if funding:
                        self._record(account, state, tuple(funding), close_time)
                self.states[account.pk] = state
            bar_start = close_time

    def close_all(
        self, *, prices: Mapping[str, Decimal], market_time: datetime, reason: str = engine.FillReason.COMPETITION_END
    ) -> None:
        """Every account's open positions closed at the mark with costs (competition end), then NBP."""
        for account in self.accounts:
            state = self.states[account.pk]
            if not state.positions:
                continue
            result = engine.close_all(state, prices, rules=self.rules, at=market_time, reason=engine.FillReason(reason))
            self._record(account, result.account, result.events, market_time)

    def execute(
        self,
        actions: Iterable[RoundAction],
        *,
        prices: Mapping[str, Decimal],
        market_time: datetime,
        is_market_open: bool | Callable[[str], bool] | None = None,
        check_done: bool = True,
        instruments: Callable[[str], object] | None = None,
    ) -> list[RoundActionResult]:
        """A round's actions, in the order given, at one set of prices.

        Each action sees the account as the previous ones left it; "close" closes the whole
        position (or `quantity` of it, never flipping). An
        action whose client_ref already has an order returns that order (a resumed round
        fills nothing twice); `check_done=False` skips that lookup for a caller that knows
        none can exist (client refs it made up in this same transaction). `instruments`
        (symbol -> marketdata Instrument or None) stands in for reading the catalogue.
        """
        actions = list(actions)
        if not actions:
            return []
        refs = [action.client_ref for action in actions if action.client_ref] if check_done else []
        done: dict[tuple[int, str], Order] = {}
        if refs:
            owners = [self.by_participant[pk] for pk in {a.participant_id for a in actions} if pk in self.by_participant]
            orders = Order.objects.filter(account__in=owners, client_ref__in=refs).prefetch_related("fills")
            done = {(order.account_id, order.client_ref): order for order in orders}
        from marketdata.models import Instrument as InstrumentRow

        symbols = {action.symbol for action in actions}
        if instruments is not None:
            instrument_rows = {symbol: instruments(symbol) for symbol in symbols}
        else:
            instrument_rows = {row.symbol: row for row in InstrumentRow.objects.filter(symbol__in=symbols)}
        specs: dict[str, engine.Instrument] = {}
        # the status as of the lock, not as of when the caller loaded the competition
        active = self.competition_status == ACTIVE
        results = []
        for action in actions:
            account = self.by_participant.get(action.participant_id)
            if account is None:  # every participant's account is opened when it registers or its competition starts
                results.append(RoundActionResult(rejection=engine.Rejection(
                    "no_account", f"participant {action.participant_id} has no trading account"  # type: ignore[arg-type]
                )))
                continue
            existing = done.get((account.pk, action.client_ref)) if action.client_ref else None
            if existing is not None:
                results.append(RoundActionResult(existing, tuple(existing.fills.all())))
                continue
            if not self.is_active(account):
                status = LIQUIDATED if account.participant_id in self.liquidated else account.participant.status
                results.append(RoundActionResult(rejection=engine.Rejection(
                    engine.RejectCode.PARTICIPANT_INACTIVE, f"participant is {status}"
                )))
                continue
            state = self.states[account.pk]
            try:
                request, result = self._decide(
                    action, state, prices=prices, market_time=market_time, active=active,
                    instrument_rows=instrument_rows, specs=specs, is_market_open=is_market_open,
                )
            except Exception as exc:  # a bug must not take the round down: the action is refused, logged
                logger.exception("deciding %s for participant %s failed", action.kind, action.participant_id)
                results.append(RoundActionResult(rejection=engine.Rejection(
                    "internal_error", f"{type(exc).__name__}: {exc}"[:300]  # type: ignore[arg-type]
                )))
                continue
            if request is None:  # an exit plan: no order
                if result.rejection is None:
                    self._record(account, result.account, result.events, market_time)
                results.append(RoundActionResult(rejection=result.rejection))
                continue
            order = ledger.order_row(account, request, result.rejection, market_time, action.invocation_id, action.client_ref)
            self.writes.orders.append(order)
            fills: list[Fill] = []
            if result.rejection is None:
                fills, _ = self._record(account, result.account, result.events, market_time, order)
            results.append(RoundActionResult(order, tuple(fills)))
        return results

    def _decide(
        self, action: RoundAction, state: engine.Account, *, prices, market_time, active, instrument_rows, specs,
        is_market_open,
    ) -> tuple[engine.OrderRequest | None, engine.Result]:
        """The engine's decision on one action: (the order request, or None for an exit plan; result)."""
        if action.kind == "update_exit":
            return None, engine.update_exit_plan(
                state, action.symbol, stop_loss=action.stop_loss, take_profit=action.take_profit,
                prices=prices, at=market_time,
            )
        if action.kind == "open":
            request = action.order_request
        elif action.kind == "close":
            position = state.positions.get(action.symbol)
            if position is None:
                request = engine.OrderRequest(symbol=action.symbol, side="", quantity=action.quantity)
                return request, engine.Result(state, (), engine.Rejection(
                    engine.RejectCode.NO_POSITION, f"there is no open position in {action.symbol} to close"
                ))
            side = engine.OrderSide.SELL if position.side == engine.PositionSide.LONG else engine.OrderSide.BUY
            size = position.quantity if action.quantity is None else min(action.quantity, position.quantity)
            request = engine.OrderRequest(symbol=action.symbol, side=side, quantity=size)
        else:
            raise ValueError(f"unknown action kind {action.kind!r}")
        symbol = str(request.symbol)
        if symbol not in specs:
            specs[symbol] = ledger.instrument_spec(symbol, instrument_rows.get(symbol))
        return request, engine.place_order(
            state, request, rules=self.rules, instrument=specs[symbol], prices=prices, at=market_time,
            competition_active=active, participant_active=True,
            market_open=_market_open_check(self.rules, instrument_rows.get(symbol), market_time, is_market_open),
        )

    def mark(
        self,
        *,
        prices: Mapping[str, Decimal],
        market_time: datetime,
        round_number: int | None = None,
        exclude_participant_ids: Iterable[int] = (),
    ) -> list[EquitySnapshot]:
        """Mark every account at mid: margin close-out (worst loser first) and negative
        balance protection where due; the equity snapshots are returned unsaved (insert
        them after flush())."""
        excluded = set(exclude_participant_ids)
        snapshots = []
        for account in self.accounts:
            if account.participant_id in excluded:
                continue
            marked = engine.mark(self.states[account.pk], prices, rules=self.rules, at=market_time)
            if marked.events:
                self._record(account, marked.account, marked.events, market_time)
            self._liquidate_if(account, marked.liquidated)
            snapshots.append(ledger.equity_snapshot(account, marked, market_time, round_number))
        return snapshots

    def views(self, *, prices: Mapping[str, Decimal]) -> dict:
        """trading.selectors.account_views from the book's state in memory (written yet or not).
        An account unchanged since as_stored() lends its engine state (what account_line would
        build from the rows again)."""
        return {
            account.participant_id: account_line(
                account, sorted(self.rows[account.pk].values(), key=lambda row: row.symbol), self.rules, prices,
                state=None if account.pk in self._touched else self.states[account.pk],
            )
            for account in self.accounts
        }


# --- one account: thin wrappers over a Book of one ---


def _one(participant, rules: engine.Rules) -> Book:
    book = Book(competition_id=participant.competition_id, rules=rules, participant_ids=[participant.pk])
    if participant.pk not in book.by_participant:
        # opened by registration or the competition's start (competitions.services), never here
        raise Account.DoesNotExist(f"participant {participant.pk} has no trading account")
    return book


@transaction.atomic
def order_place(
    *,
    participant,
    rules: engine.Rules,
    order_request: engine.OrderRequest,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    invocation_id: int | None = None,
    client_ref: str = "",
    is_market_open: bool | Callable[[str], bool] | None = None,
) -> Order:
    """Execute one market order; the Order row records a rejection as faithfully as a fill.

    `is_market_open` (bool or symbol -> bool) is asked only when the competition trades market
    hours only; left None it comes from the marketdata Instrument's trading hours.
    A non-empty `client_ref` makes the call idempotent: a retry returns the first Order.
    """
    action = RoundAction(
        participant_id=participant.pk, kind="open", symbol=str(order_request.symbol), client_ref=client_ref,
        invocation_id=invocation_id, order_request=order_request,
    )
    return _order_of(_one(participant, rules), action, prices, market_time, is_market_open)


@transaction.atomic
def position_close(
    *,
    participant,
    rules: engine.Rules,
    symbol: str,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    quantity: Decimal | None = None,
    invocation_id: int | None = None,
    client_ref: str = "",
    is_market_open: bool | Callable[[str], bool] | None = None,
) -> Order:
    """Close a position (all of it, or `quantity` of it) with an opposite market order.

    A close never flips: a quantity above the position's size closes the position.
    """
    action = RoundAction(
        participant_id=participant.pk, kind="close", symbol=symbol, client_ref=client_ref,
        invocation_id=invocation_id, quantity=quantity,
    )
    return _order_of(_one(participant, rules), action, prices, market_time, is_market_open)


def _order_of(book: Book, action: RoundAction, prices, market_time, is_market_open) -> Order:
    (result,) = book.execute([action], prices=prices, market_time=market_time, is_market_open=is_market_open)
    book.flush()
    if result.order is not None:
        return result.order
    # refused before any order (an inactive participant): the refusal is still an Order row
    request = action.order_request or engine.OrderRequest(symbol=action.symbol, side="", quantity=action.quantity)
    account = book.by_participant[action.participant_id]
    order = ledger.order_row(account, request, result.rejection, market_time, action.invocation_id, action.client_ref)
    order.save()
    return order


@transaction.atomic
def exit_plan_update(
    *,
    participant,
    rules: engine.Rules,
    symbol: str,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    prices: Mapping[str, Decimal],
    market_time: datetime,
) -> ExitPlanOutcome:
    """Replace an open position's stop-loss / take-profit (None clears), validated against the mark."""
    book = _one(participant, rules)
    action = RoundAction(
        participant_id=participant.pk, kind="update_exit", symbol=symbol, client_ref="",
        stop_loss=stop_loss, take_profit=take_profit,
    )
    (result,) = book.execute([action], prices=prices, market_time=market_time)
    book.flush()
    account = book.by_participant[participant.pk]
    return ExitPlanOutcome(book.rows[account.pk].get(symbol), result.rejection)


@transaction.atomic
def account_mark(
    *,
    participant,
    rules: engine.Rules,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    round_number: int | None = None,
) -> tuple[EquitySnapshot, bool]:
    """Mark at mid, run the margin close-out and negative balance protection, record equity.

    Returns the snapshot and whether the close-out left no equity (the caller marks the
    participant liquidated).
    """
    book = _one(participant, rules)
    (snapshot,) = book.mark(prices=prices, market_time=market_time, round_number=round_number)
    book.flush()
    snapshot.save()
    return snapshot, participant.pk in book.liquidated


@transaction.atomic
def account_close_all(
    *,
    participant,
    rules: engine.Rules,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    reason: str = engine.FillReason.COMPETITION_END,
) -> None:
    """Close every open position at its mark with costs (competition end)."""
    book = _one(participant, rules)
    book.close_all(prices=prices, market_time=market_time, reason=reason)
    book.flush()


def account_check_invariant(*, account: Account) -> Decimal:
    """Prove cash == initial_capital + sum(ledger) from the database; return the ledger sum.

    Summed in Python over the stored Decimals (SQLite's SUM would go through floats).
    """
    account.refresh_from_db(fields=["cash", "initial_capital"])
    total = sum(LedgerEntry.objects.filter(account=account).values_list("amount", flat=True), Decimal(0))
    if account.cash != account.initial_capital + total:
        raise AccountInvariantError(
            f"account {account.pk}: cash {account.cash} != initial {account.initial_capital} + ledger {total}"
        )
    open_symbols = list(account.positions.filter(is_open=True).values_list("symbol", flat=True))
    if len(open_symbols) != len(set(open_symbols)):
        raise AccountInvariantError(f"account {account.pk}: two open positions in one symbol")
    return total
