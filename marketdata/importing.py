"""Reading and validating candle CSV files. Pure (no Django): parse everything, write nothing.

Format: a header `timestamp,open,high,low,close,volume`, then one bar per line;
`timestamp` is the bar's OPEN time, ISO-8601 in UTC ("2024-09-14T00:00:00Z", an offset
other than +00:00 is refused, a bare time is read as UTC) or epoch milliseconds.
Files may be gzipped (.csv.gz). Row numbers in messages are file line numbers (the
header is line 1).
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from marketdata.series import timeframe_seconds

COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
MAX_ERRORS = 20
# DecimalField limits of marketdata.models (price 30/12, volume 32/8).
PRICE_PLACES, PRICE_INTEGER_DIGITS = 12, 18
VOLUME_PLACES, VOLUME_INTEGER_DIGITS = 8, 24
EPOCH_MS_MIN = 100_000_000_000  # 1973-03-03 in ms; smaller numbers look like seconds


class CandleFileError(ValueError):
    """The file is invalid; `errors` lists every problem found (with line numbers)."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_ERRORS]
        more = f"\n... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        super().__init__("invalid candle file:\n" + "\n".join(shown) + more)


@dataclass(frozen=True, slots=True)
class CandleRow:
    line: int
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@dataclass
class ParsedCandles:
    rows: list[CandleRow]
    # (last open time before the gap, next open time, missing bars)
    gaps: list[tuple[datetime, datetime, int]] = field(default_factory=list)

    @property
    def missing_bars(self) -> int:
        return sum(gap[2] for gap in self.gaps)


def open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def parse_timestamp(text: str) -> datetime:
    text = text.strip()
    if not text:
        raise ValueError("empty timestamp")
    if text.isdigit():
        value = int(text)
        if value < EPOCH_MS_MIN:
            raise ValueError(f"timestamp {text} looks like epoch seconds; epoch milliseconds are expected")
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither ISO-8601 nor epoch milliseconds") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"timestamp {text!r} is not UTC (offset {moment.utcoffset()})")
    return moment.astimezone(UTC)


def _fits(value: Decimal, places: int, integer_digits: int) -> bool:
    _sign, digits, exponent = value.as_tuple()
    decimals = max(0, -exponent)
    integer_digits_used = max(0, len(digits) + exponent)
    return decimals <= places and integer_digits_used <= integer_digits


def parse_number(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not a number") from None
    if not value.is_finite():
        raise ValueError(f"{column} {text!r} is not a finite number")
    if value < 0:
        raise ValueError(f"{column} {text} is negative")
    places, integer_digits = (
        (VOLUME_PLACES, VOLUME_INTEGER_DIGITS) if column == "volume" else (PRICE_PLACES, PRICE_INTEGER_DIGITS)
    )
    if not _fits(value, places, integer_digits):
        raise ValueError(
            f"{column} {text} has more precision than stored ({integer_digits} digits, {places} places)"
        )
    return value


def parse_candles(lines, *, timeframe: str, reject_gaps: bool = False) -> ParsedCandles:
    """Parse and validate every row; raise CandleFileError listing every problem."""
    step = timedelta(seconds=timeframe_seconds(timeframe))
    reader = csv.reader(lines)
    errors: list[str] = []
    header = next(reader, None)
    if header is None:
        raise CandleFileError(["line 1: the file is empty (expected a header: " + ",".join(COLUMNS) + ")"])
    if tuple(column.strip().lower() for column in header) != COLUMNS:
        raise CandleFileError([f"line 1: header must be {','.join(COLUMNS)}, got {','.join(header)}"])
    rows: list[CandleRow] = []
    gaps: list[tuple[datetime, datetime, int]] = []
    previous: CandleRow | None = None
    for line, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(COLUMNS):
            errors.append(f"line {line}: expected {len(COLUMNS)} columns, got {len(fields)}")
            continue
        try:
            open_time = parse_timestamp(fields[0])
            o, h, lo, c, v = (parse_number(text, name) for text, name in zip(fields[1:], COLUMNS[1:]))
        except ValueError as exc:
            errors.append(f"line {line}: {exc}")
            continue
        problems = []
        if int(open_time.timestamp()) % step.total_seconds():
            problems.append(f"open time {open_time.isoformat()} is not aligned to {timeframe}")
        if h < max(o, c):
            problems.append(f"high {h} is below max(open, close) {max(o, c)}")
        if lo > min(o, c):
            problems.append(f"low {lo} is above min(open, close) {min(o, c)}")
        if previous is not None:
            if open_time == previous.open_time:
                problems.append(f"duplicate time {open_time.isoformat()} (also on line {previous.line})")
            elif open_time < previous.open_time:
                problems.append(
                    f"time goes backwards: {open_time.isoformat()} after {previous.open_time.isoformat()}"
                    f" (line {previous.line})"
                )
            elif open_time - previous.open_time > step:
                missing = int((open_time - previous.open_time) / step) - 1
                gaps.append((previous.open_time, open_time, missing))
                if reject_gaps:
                    problems.append(
                        f"gap: {missing} missing {timeframe} bar(s) between "
                        f"{previous.open_time.isoformat()} and {open_time.isoformat()}"
                    )
        errors.extend(f"line {line}: {problem}" for problem in problems)
        row = CandleRow(line, open_time, o, h, lo, c, v)
        if previous is None or open_time > previous.open_time:
            previous = row
        rows.append(row)
    if not rows and not errors:
        errors.append("the file has a header but no rows")
    if errors:
        raise CandleFileError(errors)
    return ParsedCandles(rows=rows, gaps=gaps)


def parse_candle_file(path: str | Path, *, timeframe: str, reject_gaps: bool = False) -> ParsedCandles:
    try:
        with open_text(path) as handle:
            return parse_candles(handle, timeframe=timeframe, reject_gaps=reject_gaps)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
        raise CandleFileError([f"cannot read {path}: {exc}"]) from exc
