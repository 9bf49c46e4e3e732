"""The one mapping between ledger rows and the engine's values.

Rows -> engine: `account_state` (an Account and its open Position rows as an engine.Account),
`instrument_spec` (a marketdata Instrument as an engine.Instrument). Engine -> rows:
`record_events` turns the engine's events and new state into unsaved rows in a `Writes`,
and `Writes.flush()` inserts and updates them in a handful of statements. `order_row` and
`equity_snapshot` build the Order and EquitySnapshot rows. No transaction and no lock here:
that is the Book's job (trading/services.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from gauntlet.db import as_stored, insert_rows, new_row, update_rows
from marketdata.catalogue import symbol_asset_class
from trading import engine
from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, OrderStatus, Position


def instrument_row(symbol: str):
    from marketdata.models import Instrument as InstrumentRow

    return InstrumentRow.objects.filter(symbol=symbol).first()


def instrument_spec(symbol: str, row=None) -> engine.Instrument:
    """Asset class, quantity step and minimum of a symbol, from marketdata when it knows it."""
    row = row if row is not None else instrument_row(symbol)
    if row is not None:
        return engine.Instrument(
            symbol=symbol,
            asset_class=row.asset_class,
            # a masked instrument (marketdata.masking) carries its exact, scaled step
            quantity_step=getattr(row, "quantity_step", None) or Decimal(1).scaleb(-row.quantity_precision),
            min_quantity=row.min_quantity or None,
        )
    return engine.Instrument(symbol=symbol, asset_class=symbol_asset_class(symbol))


def account_state(account: Account, rows: Mapping[str, Position]) -> engine.Account:
    """An Account row and its open Position rows (symbol -> row) as the engine's account."""
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


class Writes:
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
        # insert_rows: bulk_create's rows without its per-call query compiling
        if self.orders:
            insert_rows(Order, self.orders)
        groups: dict[tuple[str, ...], list[Position]] = {}
        for row, fields in self.changed_positions.values():
            groups.setdefault(tuple(sorted(fields)), []).append(row)
        for fields, rows in groups.items():  # e.g. funding on every open position: one statement
            update_rows(Position, rows, fields)
        if self.new_positions:
            insert_rows(Position, self.new_positions)
        if self.fills:
            insert_rows(Fill, self.fills)
        if self.entries:
            insert_rows(LedgerEntry, self.entries, returning=False)
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
# the numbers account_state reads: a reload starts from their stored values
_ACCOUNT_DECIMALS = ("cash",)
_POSITION_DECIMALS = (
    "quantity", "entry_price", "initial_margin", "stop_loss", "take_profit", "realised_pnl", "fees", "funding",
    "closed_quantity", "exit_price",
)
_POSITION_CLOSE_FIELDS = (
    "quantity", "closed_quantity", "exit_price", "realised_pnl", "fees", "funding", "is_open", "closed_at",
    "close_reason",
)


def rows_as_stored(account: Account, rows: Mapping[str, Position]) -> None:
    """The account's cash and its open rows' numbers as the database holds them once written
    (gauntlet.db.as_stored): what account_state of a reload would start from."""
    as_stored(account, _ACCOUNT_DECIMALS)
    for row in rows.values():
        as_stored(row, _POSITION_DECIMALS)


def record_events(
    writes: Writes,
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
                row = new_row(
                    Position,
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
            fill = new_row(
                Fill,
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
            entry = new_row(
                LedgerEntry,
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



def order_row(
    account: Account,
    order_request: engine.OrderRequest,
    rejection: engine.Rejection | None,
    market_time: datetime,
    invocation_id: int | None,
    client_ref: str,
) -> Order:
    """The (unsaved) Order row of a request, filled or rejected."""
    return new_row(
        Order,
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



def equity_snapshot(
    account: Account, marked: engine.MarkResult, market_time: datetime, round_number: int | None
) -> EquitySnapshot:
    metrics = marked.metrics
    return new_row(
        EquitySnapshot,
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

