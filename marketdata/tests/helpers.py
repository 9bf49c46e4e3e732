"""Small builders for candle tests (numbers chosen so each bar is recognisable)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from marketdata.snapshot import Candle

T0 = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)  # a Monday, 00:00 UTC


def hourly(count: int, *, start: datetime = T0, step: timedelta = timedelta(hours=1), first_close: int = 100):
    """Bar i: open = 100 + i - 1 (previous close), close = 100 + i, high = close + 1, low = open - 1,
    volume = i + 1."""
    candles = []
    for i in range(count):
        close = Decimal(first_close + i)
        open_ = close - 1
        candles.append(
            Candle(
                open_time=start + i * step,
                open=open_,
                high=close + 1,
                low=open_ - 1,
                close=close,
                volume=Decimal(i + 1),
            )
        )
    return candles


def csv_text(candles) -> str:
    lines = ["timestamp,open,high,low,close,volume"]
    for c in candles:
        stamp = c.open_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        lines.append(f"{stamp},{c.open},{c.high},{c.low},{c.close},{c.volume}")
    return "\n".join(lines) + "\n"
