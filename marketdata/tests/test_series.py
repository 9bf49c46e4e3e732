"""Aggregation into higher timeframes and what a snapshot may see (pure, no database)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from marketdata.series import CandleSeries, NoPriceYet, SymbolHistory, symbol_snapshot
from marketdata.tests.helpers import T0, hourly


def history(candles, timeframe="1h"):
    return SymbolHistory(symbol="BTC/USDT", asset_class="crypto", base=CandleSeries(timeframe, candles))


def test_four_hour_bars_aggregate_open_high_low_close_and_volume_aligned_to_utc():
    # Bars 02:00..10:00: the 00:00 and 08:00 buckets are incomplete and must be left out.
    bars = hourly(9, start=T0 + timedelta(hours=2))
    four_hour = CandleSeries("1h", bars).aggregate("4h")
    assert [c.open_time for c in four_hour.candles] == [T0 + timedelta(hours=4)]
    bar = four_hour.candles[0]
    # Hourly bars 2..5 (04:00-07:00): closes 102..105, opens 101..104, volumes 3..6.
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        Decimal(101), Decimal(106), Decimal(100), Decimal(105), Decimal(18),
    )  # fmt: skip


def test_a_bucket_with_a_missing_bar_is_not_shown_as_a_complete_bar():
    bars = hourly(8)
    del bars[5]  # 05:00 missing: the 04:00-08:00 bucket is incomplete
    four_hour = CandleSeries("1h", bars).aggregate("4h")
    assert [c.open_time for c in four_hour.candles] == [T0]


def test_fifteen_minute_one_hour_and_four_hour_bars_come_from_five_minute_bars():
    bars = hourly(48 * 2, step=timedelta(minutes=5))  # 8 hours of 5m bars
    series = CandleSeries("5m", bars)
    assert len(series.aggregate("15m")) == 32
    assert len(series.aggregate("1h")) == 8
    assert len(series.aggregate("4h")) == 2
    first_hour = series.aggregate("1h").candles[0]
    assert (first_hour.open, first_hour.close, first_hour.volume) == (Decimal(99), Decimal(111), Decimal(78))


def test_it_refuses_to_aggregate_into_a_timeframe_that_is_not_a_multiple():
    with pytest.raises(ValueError):
        CandleSeries("1h", hourly(3)).aggregate("15m")


def test_at_a_bar_boundary_the_bar_closing_then_is_visible_and_the_next_is_not():
    snap_history = history(hourly(30))
    # Bar 9 opens 09:00 and closes 10:00 (close 109); bar 10 closes 11:00.
    at_close = symbol_snapshot(snap_history, T0 + timedelta(hours=10))
    assert at_close.price == Decimal(109)
    assert at_close.price_time == T0 + timedelta(hours=10)
    assert at_close.candles["1h"][-1].open_time == T0 + timedelta(hours=9)
    one_second_before = symbol_snapshot(snap_history, T0 + timedelta(hours=10) - timedelta(seconds=1))
    assert one_second_before.price == Decimal(108)
    assert one_second_before.candles["1h"][-1].open_time == T0 + timedelta(hours=8)


def test_the_four_hour_bar_appears_only_once_its_last_hour_has_closed():
    snap_history = history(hourly(30))
    before = symbol_snapshot(snap_history, T0 + timedelta(hours=7, minutes=59))
    assert [c.open_time for c in before.candles["4h"]] == [T0]
    after = symbol_snapshot(snap_history, T0 + timedelta(hours=8))
    assert [c.open_time for c in after.candles["4h"]] == [T0, T0 + timedelta(hours=4)]


def test_indicators_at_a_moment_do_not_change_when_future_bars_are_added():
    at = T0 + timedelta(hours=60)
    short = symbol_snapshot(history(hourly(60)), at)
    long = symbol_snapshot(history(hourly(200)), at)
    assert short.indicators == long.indicators
    assert short.candles == long.candles


def test_the_24h_change_compares_with_the_close_a_day_earlier():
    snap = symbol_snapshot(history(hourly(30)), T0 + timedelta(hours=30))
    # close 129 now, close 105 at 06:00 (24 hours before the last close at 06:00 + 24h)
    assert snap.change_24h_pct == ((Decimal(129) / Decimal(105) - 1) * 100).quantize(Decimal("0.01"))
    early = symbol_snapshot(history(hourly(30)), T0 + timedelta(hours=10))
    assert early.change_24h_pct is None


def test_the_snapshot_keeps_the_last_24_hourly_and_12_four_hour_bars():
    snap = symbol_snapshot(history(hourly(24 * 10)), T0 + timedelta(days=10))
    assert len(snap.candles["1h"]) == 24 and len(snap.candles["4h"]) == 12
    assert snap.indicators["4h"]["ema_50"] is not None


def test_nothing_closed_yet_is_an_error_not_a_zero_price():
    with pytest.raises(NoPriceYet):
        symbol_snapshot(history(hourly(5)), T0 + timedelta(minutes=59))
