"""Fixtures for round tests: a small hand-made replay dataset and fresh caches."""

import os
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache

from competitions.tests.factories import START
from marketdata.importing import CandleRow, ParsedCandles
from marketdata.services import candles_store
from marketdata.sources import replay

TEST_DATASET = "test-1h"
HISTORY_BARS = 120  # indicator warm-up before START
BARS_AFTER_START = 48


def btc_close(i: int) -> Decimal:
    """BTC/USDT close of bar i (bar 0 opens HISTORY_BARS hours before START): a gentle rise."""
    return Decimal(50000) + Decimal(10) * i


def eth_close(i: int) -> Decimal:
    return Decimal(2000) - Decimal(1) * i


def _rows(close_of):
    rows = []
    first_open = START - timedelta(hours=HISTORY_BARS)
    previous = close_of(0)
    for i in range(HISTORY_BARS + BARS_AFTER_START):
        close = close_of(i)
        open_ = previous
        rows.append(
            CandleRow(
                line=i + 2, open_time=first_open + timedelta(hours=i), open=open_,
                high=max(open_, close) + 1, low=min(open_, close) - 1, close=close, volume=Decimal(100),
            )
        )
        previous = close
    return ParsedCandles(rows=rows)


@pytest.fixture(autouse=True)
def fresh_caches():
    replay.clear_cache()
    cache.clear()
    yield
    replay.clear_cache()
    cache.clear()


@pytest.fixture
def replay_market(db):
    """BTC/USDT and ETH/USDT hourly candles around START in dataset 'test-1h'."""
    candles_store(dataset_name=TEST_DATASET, symbol="BTC/USDT", timeframe="1h", parsed=_rows(btc_close))
    candles_store(dataset_name=TEST_DATASET, symbol="ETH/USDT", timeframe="1h", parsed=_rows(eth_close))
    return TEST_DATASET


@pytest.fixture(autouse=True)
def fold_throttle_forgotten():
    """Ids restart in every test's database: a fold remembered from another test's
    competition must not hold this one's back."""
    from competitions.rounds import run as rounds

    rounds._last_fold.clear()
    yield
    rounds._last_fold.clear()


@pytest.fixture(scope="session")
def local_model_server(tmp_path_factory):
    """SmolLM2-135M-Instruct served by llama.cpp's OpenAI-compatible server from .venv-llm,
    on a free loopback port, for the whole session. Skipped without .venv-llm (`make llm`),
    except in CI (CI=true), where a missing server must fail rather than pass unseen."""
    from gauntlet import local_model

    if local_model.venv_python() is None:
        reason = f"no {local_model.LLM_VENV.name}: run `make llm` (compiles llama.cpp once, ~15 min)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI must run the real-model test: {reason}")
        pytest.skip(reason)
    log_path = tmp_path_factory.mktemp("local-model") / "server.log"
    server = local_model.local_model_start(log_path=log_path)
    yield server
    local_model.local_model_stop(server)
