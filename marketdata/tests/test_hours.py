"""Trading hours: crypto always, the forex week in UTC, exchange sessions across DST."""

from datetime import UTC, date, datetime, time

import pytest

from marketdata.hours import TradingHours, is_market_open

NYSE = TradingHours(
    kind="exchange_session", timezone="America/New_York", session_open=time(9, 30), session_close=time(16, 0)
)
FOREX = TradingHours(kind="forex_week")


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_crypto_trades_on_a_saturday_night():
    assert is_market_open(TradingHours(kind="always"), utc(2025, 3, 8, 3, 0))


@pytest.mark.parametrize(
    ("moment", "open_"),
    [
        (utc(2025, 3, 9, 21, 59), False),  # Sunday before 22:00 UTC
        (utc(2025, 3, 9, 22, 0), True),  # Sunday 22:00 UTC: the week opens
        (utc(2025, 3, 12, 3, 0), True),  # midweek, night
        (utc(2025, 3, 14, 21, 59), True),  # Friday just before the close
        (utc(2025, 3, 14, 22, 0), False),  # Friday 22:00 UTC: closed
        (utc(2025, 3, 15, 12, 0), False),  # Saturday
    ],
)
def test_forex_week_runs_sunday_22_to_friday_22_utc(moment, open_):
    assert is_market_open(FOREX, moment) is open_


def test_nyse_opens_at_1430_utc_in_winter_time():
    # Friday 2025-03-07, EST (UTC-5): 09:30 local = 14:30 UTC.
    assert not is_market_open(NYSE, utc(2025, 3, 7, 13, 30))
    assert is_market_open(NYSE, utc(2025, 3, 7, 14, 30))


def test_nyse_opens_an_hour_earlier_in_utc_after_the_march_dst_change():
    # DST began Sunday 2025-03-09; Monday 2025-03-10 is EDT (UTC-4): 09:30 local = 13:30 UTC.
    assert not is_market_open(NYSE, utc(2025, 3, 10, 13, 29))
    assert is_market_open(NYSE, utc(2025, 3, 10, 13, 30))
    # ...and closes at 16:00 EDT = 20:00 UTC, not 21:00.
    assert is_market_open(NYSE, utc(2025, 3, 10, 19, 59))
    assert not is_market_open(NYSE, utc(2025, 3, 10, 20, 0))


def test_nyse_moves_back_to_1430_utc_after_the_november_dst_change():
    # Friday 2025-10-31 still EDT: open at 13:30 UTC.
    assert is_market_open(NYSE, utc(2025, 10, 31, 13, 30))
    # DST ended Sunday 2025-11-02; Monday 2025-11-03 is EST: 13:30 UTC is 08:30 local.
    assert not is_market_open(NYSE, utc(2025, 11, 3, 13, 30))
    assert is_market_open(NYSE, utc(2025, 11, 3, 14, 30))
    assert is_market_open(NYSE, utc(2025, 11, 3, 20, 59))
    assert not is_market_open(NYSE, utc(2025, 11, 3, 21, 0))


def test_an_exchange_is_closed_at_weekends_and_on_listed_holidays():
    with_holiday = TradingHours(
        kind="exchange_session",
        timezone="America/New_York",
        session_open=time(9, 30),
        session_close=time(16, 0),
        holidays=frozenset({date(2025, 12, 25)}),
    )
    assert not is_market_open(with_holiday, utc(2025, 12, 25, 15, 0))
    assert is_market_open(with_holiday, utc(2025, 12, 24, 15, 0))
    assert not is_market_open(NYSE, utc(2025, 12, 27, 15, 0))  # Saturday


def test_the_local_weekday_decides_not_the_utc_one():
    tokyo = TradingHours(
        kind="exchange_session", timezone="Asia/Tokyo", session_open=time(9, 0), session_close=time(15, 0)
    )
    # Sunday 2025-03-09 23:30 UTC is Monday 08:30 in Tokyo (closed), 00:30 UTC Monday 09:30 (open).
    assert not is_market_open(tokyo, utc(2025, 3, 9, 23, 30))
    assert is_market_open(tokyo, utc(2025, 3, 10, 0, 30))


def test_it_refuses_naive_times_and_sessions_without_hours():
    with pytest.raises(ValueError):
        is_market_open(NYSE, datetime(2025, 3, 10, 14, 0))
    with pytest.raises(ValueError):
        TradingHours(kind="exchange_session", timezone="America/New_York")


@pytest.mark.django_db
def test_the_seeded_catalogue_holds_the_shipped_coins_and_other_classes():
    from marketdata.models import Instrument

    us500 = Instrument.objects.get(symbol="US500")
    assert is_market_open(us500, utc(2025, 3, 10, 13, 30))
    assert not is_market_open(us500, utc(2025, 3, 7, 13, 30))
    assert set(Instrument.objects.values_list("asset_class", flat=True)) == {
        "crypto", "forex", "indices", "commodities", "stocks",
    }  # fmt: skip
    assert Instrument.objects.filter(asset_class="crypto").count() == 9
    assert is_market_open(Instrument.objects.get(symbol="PEPE/USDT"), utc(2025, 3, 8, 3, 0))
