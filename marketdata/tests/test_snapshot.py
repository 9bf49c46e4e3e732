"""Snapshots as JSON, stored once per round and rebuilt exactly."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.models import MarketSnapshotRecord
from marketdata.selectors import snapshot_get
from marketdata.services import candles_import, snapshot_from_record, snapshot_take
from marketdata.snapshot import Candle, MarketSnapshot, SymbolSnapshot
from marketdata.sources import StalePriceError
from marketdata.tests.helpers import T0, csv_text, hourly


def test_a_snapshot_round_trips_through_json_with_exact_decimals():
    candle = Candle(
        T0,
        Decimal("9.62E-6"),
        Decimal("0.00000968"),
        Decimal("9.54e-06"),
        Decimal("9.59e-06"),
        Decimal("326785325982.0"),
    )
    snapshot = MarketSnapshot(
        at=T0 + timedelta(hours=1),
        source="replay",
        symbols={
            "PEPE/USDT": SymbolSnapshot(
                symbol="PEPE/USDT",
                asset_class="crypto",
                price=Decimal("0.00000959"),
                price_time=T0 + timedelta(hours=1),
                change_24h_pct=None,
                candles={"1h": [candle]},
                indicators={"1h": {"rsi_14": None, "ema_20": 9.6e-06}},
            )
        },
    )
    data = snapshot.to_dict()
    assert data["at"] == "2025-01-06T01:00:00Z"
    assert data["symbols"]["PEPE/USDT"]["price"] == "0.00000959"
    assert data["symbols"]["PEPE/USDT"]["candles"]["1h"][0]["open"] == "0.00000962"
    assert MarketSnapshot.from_dict(data) == snapshot
    assert MarketSnapshot.from_dict(data).prices == {"PEPE/USDT": Decimal("0.00000959")}


@pytest.mark.django_db
def test_snapshot_take_stores_the_replay_snapshot_every_agent_will_see(tmp_path):
    path = tmp_path / "btc.csv"
    path.write_text(csv_text(hourly(48)))
    candles_import(path=path, dataset_name="test-1h", symbol="BTC/USDT", timeframe="1h")
    at = T0 + timedelta(hours=30)
    record = snapshot_take(source="replay", symbols=["BTC/USDT"], at=at, dataset="test-1h")
    assert (record.source, record.dataset, record.at) == ("replay", "test-1h", at)
    rebuilt = snapshot_from_record(MarketSnapshotRecord.objects.get(pk=record.pk))
    assert rebuilt.prices == {"BTC/USDT": Decimal(129)}
    assert rebuilt == snapshot_get(record_id=record.pk)
    assert rebuilt.symbols["BTC/USDT"].candles["1h"][-1].open_time == datetime(2025, 1, 7, 5, tzinfo=UTC)


@pytest.mark.django_db
def test_a_stale_replay_snapshot_is_refused_and_not_stored(tmp_path):
    path = tmp_path / "btc.csv"
    path.write_text(csv_text(hourly(10)))
    candles_import(path=path, dataset_name="test-1h", symbol="BTC/USDT", timeframe="1h")
    with pytest.raises(StalePriceError):
        snapshot_take(source="replay", symbols=["BTC/USDT"], at=T0 + timedelta(days=2), dataset="test-1h")
    assert MarketSnapshotRecord.objects.count() == 0


@pytest.mark.django_db
def test_a_synthetic_snapshot_is_labelled_with_its_seed():
    from marketdata.sources import get_source

    record = snapshot_take(
        source=get_source("synthetic", seed=4, horizon_bars=100),
        symbols=["EUR/USD"],
        at=datetime(2024, 1, 2, tzinfo=UTC),
    )
    assert (record.source, record.dataset) == ("synthetic", "seed-4")


@pytest.mark.django_db
def test_a_real_snapshot_is_unchanged_by_storing_it_so_a_round_can_use_the_one_it_fetched():
    """A round hands agents the snapshot it fetched, not the one read back; a resumed round
    reads it back. Both must be the same, on this database's JSON, for real history."""
    from django.core.management import call_command

    from marketdata.services import snapshot_fetch, snapshot_store

    call_command("load_datasets", "binance-1h", verbosity=0)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT"]
    start = datetime(2024, 10, 1, tzinfo=UTC)
    for hours in (0, 7, 500, 4_000):
        snapshot, dataset = snapshot_fetch(source="replay", symbols=symbols, at=start + timedelta(hours=hours),
                                           dataset="binance-1h")
        record = snapshot_store(snapshot=snapshot, dataset=dataset)
        stored = snapshot_from_record(MarketSnapshotRecord.objects.get(pk=record.pk))
        assert stored == snapshot
        assert stored.to_dict() == snapshot.to_dict()
