"""Writes of the trading app: load an account under lock, call the engine, persist its events.

Every service locks the Account row (select_for_update) inside one transaction, so two
orders for the same participant are decided one after the other, each seeing the other's
margin. A future `round_run` calls these per participant with the round's snapshot prices.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from django.db import transaction
from django.utils import timezone

from competitions.models import Competition, Participant
from gauntlet.db import update_rows
from trading import engine
from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, OrderStatus, Position

logger = logging.getLogger(__name__)

# quote currencies that make a symbol crypto when marketdata has no Instrument row for it
CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "BTC", "ETH")


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


# --- loading ---


def competition_rules(competition: Competition) -> engine.Rules:
    """The engine's view of a competition's rules and cost model."""
    return engine.Rules(
        max_leverage=competition.max_leverage,
        margin_requirement_pct=competition.margin_requirement_pct,
        maintenance_margin_pct=competition.maintenance_margin_pct,
        max_position_size_pct=competition.max_position_size_pct,
        fee_pct=competition.fee_pct,
        spread_bps=competition.spread_bps,
        slippage_bps=competition.slippage_bps,
        funding_rate_pct_8h=competition.funding_rate_pct_8h,
        financing_rate_pct_annual=competition.financing_rate_pct_annual,
        allowed_asset_classes=frozenset(competition.allowed_asset_classes or ()),
        symbols=frozenset(competition.symbols or ()),
        market_hours_only=competition.market_hours_only,
    )


def _instrument_row(symbol: str):
    from marketdata.models import Instrument as InstrumentRow

    return InstrumentRow.objects.filter(symbol=symbol).first()


def instrument_spec(symbol: str, row=None) -> engine.Instrument:
    """Asset class, quantity step and minimum of a symbol, from marketdata when it knows it."""
    row = row if row is not None else _instrument_row(symbol)
    if row is not None:
        return engine.Instrument(
            symbol=symbol,
            asset_class=row.asset_class,
            quantity_step=Decimal(1).scaleb(-row.quantity_precision),
            min_quantity=row.min_quantity or None,
        )
    quote = str(symbol).rpartition("/")[2].upper()
    return engine.Instrument(symbol=symbol, asset_class="crypto" if quote in CRYPTO_QUOTES else "unknown")


def _lock(participant: Participant) -> Account:
    accounts = Account.objects.select_for_update().select_related("participant__competition")
    try:
        return accounts.get(participant=participant)
    except Account.DoesNotExist:
        account_open(participant=participant)  # a participant added mid-way trades like the rest
        return accounts.get(participant=participant)


def _open_rows(account: Account) -> dict[str, Position]:
    return {row.symbol: row for row in account.positions.filter(is_open=True)}


def _state(account: Account, rows: Mapping[str, Position]) -> engine.Account:
    positions = {
        symbol: engine.Position(
            symbol=symbol,
            side=engine.PositionSide(row.side),
            quantity=row.quantity,
            entry_price=row.entry_price,
            initial_margin=row.initial_margin,
            opened_at=row.opened_at,
            asset_class=row.asset_class,
            stop_loss=row.stop_loss,
            take_profit=row.take_profit,
            realised_pnl=row.realised_pnl,
            fees=row.fees,
            funding=row.funding,
            closed_quantity=row.closed_quantity,
            closed_value=(row.exit_price or 0) * row.closed_quantity,
        )
        for symbol, row in rows.items()
    }
    return engine.Account(initial_capital=account.initial_capital, cash=account.cash, positions=positions)


def _leverage(position: engine.Position) -> Decimal:
    return position.leverage.quantize(Decimal("0.00000001"))


class _Writes:
    """Rows that engine events created or changed, written in dependency order by flush().

    Building rows in memory and inserting them in bulk keeps a round's writes to a handful
    of statements however many events it has. flush() updates existing positions before it
    inserts new ones, so a flip (old row closed, new row opened in the same symbol) never
    meets the one-open-position-per-symbol index with two open rows.
    """

    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.new_positions: list[Position] = []
        self.changed_positions: dict[int, tuple[Position, set[str]]] = {}
        self.fills: list[Fill] = []
        self.entries: list[LedgerEntry] = []
        self.accounts: dict[int, Account] = {}

    def position_changed(self, row: Position, fields) -> None:
        if row.pk is None:  # inserted by flush() with whatever values it has by then
            return
        _, changed = self.changed_positions.setdefault(id(row), (row, set()))
        changed.update(fields)

    def flush(self) -> None:
        if self.orders:
            Order.objects.bulk_create(self.orders)
        groups: dict[tuple[str, ...], list[Position]] = {}
        for row, fields in self.changed_positions.values():
            groups.setdefault(tuple(sorted(fields)), []).append(row)
        for fields, rows in groups.items():  # e.g. funding on every open position: one statement
            update_rows(Position, rows, fields)
        if self.new_positions:
            Position.objects.bulk_create(self.new_positions)
        if self.fills:
            Fill.objects.bulk_create(self.fills)
        if self.entries:
            LedgerEntry.objects.bulk_create(self.entries)
        if self.accounts:
            now = timezone.now()
            for account in self.accounts.values():
                account.updated_at = now
            update_rows(Account, self.accounts.values(), ["cash", "updated_at"])
        self.__init__()


_POSITION_STATE_FIELDS = (
    "side", "quantity", "entry_price", "initial_margin", "leverage", "stop_loss", "take_profit",
    "realised_pnl", "fees", "funding", "closed_quantity", "exit_price",
)
_POSITION_CLOSE_FIELDS = (
    "quantity", "closed_quantity", "exit_price", "realised_pnl", "fees", "funding", "is_open", "closed_at",
    "close_reason",
)


def _record(
    writes: _Writes,
    account: Account,
    rows: dict[str, Position],
    state: engine.Account,
    events: tuple[engine.Event, ...],
    market_time: datetime,
    order: Order | None = None,
) -> tuple[list[Fill], list[LedgerEntry]]:
    """Turn the engine's events and new state into rows in `writes`; `rows` (symbol -> open
    row) is updated in place. Nothing touches the database until writes.flush()."""
    fills: list[Fill] = []
    entries: list[LedgerEntry] = []
    fill_rows: dict[int, Fill] = {}
    last_row: dict[str, Position] = dict(rows)
    for event in events:
        if isinstance(event, engine.Fill):
            row = rows.get(event.symbol)
            if row is None:
                # a fill that opens: the row starts here and takes its final values below
                row = Position(
                    account=account,
                    symbol=event.symbol,
                    asset_class=state.positions[event.symbol].asset_class,
                    side=event.position_side,
                    quantity=event.quantity,
                    entry_price=event.price,
                    initial_margin=event.initial_margin,
                    leverage=Decimal(1),
                    opened_at=market_time,
                )
                writes.new_positions.append(row)
                rows[event.symbol] = last_row[event.symbol] = row
            fill = Fill(
                account=account,
                order=order,
                position=row,
                symbol=event.symbol,
                side=event.side,
                quantity=event.quantity,
                price=event.price,
                fee=event.fee,
                realised_pnl=event.realised_pnl,
                closes=event.closes,
                initial_margin=event.initial_margin,
                reason=event.reason,
                market_time=market_time,
            )
            writes.fills.append(fill)
            fills.append(fill)
            fill_rows[id(event)] = fill
        elif isinstance(event, engine.LedgerEvent):
            entry = LedgerEntry(
                account=account,
                kind=event.kind,
                amount=event.amount,
                fill=fill_rows.get(id(event.fill)) if event.fill is not None else None,
                position=last_row.get(event.symbol) if event.symbol else None,
                description=event.description,
                market_time=market_time,
            )
            writes.entries.append(entry)
            entries.append(entry)
        elif isinstance(event, engine.PositionClosed):
            row = rows.pop(event.position.symbol)
            closed = event.position
            row.quantity = closed.quantity
            row.closed_quantity = closed.closed_quantity
            row.exit_price = closed.exit_price
            row.realised_pnl = closed.realised_pnl
            row.fees = closed.fees
            row.funding = closed.funding
            row.is_open = False
            row.closed_at = market_time
            row.close_reason = event.reason
            writes.position_changed(row, _POSITION_CLOSE_FIELDS)
    for symbol, position in state.positions.items():
        row = rows[symbol]
        values = {
            "side": position.side,
            "quantity": position.quantity,
            "entry_price": position.entry_price,
            "initial_margin": position.initial_margin,
            "leverage": _leverage(position),
            "stop_loss": position.stop_loss,
            "take_profit": position.take_profit,
            "realised_pnl": position.realised_pnl,
            "fees": position.fees,
            "funding": position.funding,
            "closed_quantity": position.closed_quantity,
            "exit_price": position.exit_price,
        }
        # only what moved is written: a round touches few of the open positions
        changed = [name for name in _POSITION_STATE_FIELDS if getattr(row, name) != values[name]]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            writes.position_changed(row, changed)
    if account.cash != state.cash:
        account.cash = state.cash
        writes.accounts[account.pk] = account
    return fills, entries


def _persist(
    account: Account,
    rows: dict[str, Position],
    state: engine.Account,
    events: tuple[engine.Event, ...],
    market_time: datetime,
    order: Order | None = None,
) -> tuple[list[Fill], list[LedgerEntry]]:
    """Write the engine's events and the new state now; `rows` is updated in place."""
    writes = _Writes()
    recorded = _record(writes, account, rows, state, events, market_time, order)
    writes.flush()
    return recorded


