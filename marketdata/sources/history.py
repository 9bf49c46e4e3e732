"""Shared behaviour of sources that hold a bar history in memory (replay, synthetic)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Iterator
from datetime import datetime, timedelta

from marketdata.catalogue import symbol_asset_class
from marketdata.hours import ALWAYS, TradingHours, is_market_open
from marketdata.series import (
    DEFAULT_BASE_BARS,
    DEFAULT_HIGHER_BARS,
    NoPriceYet,
    SymbolHistory,
    epoch_seconds,
    from_epoch_seconds,
    symbol_snapshot,
    timeframe_delta,
)
from marketdata.snapshot import Candle, MarketSnapshot
from marketdata.sources.base import MarketDataError, NoPriceError, StalePriceError

# Instruments change rarely (admin edits); a process keeps them this long, so a replay of
# thousands of rounds does not query the catalogue every round.
INSTRUMENT_CACHE_SECONDS = 60.0
_instrument_cache: dict[str, tuple[float, object]] = {}


def clear_instrument_cache() -> None:
    _instrument_cache.clear()


class InstrumentLookup:
    """Asset class and trading hours per symbol from the catalogue (cached per process)."""

    def __init__(self):
        self._instruments: dict[str, object] = {}

    def _load(self, symbols):
        from marketdata.models import Instrument  # the app registry is ready by the first lookup

        now = time.monotonic()
        missing = []
        for symbol in symbols:
            if symbol in self._instruments:
                continue
            cached = _instrument_cache.get(symbol)
            if cached is not None and now - cached[0] < INSTRUMENT_CACHE_SECONDS:
                self._instruments[symbol] = cached[1]
            else:
                missing.append(symbol)
        if missing:
            found = {row.symbol: row for row in Instrument.objects.filter(symbol__in=missing)}
            for symbol in missing:
                self._instruments[symbol] = found.get(symbol)
                _instrument_cache[symbol] = (now, found.get(symbol))

    def asset_class(self, symbol: str) -> str:
        self._load([symbol])
        instrument = self._instruments[symbol]
        return instrument.asset_class if instrument else symbol_asset_class(symbol)

    def hours(self, symbol: str) -> TradingHours:
        self._load([symbol])
        instrument = self._instruments[symbol]
        return instrument.trading_hours if instrument else TradingHours(kind=ALWAYS)

    def instrument(self, symbol: str):
        self._load([symbol])
        return self._instruments[symbol]

    def preload(self, symbols):
        self._load(list(symbols))


class HistorySource(ABC):
    """snapshot / candles / bars / is_tradable over `self.history(symbol)`.

    Subclasses set `name`, `timeframe`, `max_age` and implement `history(symbol)`.
    """

    name: str
    timeframe: str
    max_age: timedelta
    base_bars: int = DEFAULT_BASE_BARS
    higher_bars: int = DEFAULT_HIGHER_BARS

    def __init__(self):
        self.instruments = InstrumentLookup()

    @abstractmethod
    def history(self, symbol: str) -> SymbolHistory:
        """The symbol's full candle history (replay: from the database; synthetic: generated)."""

    def dataset_label(self) -> str:
        return ""

    def _check_fresh(self, symbol: str, price_time: datetime, at: datetime) -> None:
        age = at - price_time
        if age > self.max_age:
            raise StalePriceError(symbol, price_time, age.total_seconds(), self.max_age.total_seconds())

    def snapshot(self, symbols: list[str], at: datetime) -> MarketSnapshot:
        self.instruments.preload(symbols)
        snapshots = {}
        for symbol in symbols:
            try:
                snap = symbol_snapshot(
                    self.history(symbol), at, base_bars=self.base_bars, higher_bars=self.higher_bars
                )
            except NoPriceYet as exc:
                raise NoPriceError(str(exc)) from exc
            self._check_fresh(symbol, snap.price_time, at)
            snapshots[symbol] = snap
        return MarketSnapshot(at=at, source=self.name, symbols=snapshots)

    def candles(self, symbol: str, timeframe: str, until: datetime, limit: int) -> list[Candle]:
        series = self.history(symbol).series(timeframe)
        count = series.closed_count(until)
        return series.candles[max(0, count - limit) : count]

    def is_tradable(self, symbol: str, at: datetime) -> bool:
        if not is_market_open(self.instruments.hours(symbol), at):
            return False
        try:
            base = self.history(symbol).base
        except MarketDataError:
            return False
        last = base.closed_count(at) - 1
        return last >= 0 and at - base.close_time(last) <= self.max_age

    def bars(
        self, symbols: list[str], timeframe: str, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, dict[str, Candle]]]:
        """Every bar of `timeframe` that closed in (start, end], grouped by close time."""
        by_close: dict[int, dict[str, Candle]] = {}
        start_s, end_s = epoch_seconds(start), epoch_seconds(end)
        for symbol in symbols:
            series = self.history(symbol).series(timeframe)
            first = bisect_right(series.close_times, start_s)
            last = bisect_right(series.close_times, end_s)
            for index in range(first, last):
                by_close.setdefault(series.close_times[index], {})[symbol] = series.candles[index]
        for close_time in sorted(by_close):
            yield from_epoch_seconds(close_time), by_close[close_time]


def default_max_age(timeframe: str) -> timedelta:
    # A price is fresh while the next bar has not yet been due: older means a bar is missing.
    return timeframe_delta(timeframe)
