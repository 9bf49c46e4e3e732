"""Masked replay: the same market, unrecognisable to a model that read its history.

A masked competition lives in a masked world (docs/memory.md):
- symbols are renamed ASSET_1, ASSET_2, ... (numbered in an order drawn from the seed, so
  the number says nothing about the instrument);
- time is shifted by a whole number of weeks to a date far in the future, so hours of day,
  weekdays, funding times (00/08/16 UTC) and UTC-aligned bars keep their alignment;
- each symbol's prices are multiplied by one constant that brings its first price to
  between 100 and 200, quantities (volume, quantity steps) by its inverse, so notional,
  PnL, fees and funding in USD are unchanged. The constant is a power of ten times a power
  of two: both it and its inverse are exact decimals, so a masked fill is the real fill
  scaled, to the last digit (a constant that lands exactly on 100 would round).

`Mask` holds the mapping (stored on the competition); `MaskedSource` wraps the replay
source and serves the masked world: the engine, the prompts and the stored snapshots only
ever see masked names, times and prices. Market hours are asked of the real instrument at
the real time. No other app is imported here.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketdata.series import CandleSeries, SymbolHistory, clean_decimal, timeframe_delta
from marketdata.snapshot import Candle
from marketdata.sources.base import NoPriceError, PriceSource
from marketdata.sources.history import HistorySource

MASKED_PREFIX = "ASSET_"
WEEK = timedelta(weeks=1)
# The masked calendar starts somewhere in the 23rd century: no model has read it.
MASKED_EPOCH = datetime(2200, 1, 1, tzinfo=UTC)
MASKED_SPREAD_WEEKS = 52 * 100
# The engine's finest quantity (trading.values.QUANTITY): the step of an instrument the
# catalogue does not know.
FINEST_QUANTITY = Decimal("1e-12")
TWO = Decimal(2)
TEN = Decimal(10)


def exact_scale(first_price: Decimal) -> Decimal:
    """10^n x 2^-m with m in 0..3 such that first_price x scale is in [100, 200)."""
    if first_price <= 0:
        raise ValueError("a masked series needs a positive first price")
    scale = Decimal(1)
    while first_price * scale >= 1000:
        scale /= TEN
    while first_price * scale < 100:
        scale *= TEN
    while first_price * scale >= 200:
        scale /= TWO
    return scale.normalize()


@dataclass(frozen=True)
class Mask:
    """real symbol <-> masked name, the time shift in weeks, the price constant per symbol."""

    names: dict[str, str]  # real -> masked, in the competition's symbol order
    shift_weeks: int
    scales: dict[str, Decimal]  # real -> constant
    reals: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "reals", {masked: real for real, masked in self.names.items()})

    @property
    def shift(self) -> timedelta:
        return WEEK * self.shift_weeks

    def masked_symbol(self, real: str) -> str:
        return self.names[real]

    def real_symbol(self, masked: str) -> str:
        try:
            return self.reals[masked]
        except KeyError:
            raise NoPriceError(f"{masked} is not an instrument of this masked market") from None

    def masked_time(self, real: datetime) -> datetime:
        return real + self.shift

    def real_time(self, masked: datetime) -> datetime:
        return masked - self.shift

    def scale_of(self, masked: str) -> Decimal:
        return self.scales[self.real_symbol(masked)]

    def to_dict(self) -> dict:
        """As stored on the competition (decimals as strings, keyed by the masked name)."""
        return {
            "symbols": {masked: real for real, masked in self.names.items()},
            "shift_weeks": self.shift_weeks,
            "scales": {self.names[real]: str(scale) for real, scale in self.scales.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> Mask:
        names = {real: masked for masked, real in data["symbols"].items()}
        scales = {data["symbols"][masked]: Decimal(scale) for masked, scale in data["scales"].items()}
        return cls(names=names, shift_weeks=int(data["shift_weeks"]), scales=scales)


def _digest(*parts) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big")


def first_price(dataset: str, symbol: str, timeframe: str, start: datetime) -> Decimal:
    """The price a replay shows first: the close of the last bar closed at `start`, else the
    open of the first bar after it (any stored timeframe: the level is what matters)."""
    from marketdata.models import Candle as CandleRow  # the app registry is ready by now

    rows = CandleRow.objects.filter(dataset__name=dataset, symbol=symbol)
    stored = rows.filter(timeframe=timeframe) if rows.filter(timeframe=timeframe).exists() else rows
    before = (
        stored.filter(open_time__lte=start - timeframe_delta(timeframe)).order_by("-open_time").first()
    )
    if before is not None and before.close > 0:
        return before.close
    after = stored.filter(open_time__gte=start - timeframe_delta(timeframe)).order_by("open_time").first()
    if after is None or after.open <= 0:
        raise NoPriceError(f"dataset {dataset!r} has no price for {symbol} to mask it by")
    return after.open


def mask_derive(*, dataset: str, timeframe: str, symbols: list[str], start_time: datetime, seed: int) -> Mask:
    """The competition's mask, a function of (seed, dataset, symbols, start) and the data."""
    key = (seed, dataset, ",".join(symbols))
    numbers = list(range(1, len(symbols) + 1))
    random.Random(_digest("names", *key)).shuffle(numbers)
    names = {symbol: f"{MASKED_PREFIX}{number}" for symbol, number in zip(symbols, numbers, strict=True)}
    target = MASKED_EPOCH + WEEK * (_digest("time", *key) % MASKED_SPREAD_WEEKS)
    shift_weeks = round((target - start_time) / WEEK)
    scales = {symbol: exact_scale(first_price(dataset, symbol, timeframe, start_time)) for symbol in symbols}
    return Mask(names=names, shift_weeks=shift_weeks, scales=scales)