def _market_open_check(
    competition: Competition,
    instrument_row,
    market_time: datetime,
    is_market_open: bool | Callable[[str], bool] | None,
) -> bool | Callable[[str], bool]:
    if is_market_open is not None:
        return is_market_open
    if not competition.market_hours_only or instrument_row is None:
        return True
    from marketdata.hours import is_market_open as hours_open

    return hours_open(instrument_row, market_time)


# --- services ---


@transaction.atomic
def account_open(*, participant: Participant) -> Account:
    """The participant's trading account, created with the competition's initial capital (idempotent)."""
    capital = participant.competition.initial_capital
    account, _ = Account.objects.get_or_create(
        participant=participant, defaults={"initial_capital": capital, "cash": capital}
    )
    return account


@transaction.atomic
def order_place(
    *,
    participant: Participant,
    order_request: engine.OrderRequest,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    invocation_id: int | None = None,
    client_ref: str = "",
    is_market_open: bool | Callable[[str], bool] | None = None,
    instrument: engine.Instrument | None = None,
) -> Order:
    """Execute one market order; the Order row records a rejection as faithfully as a fill.

    `is_market_open` (bool or symbol -> bool) is asked only when the competition trades market
    hours only; left None it comes from the marketdata Instrument's trading hours.
    A non-empty `client_ref` makes the call idempotent: a retry returns the first Order.
    """
    account = _lock(participant)
    if client_ref:
        existing = Order.objects.filter(account=account, client_ref=client_ref).first()
        if existing is not None:
            return existing
    competition = account.participant.competition
    row = _instrument_row(order_request.symbol) if instrument is None else None
    spec = instrument or instrument_spec(order_request.symbol, row)
    rows = _open_rows(account)
    state = _state(account, rows)
    result = engine.place_order(
        state,
        order_request,
        rules=competition_rules(competition),
        instrument=spec,
        prices=prices,
        at=market_time,
        competition_active=competition.status == Competition.Status.ACTIVE,
        participant_active=account.participant.status == Participant.Status.ACTIVE,
        market_open=_market_open_check(competition, row, market_time, is_market_open),
    )
    order = _order_row(account, order_request, result.rejection, market_time, invocation_id, client_ref)
    order.save()
    if result.rejection is None:
        _persist(account, rows, result.account, result.events, market_time, order)
    return order


