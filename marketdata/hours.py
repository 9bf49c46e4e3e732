"""Trading hours: when an instrument may trade. Pure (datetime + zoneinfo), no Django.

Three kinds of hours:
- "always": crypto, 24/7.
- "forex_week": Sunday 22:00 UTC to Friday 22:00 UTC, continuously (the spot FX week as
  brokers quote it; fixed in UTC, so it does not follow New York's DST shift).
- "exchange_session": an exchange's regular session in its own time zone, Monday to
  Friday (e.g. NYSE 09:30-16:00 America/New_York), so DST is handled by zoneinfo.
  Holidays are optional: a list of local dates on which the session does not open.
  The shipped catalogue lists no holidays (documented in docs/marketdata.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

ALWAYS = "always"
FOREX_WEEK = "forex_week"
EXCHANGE_SESSION = "exchange_session"
HOURS_KINDS = (ALWAYS, FOREX_WEEK, EXCHANGE_SESSION)

FOREX_OPEN = time(22, 0)  # Sunday, UTC
FOREX_CLOSE = time(22, 0)  # Friday, UTC
SUNDAY, FRIDAY, SATURDAY = 6, 4, 5


@dataclass(frozen=True)
class TradingHours:
    kind: str = ALWAYS
    timezone: str = "UTC"
    session_open: time | None = None
    session_close: time | None = None
    # Local weekdays the session runs (Monday = 0).
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self):
        if self.kind not in HOURS_KINDS:
            raise ValueError(f"unknown trading hours kind {self.kind!r}")
        if self.kind == EXCHANGE_SESSION:
            if self.session_open is None or self.session_close is None:
                raise ValueError("an exchange session needs an open and a close time")
            if self.session_open >= self.session_close:
                raise ValueError("an exchange session must open before it closes (same local day)")
            ZoneInfo(self.timezone)  # raises for an unknown zone


def _hours_of(instrument_or_hours) -> TradingHours:
    if isinstance(instrument_or_hours, TradingHours):
        return instrument_or_hours
    return instrument_or_hours.trading_hours


def is_market_open(instrument_or_hours, at: datetime) -> bool:
    """True when the instrument trades at the aware moment `at`."""
    if at.tzinfo is None:
        raise ValueError("is_market_open needs a timezone-aware moment")
    hours = _hours_of(instrument_or_hours)
    if hours.kind == ALWAYS:
        return True
    if hours.kind == FOREX_WEEK:
        utc = at.astimezone(ZoneInfo("UTC"))
        weekday, clock = utc.weekday(), utc.time()
        if weekday == SATURDAY:
            return False
        if weekday == SUNDAY:
            return clock >= FOREX_OPEN
        if weekday == FRIDAY:
            return clock < FOREX_CLOSE
        return True
    local = at.astimezone(ZoneInfo(hours.timezone))
    if local.weekday() not in hours.weekdays or local.date() in hours.holidays:
        return False
    return hours.session_open <= local.time().replace(tzinfo=None) < hours.session_close
