"""Candle series in memory: timeframes, UTC-aligned aggregation, snapshot building. No Django.

Every source (replay, live, synthetic) ends up with a `CandleSeries` per symbol in its
base timeframe and calls `symbol_snapshot(...)`, so the rules of what an agent may see
live in one place:
- only bars with close time (open_time + timeframe) <= the snapshot moment are used;
- the price is the close of the last closed base bar, `price_time` its close time;
- higher timeframes are aggregated from the base bars into UTC-aligned buckets, and a
  higher bar is shown only when complete (its bucket has ended and every base bar in it
  is present);
- indicators are computed over the whole series held in memory and read at the last
  closed bar (an indicator at bar i only uses bars <= i).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cached_property

import numpy as np

from marketdata.indicators import indicator_table
from marketdata.snapshot import Candle, SymbolSnapshot

TIMEFRAME_SECONDS = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "30m": 1800,
    "1h": 3600,
    "2h": 7200,
    "4h": 14400,
    "1d": 86400,
}

# Base timeframe -> the timeframes a snapshot shows (base first).
SNAPSHOT_TIMEFRAMES = {
    "1m": ("1m", "5m", "15m", "1h"),
    "5m": ("5m", "15m", "1h", "4h"),
    "15m": ("15m", "1h", "4h"),
    "30m": ("30m", "1h", "4h"),
    "1h": ("1h", "4h"),
    "2h": ("2h", "4h", "1d"),
    "4h": ("4h", "1d"),
    "1d": ("1d",),
}

# How many recent bars a snapshot carries per timeframe (the prompt must stay small);
# indicators are computed over the whole history regardless.
DEFAULT_BASE_BARS = 24
DEFAULT_HIGHER_BARS = 12
SIGNIFICANT_DIGITS = 8


def timeframe_seconds(timeframe: str) -> int:
    try:
        return TIMEFRAME_SECONDS[timeframe]
    except KeyError:
        raise ValueError(
            f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAME_SECONDS)}"
        ) from None


def timeframe_delta(timeframe: str) -> timedelta:
    return timedelta(seconds=timeframe_seconds(timeframe))


def epoch_seconds(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("market times must be timezone-aware (UTC)")
    return int(moment.timestamp())


def from_epoch_seconds(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def clean_decimal(value: Decimal) -> Decimal:
    """Drop the trailing zeros a DecimalField pads with, without turning 60000 into 6E+4."""
    normal = value.normalize()
    return normal.quantize(Decimal(1)) if normal.as_tuple().exponent > 0 else normal


def _round_significant(value: float) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    if value == 0:
        return 0.0
    digits = SIGNIFICANT_DIGITS - math.floor(math.log10(abs(value))) - 1
    return round(value, digits)


class CandleSeries:
    """Bars of one symbol in one timeframe, oldest first, with times as epoch seconds."""

    def __init__(self, timeframe: str, candles: list[Candle]):
        self.timeframe = timeframe
        self.seconds = timeframe_seconds(timeframe)
        self.candles = candles
        self.open_times = [epoch_seconds(c.open_time) for c in candles]
        self.close_times = [t + self.seconds for t in self.open_times]

    def __len__(self) -> int:
        return len(self.candles)

    def closed_count(self, at: datetime) -> int:
        """How many bars have closed at `at` (close time <= at)."""
        return bisect_right(self.close_times, epoch_seconds(at))

    def closed_until(self, at: datetime) -> list[Candle]:
        return self.candles[: self.closed_count(at)]

    def close_time(self, index: int) -> datetime:
        return from_epoch_seconds(self.close_times[index])

    @cached_property
    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "high": np.array([float(c.high) for c in self.candles]),
            "low": np.array([float(c.low) for c in self.candles]),
            "close": np.array([float(c.close) for c in self.candles]),
            "volume": np.array([float(c.volume) for c in self.candles]),
        }

    @cached_property
    def indicators(self) -> dict[str, np.ndarray]:
        a = self.arrays
        return indicator_table(a["high"], a["low"], a["close"], a["volume"])

    def indicators_at(self, index: int) -> dict[str, float | None]:
        """Indicator values at bar `index` (which must be a closed bar)."""
        if index < 0:
            return {name: None for name in self.indicators}
        return {name: _round_significant(float(values[index])) for name, values in self.indicators.items()}

    def aggregate(self, timeframe: str) -> CandleSeries:
        """UTC-aligned higher-timeframe bars; buckets missing any base bar are left out."""
        seconds = timeframe_seconds(timeframe)
        if seconds == self.seconds:
            return self
        if seconds < self.seconds or seconds % self.seconds:
            raise ValueError(f"cannot build {timeframe} bars from {self.timeframe} bars")
        per_bucket = seconds // self.seconds
        aggregated: list[Candle] = []
        bucket_start = None
        members: list[Candle] = []

        def flush():
            if bucket_start is not None and len(members) == per_bucket:
                aggregated.append(
                    Candle(
                        open_time=from_epoch_seconds(bucket_start),
                        open=members[0].open,
                        high=max(c.high for c in members),
                        low=min(c.low for c in members),
                        close=members[-1].close,
                        volume=sum((c.volume for c in members), Decimal(0)),
                    )
                )

        for open_time, candle in zip(self.open_times, self.candles, strict=True):
            start = open_time - open_time % seconds
            if start != bucket_start:
                flush()
                bucket_start, members = start, []
            members.append(candle)
        flush()
        return CandleSeries(timeframe, aggregated)


@dataclass
class SymbolHistory:
    """A symbol's base series plus its aggregated higher timeframes, built once and cached."""

    symbol: str
    asset_class: str
    base: CandleSeries

    def __post_init__(self):
        self._by_timeframe: dict[str, CandleSeries] = {self.base.timeframe: self.base}

    def series(self, timeframe: str) -> CandleSeries:
        if timeframe not in self._by_timeframe:
            self._by_timeframe[timeframe] = self.base.aggregate(timeframe)
        return self._by_timeframe[timeframe]


