"""Synthetic GBM with jumps: reproducible, correlated within a class, valid OHLC bars."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from marketdata.sources import get_source
from marketdata.sources.synthetic import SyntheticSource, generate_path

pytestmark = pytest.mark.django_db

START = datetime(2024, 1, 1, tzinfo=UTC)


def closes(source, symbol, hours):
    return [c.close for c in source.candles(symbol, "1h", START + timedelta(hours=hours), hours)]


def test_the_same_seed_gives_the_same_series_and_another_seed_another():
    first = closes(get_source("synthetic", seed=7, horizon_bars=500), "EUR/USD", 400)
    again = closes(SyntheticSource(seed=7, horizon_bars=500), "EUR/USD", 400)
    other = closes(SyntheticSource(seed=8, horizon_bars=500), "EUR/USD", 400)
    assert first == again
    assert first != other
    assert len(first) == 400


def test_a_symbol_series_does_not_depend_on_which_others_are_asked_for():
    at = START + timedelta(hours=300)
    alone = SyntheticSource(seed=3, horizon_bars=500).snapshot(["AAPL"], at).prices["AAPL"]
    together = SyntheticSource(seed=3, horizon_bars=500).snapshot(["US500", "AAPL"], at).prices["AAPL"]
    assert alone == together


def test_prices_follow_the_instrument_precision_and_bars_are_valid():
    source = SyntheticSource(seed=1, horizon_bars=2000)
    for symbol, places in (("EUR/USD", 5), ("AAPL", 2), ("XAU/USD", 2)):
        bars = source.candles(symbol, "1h", START + timedelta(hours=2000), 2000)
        assert all(-c.close.as_tuple().exponent == places for c in bars)
        assert all(
            c.high >= max(c.open, c.close) and c.low <= min(c.open, c.close) and c.low > 0 for c in bars
        )
        # each bar opens at the previous close
        assert all(b.open == a.close for a, b in itertools.pairwise(bars))


def test_assets_of_one_class_move_together_and_other_classes_do_not():
    bars = 20_000

    def log_returns(symbol, asset_class):
        _, _, _, close, _ = generate_path(
            seed=11, symbol=symbol, asset_class=asset_class, timeframe="1h", bars=bars, start_price=100.0
        )
        return np.diff(np.log(close))

    btc, eth = log_returns("BTC/USDT", "crypto"), log_returns("ETH/USDT", "crypto")
    eurusd = log_returns("EUR/USD", "forex")
    # crypto in-class correlation parameter is 0.7 (jumps are independent, so a bit lower)
    assert 0.55 < np.corrcoef(btc, eth)[0, 1] < 0.75
    assert abs(np.corrcoef(btc, eurusd)[0, 1]) < 0.05


def test_hourly_volatility_matches_the_asset_class():
    _, _, _, close, _ = generate_path(
        seed=5, symbol="EUR/USD", asset_class="forex", timeframe="1h", bars=20_000, start_price=1.08
    )
    annualised = np.std(np.diff(np.log(close))) * np.sqrt(365 * 24)
    # forex sigma 8% a year plus small jumps (2 a year of sd 0.5%)
    assert 0.07 < annualised < 0.10


def test_snapshots_carry_the_asset_class_and_respect_market_hours():
    source = SyntheticSource(seed=2, horizon_bars=2000)
    saturday = datetime(2024, 3, 2, 15, tzinfo=UTC)
    snapshot = source.snapshot(["US500", "BTC/USDT"], saturday)
    assert snapshot.symbols["US500"].asset_class == "indices"
    assert isinstance(snapshot.prices["US500"], Decimal)
    assert not source.is_tradable("US500", saturday)
    assert source.is_tradable("BTC/USDT", saturday)
    assert source.is_tradable("US500", datetime(2024, 3, 4, 15, tzinfo=UTC))  # Monday 10:00 New York
