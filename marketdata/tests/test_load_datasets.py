"""`manage.py load_datasets`: the shipped Binance data loads, exactly, once."""

import shutil
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from marketdata import services
from marketdata.models import Candle, Dataset
from marketdata.services import SHIPPED_DATASETS_DIR, shipped_files

pytestmark = pytest.mark.django_db


def test_the_shipped_files_are_the_nine_hourly_binance_coins_and_no_5m_set():
    files = shipped_files()
    assert {(d, tf) for d, _, tf, _ in files} == {("binance-1h", "1h")}
    assert sorted(symbol for _, symbol, _, _ in files) == [
        "BNB/USDT", "BTC/USDT", "DOGE/USDT", "ETH/USDT", "LINK/USDT", "PEPE/USDT", "SOL/USDT", "TRX/USDT", "XRP/USDT",
    ]  # fmt: skip


def ship_only(tmp_path, monkeypatch, names):
    """Point load_datasets at a copy of some shipped files (loading all nine takes ~15 s)."""
    folder = tmp_path / "binance-1h"
    folder.mkdir()
    for name in names:
        shutil.copy(SHIPPED_DATASETS_DIR / "binance-1h" / name, folder / name)
    monkeypatch.setattr(services.shipped_files, "__defaults__", (tmp_path,))


@pytest.fixture
def two_shipped_files(tmp_path, monkeypatch):
    ship_only(tmp_path, monkeypatch, ["BTCUSDT-1h.csv.gz", "PEPEUSDT-1h.csv.gz"])


@pytest.fixture
def pepe_shipped(tmp_path, monkeypatch):
    ship_only(tmp_path, monkeypatch, ["PEPEUSDT-1h.csv.gz"])


def test_it_loads_real_rows_exactly_and_is_idempotent(two_shipped_files):
    out = StringIO()
    call_command("load_datasets", stdout=out)
    assert Candle.objects.filter(symbol="BTC/USDT").count() == 12_818
    assert Candle.objects.filter(symbol="PEPE/USDT").count() == 8_978
    first_btc = Candle.objects.get(symbol="BTC/USDT", open_time=datetime(2024, 9, 14, tzinfo=UTC))
    assert (first_btc.open, first_btc.close, first_btc.volume) == (
        Decimal("60497.99"), Decimal("60414.39"), Decimal("753.37252"),
    )  # fmt: skip
    first_pepe = Candle.objects.get(symbol="PEPE/USDT", open_time=datetime(2025, 2, 21, tzinfo=UTC))
    assert first_pepe.open == Decimal("0.00000962")
    # the all-time high the data README cites
    ath = Candle.objects.get(symbol="BTC/USDT", open_time=datetime(2025, 10, 6, 18, tzinfo=UTC))
    assert ath.high == Decimal("126199.63")
    dataset = Dataset.objects.get(name="binance-1h")
    assert dataset.provenance == "Binance spot market data"
    revision = dataset.revision

    out = StringIO()
    call_command("load_datasets", stdout=out)
    assert "already loaded" in out.getvalue()
    assert Candle.objects.count() == 12_818 + 8_978
    assert Dataset.objects.get(name="binance-1h").revision == revision

    # A replay on the shipped data sees the close of the last finished hour.
    from marketdata.sources import get_source

    at = datetime(2025, 10, 6, 19, 0, tzinfo=UTC)  # the 18:00 bar (ATH hour) has just closed
    snapshot = get_source("replay", dataset="binance-1h").snapshot(["BTC/USDT", "PEPE/USDT"], at)
    btc = snapshot.symbols["BTC/USDT"]
    assert btc.candles["1h"][-1].high == Decimal("126199.63")
    assert btc.price == btc.candles["1h"][-1].close
    assert btc.indicators["4h"]["rsi_14"] is not None
    assert snapshot.symbols["PEPE/USDT"].price < Decimal("0.0001")


def test_a_partly_loaded_series_is_reloaded_whole(pepe_shipped):
    call_command("load_datasets", stdout=StringIO())
    Candle.objects.filter(symbol="PEPE/USDT", open_time__gte=datetime(2026, 1, 1, tzinfo=UTC)).delete()
    call_command("load_datasets", stdout=StringIO())
    assert Candle.objects.filter(symbol="PEPE/USDT").count() == 8_978
