"""The market data API: tickers, candles, datasets, instruments."""

from datetime import timedelta

import pytest
from django.urls import include, path
from rest_framework.test import APIClient

from marketdata.services import candles_import
from marketdata.tests.helpers import T0, csv_text, hourly

pytestmark = [pytest.mark.django_db, pytest.mark.urls("marketdata.tests.test_api")]

# Mounted as the lead mounts it.
urlpatterns = [path("api/v1/market-data/", include("marketdata.urls"))]


@pytest.fixture
def client(tmp_path):
    for symbol, first_close in (("BTC/USDT", 100), ("PEPE/USDT", 0)):
        bars = hourly(30, first_close=first_close) if first_close else [
            c.__class__(c.open_time, c.open / 10**7 + 1, c.high / 10**7 + 1, c.low / 10**7 + 1, c.close / 10**7 + 1, c.volume)
            for c in hourly(30, first_close=2)
        ]  # fmt: skip
        file = tmp_path / "bars.csv"
        file.write_text(csv_text(bars))
        candles_import(path=file, dataset_name="binance-1h", symbol=symbol, timeframe="1h")
    return APIClient()


def test_a_ticker_by_dashed_symbol_gives_price_time_change_and_source(client):
    response = client.get("/api/v1/market-data/BTC-USDT/ticker")
    assert response.status_code == 200
    assert response.json() == {
        "symbol": "BTC/USDT",
        "price": "129",
        "change_24h_pct": "22.86",  # 129 / 105 - 1
        "price_time": "2025-01-07T06:00:00Z",
        "source": "replay",
        "dataset": "binance-1h",
    }


def test_tickers_for_several_symbols_keep_decimals_as_strings(client):
    response = client.get("/api/v1/market-data/tickers", {"symbols": "BTC/USDT,PEPEUSDT"})
    assert response.status_code == 200
    assert [(t["symbol"], t["price"]) for t in response.json()] == [
        ("BTC/USDT", "129"),
        ("PEPE/USDT", "1.0000031"),
    ]


def test_candles_with_timeframe_and_limit(client):
    response = client.get("/api/v1/market-data/BTCUSDT/candles", {"timeframe": "4h", "limit": 2})
    assert response.status_code == 200
    body = response.json()
    assert [c["open_time"] for c in body] == ["2025-01-06T20:00:00Z", "2025-01-07T00:00:00Z"]
    # 20:00-24:00: open 119 (bar 20's open), high 124, low 118, close 123, volume 21+22+23+24
    assert body[0] | {"open_time": None} == {
        "open_time": None, "open": "119", "high": "124", "low": "118", "close": "123", "volume": "90",
    }  # fmt: skip


def test_candles_until_a_moment_only_include_bars_closed_by_then(client):
    until = (T0 + timedelta(hours=5, minutes=59)).isoformat()
    body = client.get("/api/v1/market-data/BTC-USDT/candles", {"limit": 100, "until": until}).json()
    assert body[-1]["open_time"] == "2025-01-06T04:00:00Z"
    assert len(body) == 5


def test_bad_requests_are_400_and_unknown_symbols_404(client):
    assert client.get("/api/v1/market-data/BTC-USDT/candles", {"timeframe": "7m"}).status_code == 400
    assert client.get("/api/v1/market-data/BTC-USDT/candles", {"limit": 5000}).status_code == 400
    assert client.get("/api/v1/market-data/tickers").status_code == 400
    missing = client.get("/api/v1/market-data/DOGE-USDT/ticker")
    assert missing.status_code == 404
    assert missing.json()["code"] == "no_price"


def test_the_dataset_list_shows_coverage(client):
    (dataset,) = client.get("/api/v1/market-data/datasets").json()
    assert dataset["name"] == "binance-1h"
    assert dataset["symbols"] == ["BTC/USDT", "PEPE/USDT"]
    assert dataset["rows"] == 60
    assert dataset["first"] == "2025-01-06T00:00:00Z"
    assert dataset["series"][0] | {"symbol": None} == {
        "symbol": None, "timeframe": "1h", "first": "2025-01-06T00:00:00Z",
        "last": "2025-01-07T05:00:00Z", "rows": 30, "missing_bars": 0,
    }  # fmt: skip


def test_the_instrument_list_includes_non_crypto_classes(client):
    symbols = {i["symbol"]: i for i in client.get("/api/v1/market-data/instruments").json()}
    assert symbols["US500"]["session_timezone"] == "America/New_York"
    assert symbols["US500"]["session_open"] == "09:30:00"
    assert symbols["BTC/USDT"]["min_quantity"] == "0.00001"


def test_a_synthetic_ticker_and_candles_are_served_too(client):
    ticker = client.get("/api/v1/market-data/EUR-USD/ticker", {"source": "synthetic"})
    assert ticker.status_code == 200
    assert ticker.json()["source"] == "synthetic"
    assert len(ticker.json()["price"].split(".")[1]) <= 5  # EUR/USD precision
    candles = client.get("/api/v1/market-data/EURUSD/candles", {"source": "synthetic", "limit": 3})
    assert candles.status_code == 200 and len(candles.json()) == 3
