"""Shared fixtures for the agents tests, and a respx bridge for the SDKs' HTTP library.

The installed anthropic (2.12) and openai (3.54) SDKs send requests with httpx2 (the
maintained fork of httpx, with its own httpcore2), which respx does not patch: respx only
knows httpx/httpcore. `HTTPX2Mocker` registers with respx a mocker that patches
`httpx2.Client._transport_for_url` (as respx's own "httpx" mocker does for httpx) and
bridges each request/response between httpx2 and httpx objects. Tests then use plain
respx routes: `respx.mock(using="httpx2")`. Nothing is mocked above the transport: the
SDK builds, sends and parses real HTTP messages.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import httpx2
import pytest
import respx
from respx.mocks import Mocker

from agents import limits
from agents.context import AccountView, CompetitionRules, PositionView
from agents.providers import base as providers_base
from marketdata.snapshot import Candle, MarketSnapshot, SymbolSnapshot


class HTTPX2Mocker(Mocker):
    name = "httpx2"
    targets = ["httpx2._client.Client", "httpx2._client.AsyncClient"]
    target_methods = ["_transport_for_url"]

    @classmethod
    def mock(cls, spec):
        def _transport_for_url(self, *args, **kwargs):
            return httpx2.MockTransport(cls.bridge)

        return _transport_for_url

    @classmethod
    def bridge(cls, request2: httpx2.Request) -> httpx2.Response:
        request = httpx.Request(
            request2.method, str(request2.url), headers=list(request2.headers.raw), content=request2.content
        )
        try:
            response = cls.handler(request)
        except httpx.TimeoutException as exc:
            raise httpx2.ReadTimeout(str(exc) or "timed out", request=request2) from exc
        except httpx.ConnectError as exc:
            raise httpx2.ConnectError(str(exc) or "connect failed", request=request2) from exc
        response.read()
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in (b"content-encoding",)]
        return httpx2.Response(
            response.status_code, headers=headers, content=response.content, request=request2
        )


@pytest.fixture
def http_mock():
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        yield router


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    """Retries back off for real in production; tests record the waits instead."""
    waits: list[float] = []
    skipped = [0.0]

    def record(seconds: float) -> None:
        waits.append(seconds)
        skipped[0] += seconds

    monkeypatch.setattr(providers_base, "sleep", record)
    # The provider limits' clock moves on by the skipped waits, as it would have: a
    # Retry-After pause the call already waited out does not hold its retry for real.
    monkeypatch.setattr(limits, "clock", lambda: time.monotonic() + skipped[0])
    return waits


NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SYMBOLS6 = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT")
BASE_PRICES = {
    "BTC/USDT": Decimal("61234.5"),
    "ETH/USDT": Decimal("3120.25"),
    "SOL/USDT": Decimal("142.37"),
    "BNB/USDT": Decimal("585.1"),
    "XRP/USDT": Decimal("0.5231"),
    "DOGE/USDT": Decimal("0.12345"),
}


def make_rules(symbols=("BTC/USDT", "ETH/USDT"), **overrides) -> CompetitionRules:
    values = dict(
        name="Fixed test cup",
        initial_capital=Decimal("10000"),
        max_leverage=Decimal("10"),
        max_position_size_pct=Decimal("25"),
        margin_requirement_pct=Decimal("10"),
        maintenance_margin_pct=Decimal("5"),
        fee_pct=Decimal("0.05"),
        spread_bps=Decimal("2"),
        slippage_bps=Decimal("1"),
        funding_rate_pct_8h=Decimal("0.01"),
        financing_rate_pct_annual=Decimal("0"),
        symbols=tuple(symbols),
        timeframe="1h",
        start_time=NOW - timedelta(days=1, hours=3),
        end_time=NOW + timedelta(days=6, hours=21),
        invocation_interval_minutes=60,
        prompt_leaderboard=False,
        seed=7,
    )
    values.update(overrides)
    return CompetitionRules(**values)


def make_candles(base: Decimal, count: int, *, timeframe_hours: int = 1, step: Decimal = Decimal("0.001")):
    """Deterministic zig-zag drifting up to `base`, the last close (the snapshot's price):
    close_i = base x (1 + step x (i mod 5 - last mod 5 + (i - last) / 10)), last = count - 1."""
    bars = []
    last = count - 1
    for i in range(count):
        open_time = NOW - timedelta(hours=timeframe_hours * (count - i))
        factor = 1 + step * (Decimal(i % 5) - Decimal(last % 5) + Decimal(i - last) / 10)
        close = (base * factor).quantize(Decimal("0.00001"))
        open_ = (base * (factor - step)).quantize(Decimal("0.00001"))
        bars.append(
            Candle(
                open_time=open_time,
                open=open_,
                high=max(open_, close) * Decimal("1.001"),
                low=min(open_, close) * Decimal("0.999"),
                close=close,
                volume=Decimal(1000 + 37 * i),
            )
        )
    return bars


def make_snapshot(symbols=("BTC/USDT", "ETH/USDT"), *, indicators: dict | None = None) -> MarketSnapshot:
    out = {}
    for symbol in symbols:
        base = BASE_PRICES[symbol]
        out[symbol] = SymbolSnapshot(
            symbol=symbol,
            asset_class="crypto",
            price=base,
            price_time=NOW,
            change_24h_pct=Decimal("1.25"),
            candles={"1h": make_candles(base, 24), "4h": make_candles(base, 12, timeframe_hours=4)},
            indicators=(indicators or {}).get(symbol)
            or {
                "1h": {
                    "ema_20": float(base) * 0.999,
                    "ema_50": float(base) * 0.995,
                    "rsi_7": 58.1,
                    "rsi_14": 55.4321,
                    "macd": 1.5,
                    "macd_signal": 1.2,
                    "macd_histogram": 0.3,
                    "atr_14": float(base) * 0.004,
                    "return_1_pct": 0.12,
                    "return_20_pct": 2.5,
                    "volume": 1500.0,
                    "volume_avg_20": 1300.0,
                },
                "4h": {"ema_20": float(base) * 0.99, "ema_50": None, "rsi_14": 61.0},
            },
        )
    return MarketSnapshot(at=NOW, source="replay", symbols=out)


def make_account(with_position: bool = True) -> AccountView:
    if not with_position:
        return AccountView.flat(Decimal("10000"))
    position = PositionView(
        symbol="BTC/USDT",
        side="long",
        size=Decimal("0.05"),
        entry_price=Decimal("60000"),
        mark_price=Decimal("61234.5"),
        unrealized_pnl=Decimal("61.725"),  # 0.05 x (61234.5 - 60000)
        leverage=Decimal("2"),
        initial_margin=Decimal("1500"),  # 0.05 x 60000 / 2
        liquidation_price=Decimal("31578.95"),
        stop_loss=Decimal("58500"),
        take_profit=Decimal("64000"),
    )
    return AccountView(
        cash=Decimal("9998.50"),
        equity=Decimal("10060.225"),  # 9998.50 + 61.725
        used_margin=Decimal("1500"),
        free_margin=Decimal("8560.225"),
        margin_level_pct=Decimal("670.68"),
        return_pct=Decimal("0.60225"),
        positions=(position,),
    )


@pytest.fixture(autouse=True)
def no_remembered_capabilities():
    """The structured output memory is process-wide: each test starts with it empty (and
    counted as read from the table, so recording does not query it unasked)."""
    from agents.providers.structured import capabilities

    capabilities.replace_all({})
    yield capabilities
    capabilities.replace_all({})
