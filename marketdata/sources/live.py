"""Live: Binance spot through ccxt's public endpoints, cached, refused when stale.

Two public calls per symbol: the 24 h ticker (last price, its time, 24 h change) and
the klines (OHLCV) of the base timeframe. Both are kept in the Django cache (Redis in
production) for settings.LIVE_PRICE_CACHE_SECONDS, so one fetch serves every agent of a
round and every API reader in that window. ccxt's `enableRateLimit` spaces the calls.
A last price older than settings.LIVE_PRICE_MAX_AGE_SECONDS raises StalePriceError;
an exchange error or timeout raises ExchangeUnavailableError: the round records the
message and no order fills on a price that is not there.
"""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.cache import cache as default_cache
from django.utils import timezone

from marketdata.hours import is_market_open
from marketdata.series import (
    CandleSeries,
    NoPriceYet,
    SymbolHistory,
    clean_decimal,
    symbol_snapshot,
    timeframe_seconds,
)
from marketdata.snapshot import Candle, MarketSnapshot
from marketdata.sources.base import (
    ExchangeUnavailableError,
    MarketDataError,
    NoPriceError,
    StalePriceError,
    register,
)
from marketdata.sources.history import InstrumentLookup

CACHE_PREFIX = "marketdata:live"
# Enough 1h bars for 4h indicators over ~250 bars; Binance allows up to 1000 per call.
DEFAULT_KLINE_LIMIT = 1000

_exchange = None
_exchange_lock = threading.Lock()


def binance_exchange():
    """One ccxt client per process, so its rate limiter sees every call."""
    global _exchange
    import ccxt  # imported on first use: ccxt takes over a second to import

    with _exchange_lock:
        if _exchange is None:
            config = {"enableRateLimit": True, "timeout": 10_000, "options": {"defaultType": "spot"}}
            if settings.BINANCE_API_KEY:
                config["apiKey"] = settings.BINANCE_API_KEY
                config["secret"] = settings.BINANCE_API_SECRET
            _exchange = ccxt.binance(config)
        return _exchange


def market_id(symbol: str) -> str:
    """ "BTC/USDT" -> "BTCUSDT" (Binance spot ids)."""
    return symbol.replace("/", "").replace("-", "").upper()


def _ms_to_datetime(ms) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


