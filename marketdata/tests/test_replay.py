"""Replay on stored candles: no look-ahead at bar boundaries, staleness, bars between rounds."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketdata.services import candles_import
from marketdata.sources import NoPriceError, StalePriceError, get_source
from marketdata.sources.replay import ReplaySource
from marketdata.tests.helpers import T0, csv_text, hourly

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(tmp_path):
    """Two symbols, 60 hourly bars from T0; ETH closes are BTC's + 1000."""
    for symbol, first_close in (("BTC/USDT", 100), ("ETH/USDT", 1100)):
        path = tmp_path / f"{symbol.replace('/', '')}.csv"
        path.write_text(csv_text(hourly(60, first_close=first_close)))
        candles_import(path=path, dataset_name="test-1h", symbol=symbol, timeframe="1h")
    return "test-1h"


def test_the_registry_builds_a_replay_source(dataset):
    assert isinstance(get_source("replay", dataset=dataset), ReplaySource)


def test_at_a_bar_close_the_snapshot_shows_that_bar_and_nothing_later(dataset):
    source = get_source("replay", dataset=dataset)
    at = T0 + timedelta(hours=10)  # bar 9 (09:00-10:00, close 109) has just closed
    snapshot = source.snapshot(["BTC/USDT", "ETH/USDT"], at)
    assert snapshot.prices == {"BTC/USDT": Decimal(109), "ETH/USDT": Decimal(1109)}
    btc = snapshot.symbols["BTC/USDT"]
    assert btc.price_time == at
    assert max(c.open_time for c in btc.candles["1h"]) == T0 + timedelta(hours=9)
    # One second earlier, bar 9 is still open: the price is bar 8's close.
    earlier = source.snapshot(["BTC/USDT"], at - timedelta(seconds=1))
    assert earlier.prices["BTC/USDT"] == Decimal(108)
    assert max(c.open_time for c in earlier.symbols["BTC/USDT"].candles["1h"]) == T0 + timedelta(hours=8)


def test_no_candle_in_any_snapshot_closes_after_the_snapshot_time(dataset):
    source = get_source("replay", dataset=dataset)
    for minutes in range(0, 60 * 60, 37):
        at = T0 + timedelta(minutes=minutes)
        try:
            snapshot = source.snapshot(["BTC/USDT"], at)
        except NoPriceError:
            assert minutes < 60  # only before the first bar has closed
            continue
        for timeframe, candles in snapshot.symbols["BTC/USDT"].candles.items():
            length = timedelta(hours=4 if timeframe == "4h" else 1)
            assert all(c.open_time + length <= at for c in candles), (at, timeframe)


def test_candles_until_a_moment_stop_at_the_last_closed_bar(dataset):
    source = get_source("replay", dataset=dataset)
    candles = source.candles("BTC/USDT", "1h", T0 + timedelta(hours=5, minutes=30), limit=3)
    assert [c.close for c in candles] == [Decimal(102), Decimal(103), Decimal(104)]
    four_hour = source.candles("BTC/USDT", "4h", T0 + timedelta(hours=9), limit=10)
    assert [c.open_time for c in four_hour] == [T0, T0 + timedelta(hours=4)]


def test_a_price_older_than_one_bar_is_refused_as_stale(dataset):
    source = get_source("replay", dataset=dataset)
    end_of_data = T0 + timedelta(hours=60)
    assert source.snapshot(["BTC/USDT"], end_of_data + timedelta(minutes=59)).prices["BTC/USDT"] == Decimal(
        159
    )
    with pytest.raises(StalePriceError, match="price of BTC/USDT is stale"):
        source.snapshot(["BTC/USDT"], end_of_data + timedelta(hours=2))
    assert not source.is_tradable("BTC/USDT", end_of_data + timedelta(hours=2))
    assert source.is_tradable("BTC/USDT", end_of_data)


def test_before_the_first_close_and_for_unknown_data_there_is_no_price(dataset):
    source = get_source("replay", dataset=dataset)
    with pytest.raises(NoPriceError):
        source.snapshot(["BTC/USDT"], T0 + timedelta(minutes=30))
    with pytest.raises(NoPriceError, match="no 1h candles for SOL/USDT"):
        source.snapshot(["SOL/USDT"], T0 + timedelta(hours=5))
    assert not source.is_tradable("SOL/USDT", T0 + timedelta(hours=5))
    with pytest.raises(NoPriceError, match="is not loaded"):
        get_source("replay", dataset="nope").snapshot(["BTC/USDT"], T0 + timedelta(hours=5))


def test_bars_between_rounds_yield_every_bar_closed_in_the_half_open_window(dataset):
    source = get_source("replay", dataset=dataset)
    bars = list(source.bars(["BTC/USDT", "ETH/USDT"], "1h", T0 + timedelta(hours=3), T0 + timedelta(hours=6)))
    # (03:00, 06:00]: bars closing at 04:00, 05:00, 06:00 (opened 03:00, 04:00, 05:00).
    assert [close for close, _ in bars] == [T0 + timedelta(hours=h) for h in (4, 5, 6)]
    assert bars[0][1]["BTC/USDT"].close == Decimal(103)
    assert bars[0][1]["ETH/USDT"].close == Decimal(1103)
    four_hour = list(source.bars(["BTC/USDT"], "4h", T0, T0 + timedelta(hours=12)))
    assert [close for close, _ in four_hour] == [T0 + timedelta(hours=h) for h in (4, 8, 12)]


def test_replay_reads_the_candles_once_then_serves_snapshots_from_memory(dataset):
    source = get_source("replay", dataset=dataset)
    source.snapshot(["BTC/USDT", "ETH/USDT"], T0 + timedelta(hours=10))
    with CaptureQueriesContext(connection) as queries:
        for hour in range(11, 40):
            get_source("replay", dataset=dataset).snapshot(
                ["BTC/USDT", "ETH/USDT"], T0 + timedelta(hours=hour)
            )
    # per round: the dataset's revision only (instruments are cached), never the candles again
    assert len(queries) == 29


def test_a_reimport_is_seen_by_the_next_source(dataset, tmp_path):
    at = T0 + timedelta(hours=10)
    assert get_source("replay", dataset=dataset).snapshot(["BTC/USDT"], at).prices["BTC/USDT"] == Decimal(109)
    path = tmp_path / "new.csv"
    path.write_text(csv_text(hourly(60, first_close=500)))
    candles_import(path=path, dataset_name=dataset, symbol="BTC/USDT", timeframe="1h", replace=True)
    assert get_source("replay", dataset=dataset).snapshot(["BTC/USDT"], at).prices["BTC/USDT"] == Decimal(509)


def test_a_four_hour_replay_on_hourly_data_uses_complete_four_hour_bars(dataset):
    source = get_source("replay", dataset=dataset, timeframe="4h")
    snapshot = source.snapshot(["BTC/USDT"], T0 + timedelta(hours=10))
    btc = snapshot.symbols["BTC/USDT"]
    # 04:00-08:00 is the last complete 4h bar at 10:00: its close is hourly bar 7's, 107.
    assert btc.price == Decimal(107)
    assert btc.price_time == T0 + timedelta(hours=8)
    assert set(btc.candles) == {"4h", "1d"}
