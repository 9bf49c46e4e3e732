"""Synthetic: seeded geometric Brownian motion with jumps and correlated assets.

For stress tests and for asset classes the shipped data lacks. Same seed, same series:
each symbol's path depends only on (seed, symbol, its asset class, timeframe, start),
never on which other symbols are asked for, nor in which order.

Model, per bar of length dt (in years), with 4 sub-steps for the high and low:
    log return = (mu - sigma^2 / 2) dt + sigma sqrt(dt) (sqrt(rho) Z_class + sqrt(1 - rho) Z_own) + J
Z_class is shared by every symbol of the same asset class (so two of them correlate at
rho), Z_own is the symbol's own; J is a jump, drawn with probability lambda dt, of
normal log size. Prices are rounded to the instrument's price precision.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

from marketdata.series import CandleSeries, SymbolHistory, from_epoch_seconds, timeframe_seconds
from marketdata.snapshot import Candle
from marketdata.sources.base import register
from marketdata.sources.history import HistorySource, default_max_age

SECONDS_PER_YEAR = 365 * 86400
SUBSTEPS = 4
DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
BLOCK_BARS = 4096
MAX_HORIZON_BARS = 200_000

# asset class -> annual drift, annual volatility, in-class correlation, jumps a year, jump mean, jump sd
CLASS_PARAMETERS = {
    "crypto": (0.05, 0.65, 0.7, 12.0, -0.01, 0.05),
    "forex": (0.0, 0.08, 0.4, 2.0, 0.0, 0.005),
    "indices": (0.06, 0.18, 0.8, 3.0, -0.01, 0.02),
    "commodities": (0.03, 0.16, 0.3, 3.0, 0.0, 0.02),
    "stocks": (0.08, 0.30, 0.5, 4.0, -0.005, 0.04),
    "unknown": (0.0, 0.30, 0.0, 4.0, 0.0, 0.03),
}

START_PRICES = {
    "BTC/USDT": "60000",
    "ETH/USDT": "2500",
    "SOL/USDT": "150",
    "BNB/USDT": "550",
    "XRP/USDT": "0.55",
    "DOGE/USDT": "0.11",
    "LINK/USDT": "15",
    "TRX/USDT": "0.16",
    "PEPE/USDT": "0.00001",
    "EUR/USD": "1.08",
    "GBP/USD": "1.27",
    "XAU/USD": "2400",
    "US500": "5500",
    "DE40": "18500",
    "AAPL": "220",
}

_cache: dict[tuple, SymbolHistory] = {}
_cache_lock = threading.Lock()


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _block_normals(seed: int, stream: str, block: int, count: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _stable_int(stream), block])))
    return rng.standard_normal(count)


def _block_uniform_and_normals(seed: int, stream: str, block: int, count: int):
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, _stable_int(stream), block])))
    return rng.random(count), rng.standard_normal(count), rng.standard_normal(count)


def generate_path(
    *, seed: int, symbol: str, asset_class: str, timeframe: str, bars: int, start_price: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Open, high, low, close, volume arrays (floats) for `bars` bars."""
    mu, sigma, rho, jumps_per_year, jump_mean, jump_sd = CLASS_PARAMETERS.get(
        asset_class, CLASS_PARAMETERS["unknown"]
    )
    dt = timeframe_seconds(timeframe) / SECONDS_PER_YEAR / SUBSTEPS
    blocks = -(-bars // BLOCK_BARS)
    steps_per_block = BLOCK_BARS * SUBSTEPS
    common = np.concatenate(
        [_block_normals(seed, f"class:{asset_class}:{timeframe}", b, steps_per_block) for b in range(blocks)]
    )
    own_parts = [
        _block_uniform_and_normals(seed, f"symbol:{symbol}:{timeframe}", b, steps_per_block)
        for b in range(blocks)
    ]
    uniform = np.concatenate([p[0] for p in own_parts])
    own = np.concatenate([p[1] for p in own_parts])
    jump_draws = np.concatenate([p[2] for p in own_parts])
    shocks = np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own
    jumps = np.where(uniform < jumps_per_year * dt, jump_mean + jump_sd * jump_draws, 0.0)
    log_steps = (mu - sigma**2 / 2) * dt + sigma * np.sqrt(dt) * shocks + jumps
    log_steps = log_steps[: bars * SUBSTEPS]
    path = start_price * np.exp(np.cumsum(log_steps))
    points = path.reshape(bars, SUBSTEPS)
    closes = points[:, -1]
    opens = np.concatenate(([start_price], closes[:-1]))
    highs = np.maximum(points.max(axis=1), opens)
    lows = np.minimum(points.min(axis=1), opens)
    volume_rng = np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, _stable_int(f"volume:{symbol}:{timeframe}")]))
    )
    volumes = (
        1000.0
        * np.exp(0.5 * volume_rng.standard_normal(bars))
        * (1 + 20 * np.abs(log_steps.reshape(bars, SUBSTEPS)).sum(axis=1))
    )
    return opens, highs, lows, closes, volumes


