"""Reads of the marketdata app: instruments, dataset coverage, tickers, candles, snapshots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, Max, Min
from django.utils import timezone

from marketdata.models import Candle as CandleRow
from marketdata.models import Dataset, Instrument, MarketSnapshotRecord
from marketdata.series import from_epoch_seconds, timeframe_seconds
from marketdata.snapshot import Candle, MarketSnapshot
from marketdata.sources import NoPriceError, PriceSource, get_source
from marketdata.sources.replay import DEFAULT_DATASET

MAX_CANDLES = 1000


def symbol_from_path(text: str) -> str:
    """URL forms of a symbol: "BTC-USDT", "BTC_USDT", "btc-usdt" or "BTCUSDT" -> "BTC/USDT".

    A "/" cannot sit in a path segment. Forms without a separator are matched against the
    instrument catalogue ("BTCUSDT" -> "BTC/USDT", "US500" -> "US500").
    """
    cleaned = text.strip().upper().replace("-", "/").replace("_", "/")
    if "/" in cleaned:
        return cleaned
    for symbol in Instrument.objects.values_list("symbol", flat=True):
        if symbol.replace("/", "") == cleaned:
            return symbol
    for quote in ("USDT", "USDC", "FDUSD", "BUSD"):
        if cleaned.endswith(quote) and len(cleaned) > len(quote):
            return f"{cleaned[: -len(quote)]}/{quote}"
    return cleaned


def instrument_list(*, asset_classes: list[str] | None = None, active_only: bool = True) -> list[Instrument]:
    queryset = Instrument.objects.all()
    if active_only:
        queryset = queryset.filter(is_active=True)
    if asset_classes:
        queryset = queryset.filter(asset_class__in=asset_classes)
    return list(queryset)


def instrument_map(*, symbols: list[str]) -> dict[str, Instrument]:
    return {i.symbol: i for i in Instrument.objects.filter(symbol__in=list(symbols))}


def instrument_get(*, symbol: str) -> Instrument | None:
    return Instrument.objects.filter(symbol=symbol).first()


@dataclass(frozen=True)
class SeriesCoverage:
    symbol: str
    timeframe: str
    first: datetime
    last: datetime
    rows: int
    missing_bars: int  # bars between first and last that are not stored


@dataclass(frozen=True)
class DatasetCoverage:
    name: str
    description: str
    provenance: str
    series: list[SeriesCoverage]

    @property
    def symbols(self) -> list[str]:
        return sorted({s.symbol for s in self.series})

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.series)

    @property
    def first(self) -> datetime | None:
        return min((s.first for s in self.series), default=None)

    @property
    def last(self) -> datetime | None:
        return max((s.last for s in self.series), default=None)


def dataset_list() -> list[DatasetCoverage]:
    """Every dataset with its coverage per symbol and timeframe, in two queries."""
    datasets = list(Dataset.objects.all())
    stats = (
        CandleRow.objects.values("dataset_id", "symbol", "timeframe")
        .annotate(first=Min("open_time"), last=Max("open_time"), rows=Count("id"))
        .order_by("dataset_id", "symbol", "timeframe")
    )
    by_dataset: dict[int, list[SeriesCoverage]] = {}
    for row in stats:
        seconds = timeframe_seconds(row["timeframe"])
        expected = int((row["last"] - row["first"]).total_seconds() // seconds) + 1
        by_dataset.setdefault(row["dataset_id"], []).append(
            SeriesCoverage(
                symbol=row["symbol"],
                timeframe=row["timeframe"],
                first=row["first"],
                last=row["last"],
                rows=row["rows"],
                missing_bars=max(0, expected - row["rows"]),
            )
        )
    return [
        DatasetCoverage(
            name=d.name, description=d.description, provenance=d.provenance, series=by_dataset.get(d.pk, [])
        )
        for d in datasets
    ]


@dataclass(frozen=True)
class Ticker:
    symbol: str
    price: Decimal
    change_24h_pct: Decimal | None
    price_time: datetime
    source: str
    dataset: str


def _source(source: str, dataset: str | None, timeframe: str) -> PriceSource:
    options = {"timeframe": timeframe}
    if source == "replay":
        options["dataset"] = dataset or DEFAULT_DATASET
    return get_source(source, **options)


def _replay_latest(price_source, symbol: str) -> datetime:
    base = price_source.history(symbol).base
    return from_epoch_seconds(base.close_times[-1])


def _history_latest(price_source, symbol: str, source: str) -> datetime:
    """A replay dataset has no "now": its last close. A synthetic series: now, or the end
    of its generated horizon if now is past it."""
    latest = _replay_latest(price_source, symbol)
    return latest if source == "replay" else min(timezone.now(), latest)


def ticker_get(
    *, symbol: str, source: str = "replay", dataset: str | None = None, timeframe: str = "1h", at=None
) -> Ticker:
    """Price, 24 h change and price time of one symbol. For replay without `at`, the
    dataset's latest closed bar (a replay dataset has no "now")."""
    return ticker_list(symbols=[symbol], source=source, dataset=dataset, timeframe=timeframe, at=at)[0]


def ticker_list(
    *, symbols: list[str], source: str = "replay", dataset: str | None = None, timeframe: str = "1h", at=None
) -> list[Ticker]:
    price_source = _source(source, dataset, timeframe)
    tickers = []
    for symbol in symbols:
        if source == "live":
            data = price_source.ticker(symbol)
            tickers.append(
                Ticker(symbol, data["price"], data["change_24h_pct"], data["price_time"], "live", "")
            )
            continue
        moment = at or _history_latest(price_source, symbol, source)
        snap = price_source.snapshot([symbol], moment).symbols[symbol]
        tickers.append(
            Ticker(
                symbol, snap.price, snap.change_24h_pct, snap.price_time, source, price_source.dataset_label()
            )
        )
    return tickers


def candle_list(
    *,
    symbol: str,
    timeframe: str = "1h",
    limit: int = 100,
    until: datetime | None = None,
    source: str = "replay",
    dataset: str | None = None,
    base_timeframe: str | None = None,
) -> list[Candle]:
    """Up to `limit` closed candles of `symbol` in `timeframe` (aggregated from the
    dataset's base timeframe when higher), oldest first."""
    limit = max(1, min(int(limit), MAX_CANDLES))
    timeframe_seconds(timeframe)
    if base_timeframe is None:
        base_timeframe = (
            timeframe if source != "replay" else _stored_base_timeframe(dataset, symbol, timeframe)
        )
    price_source = _source(source, dataset, base_timeframe)
    if until is None:
        until = timezone.now() if source == "live" else _history_latest(price_source, symbol, source)
    return price_source.candles(symbol, timeframe, until, limit)


def _stored_base_timeframe(dataset: str | None, symbol: str, timeframe: str) -> str:
    """The stored timeframe to build `timeframe` from: itself if stored, else the largest
    stored one that divides it."""
    stored = set(
        CandleRow.objects.filter(dataset__name=dataset or DEFAULT_DATASET, symbol=symbol)
        .order_by()
        .values_list("timeframe", flat=True)
        .distinct()
    )
    if timeframe in stored:
        return timeframe
    wanted = timeframe_seconds(timeframe)
    usable = [tf for tf in stored if wanted % timeframe_seconds(tf) == 0]
    if not usable:
        raise NoPriceError(f"no stored candles of {symbol} can make {timeframe} bars")
    return max(usable, key=timeframe_seconds)


def snapshot_get(*, record_id: int) -> MarketSnapshot:
    record = MarketSnapshotRecord.objects.get(pk=record_id)
    return MarketSnapshot.from_dict(record.payload)
