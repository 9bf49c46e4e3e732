"""Live source: ccxt's real Binance client fed recorded responses through a fake session."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import ccxt
import pytest
import requests
from django.core.cache import cache

from marketdata.services import snapshot_take
from marketdata.sources import ExchangeUnavailableError, StalePriceError, get_source
from marketdata.sources.live import LiveSource

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).parent / "fixtures" / "binance"
PRICE_TIME = datetime(2026, 3, 2, 10, 29, 58, 123000, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)


class RecordedBinance(requests.Session):
    """Answers ccxt's HTTP calls from the fixture files and counts them."""

    def __init__(self, *, errors=None, timeouts=()):
        super().__init__()
        self.calls: list[tuple[str, str]] = []
        self.errors = errors or {}
        self.timeouts = set(timeouts)

    def request(self, method, url, **kwargs):
        parsed = urlparse(url)
        params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        endpoint = parsed.path.rsplit("/", 1)[-1]  # "24hr" or "klines"
        symbol = params.get("symbol")
        self.calls.append((endpoint, symbol))
        if symbol in self.timeouts:
            raise requests.exceptions.ReadTimeout(f"HTTPSConnectionPool: Read timed out. ({url})")
        response = requests.Response()
        response.url = url
        response.headers["Content-Type"] = "application/json;charset=UTF-8"
        if symbol in self.errors:
            response.status_code, response.reason = 400, "Bad Request"
            response._content = (FIXTURES / self.errors[symbol]).read_bytes()
            return response
        name = (
            f"ticker_24hr_{symbol}.json"
            if endpoint == "24hr"
            else f"klines_{symbol}_{params['interval']}.json"
        )
        response.status_code, response.reason = 200, "OK"
        response._content = (FIXTURES / name).read_bytes()
        return response

    def count(self, endpoint, symbol):
        return self.calls.count((endpoint, symbol))


def exchange_with(session):
    exchange = ccxt.binance({"enableRateLimit": True, "rateLimit": 1})
    exchange.session = session
    return exchange


def live(session, **options):
    return get_source("live", exchange=exchange_with(session), **options)


def test_the_registry_builds_a_live_source():
    assert isinstance(live(RecordedBinance()), LiveSource)


def test_the_snapshot_prices_are_binance_last_prices_with_their_time():
    session = RecordedBinance()
    snapshot = live(session).snapshot(["BTC/USDT", "ETH/USDT"], NOW)
    assert snapshot.source == "live"
    assert snapshot.prices == {"BTC/USDT": Decimal("65900.01"), "ETH/USDT": Decimal("1963.42")}
    btc = snapshot.symbols["BTC/USDT"]
    assert btc.price_time == PRICE_TIME
    assert btc.change_24h_pct == Decimal("-1.217")
    assert btc.asset_class == "crypto"


def test_the_forming_kline_is_left_out_of_the_candles():
    snapshot = live(RecordedBinance()).snapshot(["BTC/USDT"], NOW)
    hourly = snapshot.symbols["BTC/USDT"].candles["1h"]
    klines = json.loads((FIXTURES / "klines_BTCUSDT_1h.json").read_text())
    # 30 klines, the last (10:00-11:00) still forming at 10:30: the newest shown opened 09:00.
    assert hourly[-1].open_time == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert hourly[-1].close == Decimal(klines[-2][4])
    assert len(hourly) == 24
    # 4h buckets 08:00-12:00 is incomplete; 04:00-08:00 is the last complete one.
    assert snapshot.symbols["BTC/USDT"].candles["4h"][-1].open_time == datetime(2026, 3, 2, 4, tzinfo=UTC)
    assert snapshot.symbols["BTC/USDT"].indicators["1h"]["ema_20"] is not None


def test_one_exchange_call_per_symbol_serves_every_agent_of_the_round():
    session = RecordedBinance()
    for _agent in range(6):
        # each agent's view, or each reader, builds from the same cached responses
        live(session).snapshot(["BTC/USDT", "ETH/USDT"], NOW)
    assert session.count("24hr", "BTCUSDT") == 1
    assert session.count("klines", "BTCUSDT") == 1
    assert session.count("24hr", "ETHUSDT") == 1
    assert session.count("klines", "ETHUSDT") == 1


def test_the_cache_expires_after_the_configured_seconds():
    session = RecordedBinance()
    live(session, cache_seconds=30).ticker("BTC/USDT")
    cache.clear()  # what the TTL does once LIVE_PRICE_CACHE_SECONDS have passed
    live(session, cache_seconds=30).ticker("BTC/USDT")
    assert session.count("24hr", "BTCUSDT") == 2


def test_a_price_older_than_the_limit_is_refused(settings):
    settings.LIVE_PRICE_MAX_AGE_SECONDS = 120
    source = live(RecordedBinance())
    # 10:29:58.123 -> 10:32:00 is 121.9 s old: over the 120 s limit.
    with pytest.raises(StalePriceError) as error:
        source.snapshot(["BTC/USDT"], datetime(2026, 3, 2, 10, 32, tzinfo=UTC))
    assert error.value.symbol == "BTC/USDT"
    assert error.value.age_seconds == pytest.approx(121.877)
    assert "stale" in str(error.value)
    assert not source.is_tradable("BTC/USDT", datetime(2026, 3, 2, 10, 32, tzinfo=UTC))
    # ...and 10:31:58 (119.9 s) is still fine.
    assert source.snapshot(["BTC/USDT"], datetime(2026, 3, 2, 10, 31, 58, tzinfo=UTC)).prices
    assert source.is_tradable("BTC/USDT", NOW)


def test_an_exchange_error_is_reported_with_binances_reason_and_nothing_is_stored():
    session = RecordedBinance(errors={"ETHUSDT": "error_invalid_symbol.json"})
    with pytest.raises(ExchangeUnavailableError) as error:
        snapshot_take(source=live(session), symbols=["BTC/USDT", "ETH/USDT"], at=NOW)
    assert "Binance ticker for ETH/USDT failed: BadSymbol" in str(error.value)
    assert "Invalid symbol" in str(error.value)
    from marketdata.models import MarketSnapshotRecord

    assert MarketSnapshotRecord.objects.count() == 0


def test_a_timeout_is_reported_as_the_exchange_being_unavailable():
    session = RecordedBinance(timeouts={"BTCUSDT"})
    with pytest.raises(ExchangeUnavailableError, match="Binance ticker for BTC/USDT timed out"):
        live(session).snapshot(["BTC/USDT"], NOW)
    assert not live(session).is_tradable("BTC/USDT", NOW)


def test_a_failed_fetch_is_not_cached():
    session = RecordedBinance(timeouts={"BTCUSDT"})
    with pytest.raises(ExchangeUnavailableError):
        live(session).ticker("BTC/USDT")
    session.timeouts.clear()
    assert live(session).ticker("BTC/USDT")["price"] == Decimal("65900.01")


def test_a_live_snapshot_is_stored_and_rebuilt_identically():
    from marketdata.services import snapshot_from_record

    record = snapshot_take(source=live(RecordedBinance()), symbols=["BTC/USDT", "ETH/USDT"], at=NOW)
    assert record.source == "live"
    rebuilt = snapshot_from_record(record)
    assert rebuilt == live(RecordedBinance()).snapshot(["BTC/USDT", "ETH/USDT"], NOW)
    assert record.payload["symbols"]["BTC/USDT"]["price"] == "65900.01"
    assert rebuilt.at == NOW