@register("live")
class LiveSource:
    name = "live"

    def __init__(
        self,
        *,
        exchange=None,
        timeframe: str = "1h",
        cache=None,
        cache_seconds: int | None = None,
        max_age_seconds: int | None = None,
        kline_limit: int = DEFAULT_KLINE_LIMIT,
        base_bars: int | None = None,
        higher_bars: int | None = None,
        dataset: str | None = None,  # accepted for a uniform get_source call; live has none
    ):
        timeframe_seconds(timeframe)
        self._exchange = exchange
        self.timeframe = timeframe
        self.cache = cache or default_cache
        self.cache_seconds = settings.LIVE_PRICE_CACHE_SECONDS if cache_seconds is None else cache_seconds
        self.max_age = timedelta(
            seconds=settings.LIVE_PRICE_MAX_AGE_SECONDS if max_age_seconds is None else max_age_seconds
        )
        self.kline_limit = kline_limit
        self.snapshot_options = {
            k: v for k, v in {"base_bars": base_bars, "higher_bars": higher_bars}.items() if v is not None
        }
        self.instruments = InstrumentLookup()

    def dataset_label(self) -> str:
        return ""

    @property
    def exchange(self):
        return self._exchange or binance_exchange()

    def _call(self, symbol: str, what: str, method, params: dict):
        import ccxt

        try:
            return method(params)
        except ccxt.RequestTimeout as exc:
            raise ExchangeUnavailableError(f"Binance {what} for {symbol} timed out: {exc}") from exc
        except ccxt.BaseError as exc:
            raise ExchangeUnavailableError(
                f"Binance {what} for {symbol} failed: {type(exc).__name__}: {exc}"
            ) from exc

    def ticker(self, symbol: str) -> dict:
        """{"price": Decimal, "price_time": datetime, "change_24h_pct": Decimal|None}, cached."""
        key = f"{CACHE_PREFIX}:ticker:{market_id(symbol)}"
        data = self.cache.get(key)
        if data is None:
            raw = self._call(
                symbol, "ticker", self.exchange.public_get_ticker_24hr, {"symbol": market_id(symbol)}
            )
            try:
                data = {
                    "price": str(clean_decimal(Decimal(raw["lastPrice"]))),
                    "price_time": _ms_to_datetime(raw["closeTime"]).isoformat(),
                    "change_24h_pct": str(clean_decimal(Decimal(raw["priceChangePercent"]))),
                }
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                raise ExchangeUnavailableError(f"Binance ticker for {symbol} was malformed: {exc!r}") from exc
            self.cache.set(key, data, self.cache_seconds)
        return {
            "price": Decimal(data["price"]),
            "price_time": datetime.fromisoformat(data["price_time"]),
            "change_24h_pct": Decimal(data["change_24h_pct"]),
        }

    def _klines(self, symbol: str, timeframe: str) -> list[list]:
        key = f"{CACHE_PREFIX}:klines:{market_id(symbol)}:{timeframe}:{self.kline_limit}"
        rows = self.cache.get(key)
        if rows is None:
            raw = self._call(
                symbol,
                "klines",
                self.exchange.public_get_klines,
                {"symbol": market_id(symbol), "interval": timeframe, "limit": self.kline_limit},
            )
            if not isinstance(raw, list):
                raise ExchangeUnavailableError(f"Binance klines for {symbol} were malformed")
            # Kline: [open time ms, open, high, low, close, volume, close time ms, ...]
            rows = [[int(k[0]), k[1], k[2], k[3], k[4], k[5]] for k in raw]
            self.cache.set(key, rows, self.cache_seconds)
        return rows

    def _history(self, symbol: str, at: datetime) -> SymbolHistory:
        seconds = timeframe_seconds(self.timeframe)
        limit_ms = int(at.timestamp() * 1000)
        candles = []
        for open_ms, o, h, lo, c, v in self._klines(symbol, self.timeframe):
            # Binance's last kline is still forming: keep only bars closed by `at`.
            if open_ms + seconds * 1000 > limit_ms:
                continue
            candles.append(
                Candle(
                    _ms_to_datetime(open_ms),
                    *(clean_decimal(Decimal(value)) for value in (o, h, lo, c, v)),
                )
            )
        return SymbolHistory(
            symbol=symbol,
            asset_class=self.instruments.asset_class(symbol),
            base=CandleSeries(self.timeframe, candles),
        )

    def _check_fresh(self, symbol: str, price_time: datetime, at: datetime) -> None:
        age = at - price_time
        if age > self.max_age:
            raise StalePriceError(symbol, price_time, age.total_seconds(), self.max_age.total_seconds())

    def snapshot(self, symbols: list[str], at: datetime | None = None) -> MarketSnapshot:
        at = at or timezone.now()
        self.instruments.preload(symbols)
        snapshots = {}
        for symbol in symbols:
            ticker = self.ticker(symbol)
            self._check_fresh(symbol, ticker["price_time"], at)
            try:
                snap = symbol_snapshot(self._history(symbol, at), at, **self.snapshot_options)
            except NoPriceYet as exc:
                raise NoPriceError(str(exc)) from exc
            # The mid is the exchange's last price, not the last closed bar's close.
            snapshots[symbol] = dataclasses.replace(
                snap,
                price=ticker["price"],
                price_time=ticker["price_time"],
                change_24h_pct=ticker["change_24h_pct"],
            )
        return MarketSnapshot(at=at, source=self.name, symbols=snapshots)

    def candles(self, symbol: str, timeframe: str, until: datetime | None, limit: int) -> list[Candle]:
        until = until or timezone.now()
        series = self._history(symbol, until).series(timeframe)
        count = series.closed_count(until)
        return series.candles[max(0, count - limit) : count]

    def is_tradable(self, symbol: str, at: datetime | None = None) -> bool:
        at = at or timezone.now()
        if not is_market_open(self.instruments.hours(symbol), at):
            return False
        try:
            self._check_fresh(symbol, self.ticker(symbol)["price_time"], at)
        except MarketDataError:
            return False
        return True