def _order_row(
    account: Account,
    order_request: engine.OrderRequest,
    rejection: engine.Rejection | None,
    market_time: datetime,
    invocation_id: int | None,
    client_ref: str,
) -> Order:
    """The (unsaved) Order row of a request, filled or rejected."""
    return Order(
        account=account,
        invocation_id=invocation_id,
        client_ref=client_ref,
        symbol=str(order_request.symbol)[:32],
        side=engine.SIDE_ALIASES.get(order_request.side, str(order_request.side)[:8])
        if isinstance(order_request.side, str)
        else "",
        quantity=_storable(order_request.quantity, "quantity"),
        notional_usd=_storable(order_request.notional_usd, "notional_usd"),
        leverage=_storable(order_request.leverage, "leverage"),
        stop_loss=_storable(order_request.stop_loss, "stop_loss"),
        take_profit=_storable(order_request.take_profit, "take_profit"),
        status=OrderStatus.REJECTED if rejection else OrderStatus.FILLED,
        reject_code=rejection.code if rejection else "",
        reject_reason=rejection.reason[:300] if rejection else "",
        market_time=market_time,
    )


def _storable(value, field: str) -> Decimal | None:
    """The requested number if it fits its column, else None: rejected orders are kept too."""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except ArithmeticError:
            return None
    if not isinstance(value, (Decimal, int)) or isinstance(value, bool):
        return None
    value = Decimal(value)
    column = Order._meta.get_field(field)
    if not value.is_finite() or abs(value) >= Decimal(10) ** (column.max_digits - column.decimal_places):
        return None
    return value.quantize(Decimal(1).scaleb(-column.decimal_places))


