"""Positions and the portfolio as the API shows them: one shape for open and closed positions.

An open position comes from the account view (marked at the last round's prices, no row id);
a closed one from its row (its realised result). The fields the other kind lacks are None.
"""

from analytics import net_pnl

from ..models import Participant
from ..rules import account_view
from ..selectors import market_quotes


def open_position_body(line, marked: bool) -> dict:
    return {
        "id": None,
        "is_open": True,
        "symbol": line.symbol,
        "asset_class": line.asset_class,
        "side": line.side,
        "quantity": line.quantity,
        "entry_price": line.entry_price,
        "leverage": line.leverage,
        "initial_margin": line.initial_margin,
        "stop_loss": line.stop_loss,
        "take_profit": line.take_profit,
        "realised_pnl": line.realised_pnl,
        "fees": line.fees,
        "funding": line.funding,
        "opened_at": line.opened_at,
        "mark_price": line.mark_price,
        "marked": marked,
        "notional": line.notional,
        "unrealised_pnl": line.unrealised_pnl,
        "liquidation_price": line.liquidation_price,
        "exit_price": None,
        "closed_quantity": None,
        "net_pnl": None,
        "closed_at": None,
        "close_reason": "",
    }


def closed_position_body(row) -> dict:
    return {
        "id": row.pk,
        "is_open": False,
        "symbol": row.symbol,
        "asset_class": row.asset_class,
        "side": row.side,
        "quantity": row.quantity,
        "entry_price": row.entry_price,
        "leverage": row.leverage,
        "initial_margin": row.initial_margin,
        "stop_loss": row.stop_loss,
        "take_profit": row.take_profit,
        "realised_pnl": row.realised_pnl,
        "fees": row.fees,
        "funding": row.funding,
        "opened_at": row.opened_at,
        "mark_price": None,
        "marked": False,
        "notional": None,
        "unrealised_pnl": None,
        "liquidation_price": None,
        "exit_price": row.exit_price,
        "closed_quantity": row.closed_quantity,
        "net_pnl": net_pnl(realised_pnl=row.realised_pnl, fees=row.fees, funding=row.funding),
        "closed_at": row.closed_at,
        "close_reason": row.close_reason,
    }


def portfolio_body(participant: Participant) -> dict:
    """The account marked at the last round's snapshot prices (capital only before the first round)."""
    marked_at, quotes = market_quotes(participant.competition)
    prices = {quote.symbol: quote.price for quote in quotes}
    view = account_view(participant=participant, prices=prices)
    return {
        "participant_id": participant.pk,
        "marked_at": marked_at,
        "initial_capital": view.initial_capital,
        "cash": view.cash,
        "equity": view.equity,
        "unrealised_pnl": view.unrealised_pnl,
        "used_margin": view.used_margin,
        "free_margin": view.free_margin,
        "margin_level": view.margin_level,
        "maintenance_requirement": view.maintenance_requirement,
        "positions": [open_position_body(line, line.symbol in prices) for line in view.positions],
    }
