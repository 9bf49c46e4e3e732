"""Replay: stored candles of a dataset, read into memory once per process.

A dataset's candles for one symbol and timeframe are loaded in one query into a
`SymbolHistory` (Decimal candles plus numpy arrays and indicators) and kept in a
per-process cache keyed by (dataset, symbol, timeframe), checked against the dataset's
revision, so a year of hourly rounds costs one small query per snapshot, not dozens.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from marketdata.models import Candle as CandleRow
from marketdata.models import Dataset
from marketdata.series import TIMEFRAME_SECONDS, CandleSeries, SymbolHistory, clean_decimal, timeframe_seconds
from marketdata.snapshot import Candle
from marketdata.sources.base import NoPriceError, register
from marketdata.sources.history import HistorySource, clear_instrument_cache, default_max_age

DEFAULT_DATASET = "binance-1h"

_cache: dict[tuple[str, str, str], tuple[tuple, SymbolHistory]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget cached candle series and instruments (tests call this between cases)."""
    with _cache_lock:
        _cache.clear()
    clear_instrument_cache()


def _rows(dataset: Dataset, symbol: str, timeframe: str) -> list[Candle]:
    rows = (
        CandleRow.objects.filter(dataset=dataset, symbol=symbol, timeframe=timeframe)
        .order_by("open_time")
        .values_list("open_time", "open", "high", "low", "close", "volume")
    )
    return [
        Candle(
            open_time,
            clean_decimal(o),
            clean_decimal(h),
            clean_decimal(lo),
            clean_decimal(c),
            clean_decimal(v),
        )
        for open_time, o, h, lo, c, v in rows.iterator(chunk_size=5000)
    ]


def _stored_timeframes(dataset: Dataset, symbol: str) -> list[str]:
    return list(
        CandleRow.objects.filter(dataset=dataset, symbol=symbol)
        .order_by()
        .values_list("timeframe", flat=True)
        .distinct()
    )


def load_history(dataset: Dataset, symbol: str, timeframe: str, asset_class: str) -> SymbolHistory:
    """The symbol's series in `timeframe`: stored as such, or aggregated from the largest
    stored timeframe that divides it (a 4h replay on hourly data)."""
    candles = _rows(dataset, symbol, timeframe)
    if candles:
        series = CandleSeries(timeframe, candles)
    else:
        wanted = timeframe_seconds(timeframe)
        usable = [
            tf
            for tf in _stored_timeframes(dataset, symbol)
            if tf in TIMEFRAME_SECONDS and wanted % TIMEFRAME_SECONDS[tf] == 0
        ]
        if not usable:
            raise NoPriceError(f"dataset {dataset.name!r} has no {timeframe} candles for {symbol}")
        stored = max(usable, key=timeframe_seconds)
        series = CandleSeries(stored, _rows(dataset, symbol, stored)).aggregate(timeframe)
    return SymbolHistory(symbol=symbol, asset_class=asset_class, base=series)


@register("replay")
class ReplaySource(HistorySource):
    name = "replay"

    def __init__(
        self,
        *,
        dataset: str = DEFAULT_DATASET,
        timeframe: str = "1h",
        max_age: timedelta | None = None,
        base_bars: int | None = None,
        higher_bars: int | None = None,
    ):
        super().__init__()
        timeframe_seconds(timeframe)  # validates
        self.dataset_name = dataset
        self.timeframe = timeframe
        self.max_age = max_age if max_age is not None else default_max_age(timeframe)
        if base_bars is not None:
            self.base_bars = base_bars
        if higher_bars is not None:
            self.higher_bars = higher_bars
        self._dataset: Dataset | None = None

    def dataset_label(self) -> str:
        return self.dataset_name

    def rebuild_key(self) -> dict | None:
        """What rebuilds this source's snapshot at any time (get_source options and name), or
        None when it was made with windows or an age limit of its own (the key would not
        bring them back)."""
        defaults = ReplaySource(dataset=self.dataset_name, timeframe=self.timeframe)
        if (self.max_age, self.base_bars, self.higher_bars) != (defaults.max_age, defaults.base_bars,
                                                                 defaults.higher_bars):
            return None
        return {"source": self.name, "dataset": self.dataset_name, "timeframe": self.timeframe}

    def _current_dataset(self) -> Dataset:
        if self._dataset is None:
            try:
                self._dataset = Dataset.objects.get(name=self.dataset_name)
            except Dataset.DoesNotExist:
                raise NoPriceError(
                    f"dataset {self.dataset_name!r} is not loaded (run `manage.py load_datasets`)"
                ) from None
        return self._dataset

    def refresh(self) -> None:
        """Re-read the dataset's revision (a source kept across rounds calls this per round)."""
        self._dataset = None

    def history(self, symbol: str) -> SymbolHistory:
        dataset = self._current_dataset()
        key = (dataset.name, symbol, self.timeframe)
        # A dataset deleted and re-created restarts its revision: pk and time tell them apart.
        version = (dataset.pk, dataset.revision, dataset.updated_at)
        cached = _cache.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        with _cache_lock:
            cached = _cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            history = load_history(dataset, symbol, self.timeframe, self.instruments.asset_class(symbol))
            _cache[key] = (version, history)
            return history