@transaction.atomic
def position_close(
    *,
    participant: Participant,
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
    account = _lock(participant)
    if client_ref:
        existing = Order.objects.filter(account=account, client_ref=client_ref).first()
        if existing is not None:
            return existing
    row = account.positions.filter(is_open=True, symbol=symbol).first()
    if row is None:
        return Order.objects.create(
            account=account,
            invocation_id=invocation_id,
            client_ref=client_ref,
            symbol=str(symbol)[:32],
            side="",
            quantity=_storable(quantity, "quantity"),
            status=OrderStatus.REJECTED,
            reject_code=engine.RejectCode.NO_POSITION,
            reject_reason=f"there is no open position in {symbol} to close"[:300],
            market_time=market_time,
        )
    side = engine.OrderSide.SELL if row.side == engine.PositionSide.LONG else engine.OrderSide.BUY
    size = row.quantity if quantity is None else min(quantity, row.quantity)
    return order_place(
        participant=participant,
        order_request=engine.OrderRequest(symbol=symbol, side=side, quantity=size),
        prices=prices,
        market_time=market_time,
        invocation_id=invocation_id,
        client_ref=client_ref,
        is_market_open=is_market_open,
    )


@transaction.atomic
def exit_plan_update(
    *,
    participant: Participant,
    symbol: str,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    prices: Mapping[str, Decimal],
    market_time: datetime,
) -> ExitPlanOutcome:
    """Replace an open position's stop-loss / take-profit (None clears), validated against the mark."""
    account = _lock(participant)
    rows = _open_rows(account)
    result = engine.update_exit_plan(
        _state(account, rows),
        symbol,
        stop_loss=stop_loss,
        take_profit=take_profit,
        prices=prices,
        at=market_time,
    )
    if result.rejection is not None:
        return ExitPlanOutcome(rows.get(symbol), result.rejection)
    _persist(account, rows, result.account, result.events, market_time)
    return ExitPlanOutcome(rows[symbol], None)


def _liquidate_if(account: Account, liquidated: bool) -> None:
    participant = account.participant
    if liquidated and participant.status == Participant.Status.ACTIVE:
        participant.status = Participant.Status.LIQUIDATED
        participant.status_reason = "margin close-out left no equity"
        participant.save(update_fields=["status", "status_reason"])


@transaction.atomic
def account_process_bar(
    *,
    participant: Participant,
    bars: Mapping[str, BarLike],
    market_time: datetime,
) -> list[Fill]:
    """Run stops and take-profits intrabar on closed bars, then the close-out at the bars' closes.

    `bars` maps symbol -> anything with open/high/low/close (a marketdata Candle). Writes no
    equity snapshot: that is account_mark's job at the round's market time.
    """
    account = _lock(participant)
    rows = _open_rows(account)
    state = _state(account, rows)
    if not state.positions:
        return []
    rules = competition_rules(account.participant.competition)
    engine_bars = {
        symbol: engine.Bar(open=bar.open, high=bar.high, low=bar.low, close=bar.close)
        for symbol, bar in bars.items()
    }
    exits = engine.process_bar(state, engine_bars, rules=rules, at=market_time)
    closes = {symbol: bar.close for symbol, bar in engine_bars.items()}
    prices = {p.symbol: closes.get(p.symbol, p.entry_price) for p in exits.account.positions.values()}
    if all(p.symbol in closes for p in exits.account.positions.values()):
        marked = engine.mark(exits.account, prices, rules=rules, at=market_time)
        final, events, liquidated = marked.account, exits.events + marked.events, marked.liquidated
    else:
        # a position without a bar cannot be marked here; the round's account_mark will
        final, events, liquidated = exits.account, exits.events, False
    fills, _ = _persist(account, rows, final, events, market_time)
    _liquidate_if(account, liquidated)
    return fills


@transaction.atomic
def account_apply_funding(
    *,
    participant: Participant,
    previous_time: datetime,
    market_time: datetime,
    prices: Mapping[str, Decimal],
) -> list[LedgerEntry]:
    """Charge funding / financing for every moment in (previous_time, market_time] at `prices`.

    Only positions open now pay; call it bar by bar (after account_process_bar) so that a
    position closed by a stop before a funding moment does not pay it.
    """
    account = _lock(participant)
    rows = _open_rows(account)
    state = _state(account, rows)
    moments = engine.funding_moments(previous_time, market_time)
    if not state.positions or not moments:
        return []
    rules = competition_rules(account.participant.competition)
    events: list[engine.Event] = []
    for moment in moments:
        result = engine.apply_funding(state, moment, prices=prices, rules=rules)
        state = result.account
        events.extend(result.events)
    # ledger rows carry the market time of the call; the moment itself is in the description
    events = [
        engine.LedgerEvent(e.kind, e.amount, e.at, e.symbol, None, f"{e.kind} at {e.at:%Y-%m-%d %H:%M} UTC")
        for e in events
    ]
    return _persist(account, rows, state, tuple(events), market_time)[1]


@transaction.atomic
def account_mark(
    *,
    participant: Participant,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    round_number: int | None = None,
) -> EquitySnapshot:
    """Mark at mid, run the margin close-out and negative balance protection, record equity.

    A participant left with zero equity becomes `liquidated` and is not invoked again.
    """
    account = _lock(participant)
    rows = _open_rows(account)
    rules = competition_rules(account.participant.competition)
    marked = engine.mark(_state(account, rows), prices, rules=rules, at=market_time)
    _persist(account, rows, marked.account, marked.events, market_time)
    _liquidate_if(account, marked.liquidated)
    snapshot = _equity_snapshot(account, marked, market_time, round_number)
    snapshot.save()
    return snapshot


def _equity_snapshot(
    account: Account, marked: engine.MarkResult, market_time: datetime, round_number: int | None
) -> EquitySnapshot:
    metrics = marked.metrics
    return EquitySnapshot(
        account=account,
        market_time=market_time,
        round_number=round_number,
        equity=engine.money(metrics.equity),
        cash=metrics.cash,
        unrealised_pnl=engine.money(metrics.unrealised_pnl),
        used_margin=metrics.used_margin,
        free_margin=engine.money(metrics.free_margin),
        maintenance_requirement=engine.money(metrics.maintenance_requirement),
        open_positions=len(marked.account.positions),
    )


@transaction.atomic
def account_close_all(
    *,
    participant: Participant,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    reason: str = engine.FillReason.COMPETITION_END,
) -> list[Fill]:
    """Close every open position at its mark with costs (competition end), then NBP."""
    account = _lock(participant)
    rows = _open_rows(account)
    rules = competition_rules(account.participant.competition)
    result = engine.close_all(
        _state(account, rows), prices, rules=rules, at=market_time, reason=engine.FillReason(reason)
    )
    return _persist(account, rows, result.account, result.events, market_time)[0]


# --- batched for a round: every account of a competition in one lock and one load ---


def _lock_competition(competition: Competition, participant_ids: list[int] | None = None):
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
        .filter(participant__competition=competition)
    )
    if participant_ids is not None:
        accounts = accounts.filter(participant_id__in=participant_ids)
    accounts = list(accounts.order_by("id"))
    rows: dict[int, dict[str, Position]] = {account.pk: {} for account in accounts}
    for row in Position.objects.filter(account__in=accounts, is_open=True):
        rows[row.account_id][row.symbol] = row
    status = accounts[0].participant.competition.status if accounts else competition.status
    for account in accounts:
        account.participant.competition = competition
    return accounts, rows, status


