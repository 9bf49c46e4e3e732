"""What every agent sees in a round: plain frozen dataclasses, no Django.

A `MarketSnapshot` is built once per round by a price source, stored as JSON
(`MarketSnapshotRecord`) and handed unchanged to every agent, so all agents see the
same numbers. Decimals cross JSON as strings, times as ISO-8601 UTC.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from gauntlet.timefmt import iso_utc

# the same bar times are written again every round: cache the text of each
_iso = lru_cache(maxsize=65536)(iso_utc)


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV bar; `open_time` is the bar's open (UTC), it closes one timeframe later."""

    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def to_dict(self) -> dict:
        return dict(_candle_dict(self))

    def _as_dict(self) -> dict:
        return {
            "open_time": _iso(self.open_time),
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "close": str(self.close),
            "volume": str(self.volume),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Candle:
        return cls(
            open_time=_parse_time(data["open_time"]),
            open=Decimal(data["open"]),
            high=Decimal(data["high"]),
            low=Decimal(data["low"]),
            close=Decimal(data["close"]),
            volume=Decimal(data["volume"]),
        )


@lru_cache(maxsize=65536)
def _candle_dict(candle: Candle) -> dict:
    # The same bars recur in consecutive rounds' snapshots: format each once.
    return candle._as_dict()


def _json_float(value: float | None) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return value


@dataclass(frozen=True, slots=True)
class SymbolSnapshot:
    symbol: str
    asset_class: str
    price: Decimal
    price_time: datetime
    change_24h_pct: Decimal | None
    # timeframe -> candles, oldest first
    candles: dict[str, list[Candle]] = field(default_factory=dict)
    # timeframe -> indicator name -> value (None while there is not enough history)
    indicators: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def summary_dict(self) -> dict:
        """The mids and the 24 h change: what a stored replay snapshot keeps of a symbol."""
        return {
            "symbol": self.symbol,
            "asset_class": self.asset_class,
            "price": str(self.price),
            "price_time": _iso(self.price_time),
            "change_24h_pct": None if self.change_24h_pct is None else str(self.change_24h_pct),
        }

    def to_dict(self) -> dict:
        return {
            **self.summary_dict(),
            "candles": {tf: [c.to_dict() for c in bars] for tf, bars in self.candles.items()},
            "indicators": {
                tf: {name: _json_float(value) for name, value in values.items()}
                for tf, values in self.indicators.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> SymbolSnapshot:
        change = data.get("change_24h_pct")
        return cls(
            symbol=data["symbol"],
            asset_class=data["asset_class"],
            price=Decimal(data["price"]),
            price_time=_parse_time(data["price_time"]),
            change_24h_pct=None if change is None else Decimal(change),
            candles={tf: [Candle.from_dict(c) for c in bars] for tf, bars in data.get("candles", {}).items()},
            indicators={tf: dict(values) for tf, values in data.get("indicators", {}).items()},
        )


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    at: datetime
    source: str
    symbols: dict[str, SymbolSnapshot]

    @property
    def prices(self) -> dict[str, Decimal]:
        return {symbol: snap.price for symbol, snap in self.symbols.items()}

    def to_dict(self) -> dict:
        return {
            "at": _iso(self.at),
            "source": self.source,
            "symbols": {symbol: snap.to_dict() for symbol, snap in self.symbols.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> MarketSnapshot:
        return cls(
            at=_parse_time(data["at"]),
            source=data["source"],
            symbols={symbol: SymbolSnapshot.from_dict(snap) for symbol, snap in data["symbols"].items()},
        )
