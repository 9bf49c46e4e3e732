"""The PriceSource protocol, its errors, and the registry of sources by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Protocol, runtime_checkable

from marketdata.snapshot import Candle, MarketSnapshot


class MarketDataError(Exception):
    """Base of every market data failure; the message says why, for the round's record."""


class UnknownSourceError(MarketDataError):
    pass


class NoPriceError(MarketDataError):
    """No price exists for the symbol at that moment (no closed bar, unknown symbol)."""


class StalePriceError(MarketDataError):
    """The newest price is older than the allowed age: never trade on it."""

    def __init__(self, symbol: str, price_time: datetime, age_seconds: float, max_age_seconds: float):
        self.symbol = symbol
        self.price_time = price_time
        self.age_seconds = age_seconds
        self.max_age_seconds = max_age_seconds
        super().__init__(
            f"price of {symbol} is stale: last at {price_time.isoformat()}, "
            f"{age_seconds:.0f}s old (limit {max_age_seconds:.0f}s)"
        )


class ExchangeUnavailableError(MarketDataError):
    """The exchange answered with an error, timed out or could not be reached."""


@runtime_checkable
class PriceSource(Protocol):
    name: str

    def snapshot(self, symbols: list[str], at: datetime) -> MarketSnapshot: ...

    def candles(self, symbol: str, timeframe: str, until: datetime, limit: int) -> list[Candle]: ...

    def is_tradable(self, symbol: str, at: datetime) -> bool: ...


class BarSource(PriceSource, Protocol):
    """Sources with a bar history (replay, synthetic) also walk bars between rounds."""

    def bars(
        self, symbols: list[str], timeframe: str, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, dict[str, Candle]]]: ...


SOURCES: dict[str, Callable[..., PriceSource]] = {}


def register(name: str):
    def decorator(factory):
        SOURCES[name] = factory
        return factory

    return decorator


def get_source(name: str, **options) -> PriceSource:
    """A price source by name ("replay", "live", "synthetic") built with its options."""
    try:
        factory = SOURCES[name]
    except KeyError:
        raise UnknownSourceError(
            f"unknown price source {name!r}; known: {', '.join(sorted(SOURCES))}"
        ) from None
    return factory(**options)
