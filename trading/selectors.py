"""Reads of the trading app, returned as plain values (agents and pages must not need the ORM)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from trading import engine
from trading.ledger import account_state
from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, Position


@dataclass(frozen=True)
class PositionLine:
    symbol: str
    asset_class: str
    side: str
    quantity: Decimal
    entry_price: Decimal
    mark_price: Decimal
    notional: Decimal
    unrealised_pnl: Decimal
    initial_margin: Decimal
    leverage: Decimal
    stop_loss: Decimal | None
    take_profit: Decimal | None
    liquidation_price: Decimal | None
    realised_pnl: Decimal
    fees: Decimal
    funding: Decimal
    opened_at: datetime


@dataclass(frozen=True)
class AccountLine:
    initial_capital: Decimal
    cash: Decimal
    equity: Decimal
    unrealised_pnl: Decimal
    used_margin: Decimal
    free_margin: Decimal
    margin_level: Decimal | None  # equity / used margin; None when nothing is open
    maintenance_requirement: Decimal
    positions: tuple[PositionLine, ...]


def account_view(
    *, participant, prices: Mapping[str, Decimal], rules: engine.Rules, initial_capital: Decimal
) -> AccountLine:
    """Cash, equity, margins and open positions with unrealised PnL and liquidation price.

    A position whose symbol is missing from `prices` is marked at its entry price; an
    account not opened yet shows what it will hold once it is (`initial_capital`, flat).
    Two queries whatever the number of positions.
    """
    account = Account.objects.filter(participant=participant).first()
    if account is None:
        account = Account(participant=participant, initial_capital=initial_capital, cash=initial_capital)
        rows = []
    else:
        rows = list(account.positions.filter(is_open=True).order_by("symbol"))
    return account_line(account, rows, rules, prices)


def account_views(*, competition_id: int, prices: Mapping[str, Decimal], rules: engine.Rules) -> dict[int, AccountLine]:
    """account_view for every account of a competition, keyed by participant id: two queries."""
    accounts = list(Account.objects.filter(participant__competition_id=competition_id))
    rows: dict[int, list[Position]] = {account.pk: [] for account in accounts}
    for row in Position.objects.filter(account__in=accounts, is_open=True).order_by("symbol"):
        rows[row.account_id].append(row)
    return {account.participant_id: account_line(account, rows[account.pk], rules, prices) for account in accounts}


def account_line(
    account: Account, rows: list[Position], rules: engine.Rules, prices: Mapping[str, Decimal],
    state: engine.Account | None = None,
) -> AccountLine:
    """The account and its open rows at these prices. `state`: the engine's account of exactly
    these rows, when the caller holds it (trading.services.Book), else built from them."""
    marks = {row.symbol: prices.get(row.symbol, row.entry_price) for row in rows}
    if state is None:
        state = account_state(account, {row.symbol: row for row in rows})
    metrics = engine.metrics(state, marks, rules)
    lines = tuple(
        PositionLine(
            symbol=row.symbol,
            asset_class=row.asset_class,
            side=row.side,
            quantity=row.quantity,
            entry_price=row.entry_price,
            mark_price=marks[row.symbol],
            notional=engine.money(row.quantity * marks[row.symbol]),
            unrealised_pnl=engine.money(state.positions[row.symbol].unrealised_pnl(marks[row.symbol])),
            initial_margin=row.initial_margin,
            leverage=row.leverage,
            stop_loss=row.stop_loss,
            take_profit=row.take_profit,
            liquidation_price=engine.liquidation_price(state, row.symbol, marks, rules=rules),
            realised_pnl=row.realised_pnl,
            fees=row.fees,
            funding=row.funding,
            opened_at=row.opened_at,
        )
        for row in rows
    )
    return AccountLine(
        initial_capital=account.initial_capital,
        cash=account.cash,
        equity=engine.money(metrics.equity),
        unrealised_pnl=engine.money(metrics.unrealised_pnl),
        used_margin=metrics.used_margin,
        free_margin=engine.money(metrics.free_margin),
        margin_level=metrics.margin_level.quantize(Decimal("0.0001"))
        if metrics.margin_level is not None
        else None,
        maintenance_requirement=engine.money(metrics.maintenance_requirement),
        positions=lines,
    )


def account_get(*, participant) -> Account | None:
    return Account.objects.filter(participant=participant).first()


def position_list(*, participant, is_open: bool | None = None):
    rows = Position.objects.filter(account__participant=participant)
    if is_open is not None:
        rows = rows.filter(is_open=is_open)
    return rows.order_by("opened_at", "id")


def order_list(*, participant):
    return Order.objects.filter(account__participant=participant).order_by("id")


def fill_list(*, participant):
    return (
        Fill.objects.filter(account__participant=participant)
        .select_related("order", "position")
        .order_by("id")
    )


def ledger_list(*, participant):
    return LedgerEntry.objects.filter(account__participant=participant).order_by("id")


def equity_snapshot_list(*, participant):
    return EquitySnapshot.objects.filter(account__participant=participant).order_by("market_time", "id")


def closed_position_list(*, participant: Participant):
    """Closed positions, the latest closed first (the API's closed-positions page)."""
    return position_list(participant=participant, is_open=False).order_by("-closed_at", "-id")


def fill_count(*, participant: Participant) -> int:
    """How many fills the participant has: one COUNT query, for paging its trades."""
    return Fill.objects.filter(account__participant=participant).count()
