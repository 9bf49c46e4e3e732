"""A small hourly dataset (BTC up, ETH down) and a tournament factory over it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from marketdata.importing import CandleRow, ParsedCandles
from marketdata.services import candles_store

DATASET = "tour-1h"
START = datetime(2025, 1, 1, tzinfo=UTC)
HISTORY_BARS = 120
BARS_AFTER_START = 48

OPEN_BTC = {"reasoning": "trend up", "actions": [
    {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "0.1", "leverage": "2"}
]}
OPEN_ETH_SHORT = {"reasoning": "trend down", "actions": [
    {"action": "open", "symbol": "ETH/USDT", "side": "short", "quantity": "1", "leverage": "2"}
]}
FREE_RULES = {"fee_pct": "0", "spread_bps": "0", "slippage_bps": "0", "funding_rate_pct_8h": "0"}


def _rows(first_close: Decimal, step: Decimal) -> ParsedCandles:
    rows, first_open = [], START - timedelta(hours=HISTORY_BARS)
    previous = first_close
    for i in range(HISTORY_BARS + BARS_AFTER_START):
        close = first_close + step * i
        rows.append(CandleRow(line=i + 2, open_time=first_open + timedelta(hours=i), open=previous,
                              high=max(previous, close) + 1, low=min(previous, close) - 1, close=close,
                              volume=Decimal(100)))
        previous = close
    return ParsedCandles(rows=rows)


def store_market() -> str:
    candles_store(dataset_name=DATASET, symbol="BTC/USDT", timeframe="1h", parsed=_rows(Decimal(50000), Decimal(10)))
    candles_store(dataset_name=DATASET, symbol="ETH/USDT", timeframe="1h", parsed=_rows(Decimal(2000), Decimal(-1)))
    return DATASET


@pytest.fixture(autouse=True)
def fresh_caches():
    from marketdata.sources import replay

    replay.clear_cache()
    cache.clear()
    yield
    replay.clear_cache()
    cache.clear()


@pytest.fixture
def market(db):
    return store_market()


def scripted_lineup() -> list[dict]:
    return [
        {"name": "Bull", "llm_provider": "scripted", "llm_model": "script", "llm_config": {"decisions": [OPEN_BTC]}},
        {"name": "Bear", "llm_provider": "scripted", "llm_model": "script",
         "llm_config": {"decisions": [OPEN_ETH_SHORT]}},
        {"name": "Hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"},
    ]


def tournament_fields(**overrides) -> dict:
    fields = {
        "name": "Test cup", "dataset": DATASET, "timeframe": "1h", "symbols": ["BTC/USDT", "ETH/USDT"],
        "rules": dict(FREE_RULES),
        "windows_spec": {"start": START.isoformat(), "count": 2, "length_minutes": 240, "step_minutes": 360},
        "instances": 2, "seed": 7, "entries": scripted_lineup(),
    }
    fields.update(overrides)
    return fields


def played_tournament(**overrides):
    """A tournament over the stored market (store_market first) started and played to the end by
    one in-process worker: every run completed the way a worker completes it."""
    from tournaments import runs, services

    tournament = services.tournament_create(**tournament_fields(**overrides))
    services.tournament_start(tournament_id=tournament.pk)
    while (run := runs.run_claim(tournament_id=tournament.pk, owner="t")) is not None:
        runs.run_execute(run_id=run.pk, owner="t")
    return tournament
