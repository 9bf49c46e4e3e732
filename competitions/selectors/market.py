"""The market as the last round saw it: the traded symbols' prices in its stored snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from competitions.models import Competition, Round


@dataclass
class MarketQuote:
    symbol: str
    price: Decimal
    change_24h_pct: Decimal | None


def market_quotes(competition: Competition) -> tuple[datetime | None, list[MarketQuote]]:
    """Prices of the traded symbols in the last round's snapshot (1 query): the pages' market
    strip and the marks of the portfolio the API and the participant page show."""
    last = (
        Round.objects.filter(competition=competition, snapshot__isnull=False)
        .order_by("-number")
        .values_list("snapshot__at", "snapshot__payload")
        .first()
    )
    if last is None:
        return None, []
    at, payload = last
    symbols = (payload or {}).get("symbols") or {}
    wanted = competition.symbols or sorted(symbols)
    quotes = []
    for symbol in wanted:
        entry = symbols.get(symbol)
        if not isinstance(entry, dict) or entry.get("price") in (None, ""):
            continue
        change = entry.get("change_24h_pct")
        quotes.append(
            MarketQuote(
                symbol=symbol,
                price=Decimal(str(entry["price"])),
                change_24h_pct=None if change in (None, "") else Decimal(str(change)),
            )
        )
    return at, quotes