# -- the masked world's instruments and prices -----------------------------------------------


@dataclass(frozen=True)
class MaskedInstrument:
    """A catalogue instrument as the masked world sees it: its name masked, its quantity
    step and minimum scaled by the inverse of the price constant (trading.ledger reads
    `quantity_step` before `quantity_precision`)."""

    symbol: str
    asset_class: str
    quantity_step: Decimal
    min_quantity: Decimal | None
    trading_hours: object
    quantity_precision: int = 12


class MaskedInstruments:
    def __init__(self, inner, mask: Mask):
        self.inner = inner
        self.mask = mask

    def preload(self, symbols):
        self.inner.preload([self.mask.real_symbol(symbol) for symbol in symbols])

    def asset_class(self, symbol: str) -> str:
        return self.inner.asset_class(self.mask.real_symbol(symbol))

    def hours(self, symbol: str):
        return self.inner.hours(self.mask.real_symbol(symbol))

    def instrument(self, symbol: str) -> MaskedInstrument:
        real = self.mask.real_symbol(symbol)
        inverse = 1 / self.mask.scales[real]  # exact: the constant is 10^n x 2^-m
        row = self.inner.instrument(real)
        step = Decimal(1).scaleb(-row.quantity_precision) if row is not None else FINEST_QUANTITY
        minimum = row.min_quantity if row is not None and row.min_quantity else None
        return MaskedInstrument(
            symbol=symbol,
            asset_class=self.inner.asset_class(real),
            quantity_step=clean_decimal(step * inverse),
            min_quantity=None if minimum is None else clean_decimal(minimum * inverse),
            trading_hours=self.inner.hours(real),
        )


def masked_candles(candles: list[Candle], scale: Decimal, shift: timedelta) -> list[Candle]:
    inverse = 1 / scale
    return [
        Candle(
            c.open_time + shift,
            clean_decimal(c.open * scale),
            clean_decimal(c.high * scale),
            clean_decimal(c.low * scale),
            clean_decimal(c.close * scale),
            clean_decimal(c.volume * inverse),
        )
        for c in candles
    ]


# (id of the real history, masked name, scale, shift weeks) -> (real history, masked history):
# the real history object is kept so its id is not reused while the entry lives.
_histories: OrderedDict[tuple, tuple[SymbolHistory, SymbolHistory]] = OrderedDict()
_histories_lock = threading.Lock()
MASKED_HISTORIES = 64


class MaskedSource(HistorySource):
    """The replay source `inner` as the masked world sees it: takes and returns masked
    names and times; every price is the real one times the symbol's constant."""

    def __init__(self, inner: HistorySource, mask: Mask):
        self.inner = inner
        self.mask = mask
        self.name = inner.name
        self.timeframe = inner.timeframe
        self.max_age = inner.max_age
        self.base_bars = inner.base_bars
        self.higher_bars = inner.higher_bars
        self.instruments = MaskedInstruments(inner.instruments, mask)

    def dataset_label(self) -> str:
        return self.inner.dataset_label()

    def refresh(self) -> None:
        refresh = getattr(self.inner, "refresh", None)
        if refresh is not None:
            refresh()

    def history(self, symbol: str) -> SymbolHistory:
        real = self.mask.real_symbol(symbol)
        inner = self.inner.history(real)
        scale = self.mask.scales[real]
        key = (id(inner), symbol, scale, self.mask.shift_weeks)
        with _histories_lock:
            cached = _histories.get(key)
            if cached is not None and cached[0] is inner:
                _histories.move_to_end(key)
                return cached[1]
        base = CandleSeries(inner.base.timeframe, masked_candles(inner.base.candles, scale, self.mask.shift))
        masked = SymbolHistory(symbol=symbol, asset_class=inner.asset_class, base=base)
        with _histories_lock:
            _histories[key] = (inner, masked)
            while len(_histories) > MASKED_HISTORIES:
                _histories.popitem(last=False)
        return masked

    def is_tradable(self, symbol: str, at: datetime) -> bool:
        # the real instrument at the real moment: exchange sessions follow their own DST
        return self.inner.is_tradable(self.mask.real_symbol(symbol), self.mask.real_time(at))


def masked_source(inner: PriceSource, mask_data: dict | None) -> PriceSource:
    """`inner` itself when there is no mask, else the masked world over it."""
    if not mask_data:
        return inner
    return MaskedSource(inner, Mask.from_dict(mask_data))
