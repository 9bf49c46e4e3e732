"""Dataset coverage, tickers, candles and URL symbols."""

from datetime import timedelta
from decimal import Decimal

import pytest

from marketdata.selectors import candle_list, dataset_list, symbol_from_path, ticker_get, ticker_list
from marketdata.services import candles_import
from marketdata.tests.helpers import T0, csv_text, hourly

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    bars = hourly(30)
    del bars[10:13]  # three missing hours
    path = tmp_path / "btc.csv"
    path.write_text(csv_text(bars))
    candles_import(
        path=path, dataset_name="test-1h", symbol="BTC/USDT", timeframe="1h", provenance="unit test"
    )
    path.write_text(csv_text(hourly(5, first_close=1000)))
    candles_import(path=path, dataset_name="test-1h", symbol="ETH/USDT", timeframe="1h")
    return "test-1h"


def test_dataset_coverage_lists_symbols_times_rows_and_missing_bars(dataset):
    (coverage,) = dataset_list()
    assert coverage.name == "test-1h" and coverage.provenance == "unit test"
    assert coverage.symbols == ["BTC/USDT", "ETH/USDT"]
    assert coverage.rows == 27 + 5
    btc = next(s for s in coverage.series if s.symbol == "BTC/USDT")
    assert (btc.first, btc.last, btc.rows, btc.missing_bars) == (T0, T0 + timedelta(hours=29), 27, 3)


def test_a_replay_ticker_without_a_time_is_the_datasets_last_close(dataset):
    ticker = ticker_get(symbol="ETH/USDT", dataset=dataset)
    assert (ticker.price, ticker.price_time, ticker.source, ticker.dataset) == (
        Decimal(1004), T0 + timedelta(hours=5), "replay", "test-1h",
    )  # fmt: skip
    assert [t.symbol for t in ticker_list(symbols=["BTC/USDT", "ETH/USDT"], dataset=dataset)] == [
        "BTC/USDT",
        "ETH/USDT",
    ]


def test_candles_are_limited_and_higher_timeframes_are_built_from_stored_ones(dataset):
    assert [c.close for c in candle_list(symbol="BTC/USDT", limit=2, dataset=dataset)] == [
        Decimal(128),
        Decimal(129),
    ]
    four_hour = candle_list(symbol="BTC/USDT", timeframe="4h", limit=10, dataset=dataset)
    # 08:00-12:00 misses 10:00 and 11:00, 12:00-16:00 misses 12:00: neither is complete;
    # the last bars (04:00, 05:00 on day two) do not fill their bucket either.
    assert [c.open_time - T0 for c in four_hour] == [timedelta(hours=h) for h in (0, 4, 16, 20, 24)]


@pytest.mark.parametrize(
    ("text", "symbol"),
    [("BTC-USDT", "BTC/USDT"), ("btc_usdt", "BTC/USDT"), ("BTCUSDT", "BTC/USDT"), ("EURUSD", "EUR/USD"),
     ("US500", "US500"), ("XYZUSDT", "XYZ/USDT")],
)  # fmt: skip
def test_symbols_in_url_paths_are_read_without_a_slash(text, symbol):
    assert symbol_from_path(text) == symbol