@dataclass(frozen=True)
class RoundAction:
    """One validated action of one participant's decision, for Book.execute.

    kind "open" carries `order_request`; "close" closes `quantity` of the position in `symbol`
    (None: all of it, and never more than is open); "update_exit" replaces its stop-loss and
    take-profit. `client_ref` makes it idempotent, as for order_place.
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
    """A competition's accounts for one round: locked and loaded once, inside the caller's
    transaction, with the engine's state of each; the round's steps run on it in memory
    and flush() writes what they changed in a few statements.

    Each step decides exactly as the single-account services would, called one after the
    other (tests prove it). Use it only inside one transaction.
    """

    def __init__(self, competition: Competition, *, participant_ids: list[int] | None = None):
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("a Book holds row locks: open it inside transaction.atomic()")
        self.competition = competition
        self.rules = competition_rules(competition)
        self.accounts, self.rows, self.competition_status = _lock_competition(competition, participant_ids)
        self.by_participant = {account.participant_id: account for account in self.accounts}
        self.states = {account.pk: _state(account, self.rows[account.pk]) for account in self.accounts}
        self.writes = _Writes()

    def _open_missing(self, participant_ids) -> None:
        """Accounts for participants added mid-way: they trade like the rest."""
        missing = [pk for pk in participant_ids if pk not in self.by_participant]
        if not missing:
            return
        for participant in Participant.objects.filter(pk__in=missing, competition=self.competition):
            account_open(participant=participant)
        accounts, rows, _ = _lock_competition(self.competition, missing)
        for account in accounts:
            self.accounts.append(account)
            self.rows[account.pk] = rows[account.pk]
            self.by_participant[account.participant_id] = account
            self.states[account.pk] = _state(account, rows[account.pk])

    def _record(self, account: Account, state: engine.Account, events, market_time, order=None):
        self.states[account.pk] = state
        return _record(self.writes, account, self.rows[account.pk], state, events, market_time, order)

    def flush(self) -> None:
        self.writes.flush()

    # -- the steps of a round ---------------------------------------------------------

    def process_bars(
        self,
        *,
        participant_ids: Iterable[int],
        bars: Iterable[tuple[datetime, Mapping[str, BarLike]]],
        start: datetime,
        prices: Mapping[str, Decimal],
    ) -> None:
        """account_process_bar then account_apply_funding, bar by bar, for these participants.

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
                    _liquidate_if(account, liquidated)
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
        """account_close_all for every account: each open position closed at its mark with costs."""
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

        Decides exactly as order_place, position_close and exit_plan_update called one after
        the other would (each action sees the account as the previous ones left it). An
        action whose client_ref already has an order returns that order (a resumed round
        fills nothing twice); `check_done=False` skips that lookup for a caller that knows
        none can exist (client refs it made up in this same transaction). `instruments`
        (symbol -> marketdata Instrument or None) stands in for reading the catalogue.
        """
        actions = list(actions)
        if not actions:
            return []
        self._open_missing({action.participant_id for action in actions})
        refs = [action.client_ref for action in actions if action.client_ref] if check_done else []
        done: dict[tuple[int, str], Order] = {}
        if refs:
            owners = [self.by_participant[action.participant_id] for action in actions]
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
        active = self.competition_status == Competition.Status.ACTIVE
        results = []
        for action in actions:
            account = self.by_participant[action.participant_id]
            existing = done.get((account.pk, action.client_ref)) if action.client_ref else None
            if existing is not None:
                results.append(RoundActionResult(existing, tuple(existing.fills.all())))
                continue
            participant = account.participant
            if participant.status != Participant.Status.ACTIVE:
                results.append(RoundActionResult(rejection=engine.Rejection(
                    engine.RejectCode.PARTICIPANT_INACTIVE, f"participant is {participant.status}"
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
            order = _order_row(account, request, result.rejection, market_time, action.invocation_id, action.client_ref)
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
            specs[symbol] = instrument_spec(symbol, instrument_rows.get(symbol))
        return request, engine.place_order(
            state, request, rules=self.rules, instrument=specs[symbol], prices=prices, at=market_time,
            competition_active=active, participant_active=True,
            market_open=_market_open_check(self.competition, instrument_rows.get(symbol), market_time, is_market_open),
        )

    def mark(
        self,
        *,
        prices: Mapping[str, Decimal],
        market_time: datetime,
        round_number: int | None = None,
        exclude_participant_ids: Iterable[int] = (),
    ) -> list[EquitySnapshot]:
        """account_mark for every account: close-out and NBP where due; the equity
        snapshots are returned unsaved (insert them after flush())."""
        excluded = set(exclude_participant_ids)
        snapshots = []
        for account in self.accounts:
            if account.participant_id in excluded:
                continue
            marked = engine.mark(self.states[account.pk], prices, rules=self.rules, at=market_time)
            if marked.events:
                self._record(account, marked.account, marked.events, market_time)
            _liquidate_if(account, marked.liquidated)
            snapshots.append(_equity_snapshot(account, marked, market_time, round_number))
        return snapshots

    def views(self, *, prices: Mapping[str, Decimal]) -> dict:
        """trading.selectors.account_views from the book's state in memory (written yet or not)."""
        from trading.selectors import account_line

        return {
            account.participant_id: account_line(
                account, sorted(self.rows[account.pk].values(), key=lambda row: row.symbol), self.rules, prices
            )
            for account in self.accounts
        }


