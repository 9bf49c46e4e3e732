"""Live market data through the API: only catalogue symbols reach the exchange (issue 13)."""

import pytest
import requests
from rest_framework.test import APIClient

from marketdata.sources import live
from marketdata.tests.test_live import RecordedBinance, exchange_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def exchange_must_not_be_called(monkeypatch):
    """Any exchange client or HTTP request fails the test loudly."""

    def no_exchange():
        raise AssertionError("the exchange was called")

    def no_http(*args, **kwargs):
        raise AssertionError("an HTTP request was sent")

    monkeypatch.setattr(live, "binance_exchange", no_exchange)
    monkeypatch.setattr(requests.Session, "request", no_http)


@pytest.mark.parametrize(
    ("url", "params"),
    [
        ("/api/v1/market-data/0/ticker", {"source": "live"}),
        ("/api/v1/market-data/0/candles", {"source": "live"}),
        ("/api/v1/market-data/NOPE-USDT/ticker", {"source": "live"}),
        ("/api/v1/market-data/tickers", {"source": "live", "symbols": "BTC/USDT,0"}),
    ],
)
def test_an_unknown_live_symbol_is_a_404_without_calling_the_exchange(exchange_must_not_be_called, url, params):
    response = APIClient().get(url, params)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "unknown_symbol"
    assert "instrument catalogue" in body["detail"]
    assert "BTC/USDT" not in body["detail"]  # only the unknown one is named


def test_a_catalogue_symbol_still_gets_its_live_ticker(monkeypatch):
    session = RecordedBinance()
    monkeypatch.setattr(live, "binance_exchange", lambda: exchange_with(session))
    response = APIClient().get("/api/v1/market-data/BTC-USDT/ticker", {"source": "live"})
    assert response.status_code == 200
    body = response.json()
    assert body["symbol"] == "BTC/USDT" and body["source"] == "live"
    assert body["price_time"].endswith("Z")
    assert session.count("24hr", "BTCUSDT") == 1


def test_replay_keeps_answering_unknown_symbols_as_no_price(exchange_must_not_be_called):
    response = APIClient().get("/api/v1/market-data/0/ticker")
    assert response.status_code == 404
    assert response.json()["code"] == "no_price"