class NoPriceYet(LookupError):
    """No bar of this symbol has closed at the requested moment."""


def change_24h_pct(base: CandleSeries, last_index: int) -> Decimal | None:
    """Close-to-close change over 24 hours, against the last bar closed 24h before."""
    target = base.close_times[last_index] - 86400
    earlier = bisect_right(base.close_times, target) - 1
    if earlier < 0 or base.close_times[earlier] != target:
        return None
    previous = base.candles[earlier].close
    if previous == 0:
        return None
    change = (base.candles[last_index].close / previous - 1) * 100
    return change.quantize(Decimal("0.01"))


def symbol_snapshot(
    history: SymbolHistory,
    at: datetime,
    *,
    base_bars: int = DEFAULT_BASE_BARS,
    higher_bars: int = DEFAULT_HIGHER_BARS,
    timeframes: tuple[str, ...] | None = None,
) -> SymbolSnapshot:
    base = history.base
    last = base.closed_count(at) - 1
    if last < 0:
        raise NoPriceYet(f"no {base.timeframe} bar of {history.symbol} has closed by {at.isoformat()}")
    candles: dict[str, list[Candle]] = {}
    indicators: dict[str, dict[str, float | None]] = {}
    for timeframe in timeframes or SNAPSHOT_TIMEFRAMES.get(base.timeframe, (base.timeframe,)):
        series = history.series(timeframe)
        count = series.closed_count(at)
        keep = base_bars if timeframe == base.timeframe else higher_bars
        candles[timeframe] = series.candles[max(0, count - keep) : count]
        indicators[timeframe] = series.indicators_at(count - 1)
    return SymbolSnapshot(
        symbol=history.symbol,
        asset_class=history.asset_class,
        price=base.candles[last].close,
        price_time=base.close_time(last),
        change_24h_pct=change_24h_pct(base, last),
        candles=candles,
        indicators=indicators,
    )