@register("synthetic")
class SyntheticSource(HistorySource):
    name = "synthetic"

    def __init__(
        self,
        *,
        seed: int = 0,
        timeframe: str = "1h",
        start: datetime = DEFAULT_START,
        max_age: timedelta | None = None,
        horizon_bars: int | None = None,
        base_bars: int | None = None,
        higher_bars: int | None = None,
        dataset: str | None = None,  # accepted for a uniform get_source call
    ):
        super().__init__()
        seconds = timeframe_seconds(timeframe)
        if int(start.timestamp()) % seconds:
            raise ValueError(f"synthetic start must be aligned to {timeframe}")
        self.seed = int(seed)
        self.timeframe = timeframe
        self.start = start.astimezone(UTC)
        # Two years of bars by default (capped), generated once per process and cached.
        self.horizon_bars = horizon_bars or min(2 * SECONDS_PER_YEAR // seconds, MAX_HORIZON_BARS)
        self.max_age = max_age if max_age is not None else default_max_age(timeframe)
        if base_bars is not None:
            self.base_bars = base_bars
        if higher_bars is not None:
            self.higher_bars = higher_bars

    def dataset_label(self) -> str:
        return f"seed-{self.seed}"

    def _price_places(self, symbol: str) -> int:
        instrument = self.instruments.instrument(symbol)
        return instrument.price_precision if instrument else 8

    def history(self, symbol: str) -> SymbolHistory:
        key = (self.seed, symbol, self.timeframe, self.start, self.horizon_bars)
        cached = _cache.get(key)
        if cached is not None:
            return cached
        asset_class = self.instruments.asset_class(symbol)
        places = Decimal(1).scaleb(-self._price_places(symbol))
        opens, highs, lows, closes, volumes = generate_path(
            seed=self.seed,
            symbol=symbol,
            asset_class=asset_class,
            timeframe=self.timeframe,
            bars=self.horizon_bars,
            start_price=float(START_PRICES.get(symbol, "100")),
        )
        seconds = timeframe_seconds(self.timeframe)
        first_open = int(self.start.timestamp())

        def price(value: float) -> Decimal:
            return Decimal(repr(float(value))).quantize(places, rounding=ROUND_HALF_EVEN)

        candles = [
            Candle(
                open_time=from_epoch_seconds(first_open + i * seconds),
                open=price(opens[i]),
                high=price(highs[i]),
                low=price(lows[i]),
                close=price(closes[i]),
                volume=Decimal(repr(float(volumes[i]))).quantize(Decimal("0.01")),
            )
            for i in range(self.horizon_bars)
        ]
        history = SymbolHistory(
            symbol=symbol, asset_class=asset_class, base=CandleSeries(self.timeframe, candles)
        )
        with _cache_lock:
            _cache[key] = history
        return history