@transaction.atomic
def accounts_process_bars(
    *,
    competition: Competition,
    participant_ids: list[int],
    bars: Iterable[tuple[datetime, Mapping[str, BarLike]]],
    start: datetime,
    prices: Mapping[str, Decimal],
) -> None:
    """account_process_bar then account_apply_funding, bar by bar, for several accounts at once.

    Same rules and the same rows as calling those two per participant and per bar; the
    difference is one lock and one load for the whole stretch, and writes only where
    something happened.
    """
    book = Book(competition, participant_ids=participant_ids)
    book.process_bars(participant_ids=participant_ids, bars=bars, start=start, prices=prices)
    book.flush()


@transaction.atomic
def accounts_mark(
    *,
    competition: Competition,
    prices: Mapping[str, Decimal],
    market_time: datetime,
    round_number: int | None = None,
    exclude_participant_ids: Iterable[int] = (),
) -> list[EquitySnapshot]:
    """account_mark for every account of a competition: one lock, one load, one insert."""
    book = Book(competition)
    snapshots = book.mark(
        prices=prices, market_time=market_time, round_number=round_number,
        exclude_participant_ids=exclude_participant_ids,
    )
    book.flush()
    return EquitySnapshot.objects.bulk_create(snapshots)


@transaction.atomic
def actions_execute(
    *,
    competition: Competition,
    actions: Iterable[RoundAction],
    prices: Mapping[str, Decimal],
    market_time: datetime,
    is_market_open: bool | Callable[[str], bool] | None = None,
) -> list[RoundActionResult]:
    """Book.execute on its own: a round's actions with one lock and one load, written in bulk."""
    actions = list(actions)
    if not actions:
        return []
    book = Book(competition, participant_ids=sorted({action.participant_id for action in actions}))
    results = book.execute(actions, prices=prices, market_time=market_time, is_market_open=is_market_open)
    book.flush()
    return results


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
