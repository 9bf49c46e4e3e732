"""`manage.py import_candles`: every row validated, a clear error with its line, nothing half-imported."""

import gzip
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketdata.models import Candle, Dataset
from marketdata.tests.helpers import csv_text, hourly

pytestmark = pytest.mark.django_db

HEADER = "timestamp,open,high,low,close,volume\n"
GOOD_1 = "2025-01-06T00:00:00Z,100,102,99,101,5\n"
GOOD_2 = "2025-01-06T01:00:00Z,101,103,100,102,6\n"


def run(path, *extra):
    out = StringIO()
    call_command(
        "import_candles", str(path), "--dataset", "mine", "--symbol", "BTC/USDT", "--timeframe", "1h",
        *extra, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def write(tmp_path, text, name="bars.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_file_is_imported_with_decimals_exact(tmp_path):
    path = write(
        tmp_path,
        HEADER + GOOD_1 + "2025-01-06T01:00:00Z,9.62e-06,9.68e-06,9.54e-06,9.59e-06,326785325982.0\n",
    )
    output = run(path)
    assert "2 rows" in output
    pepe_like = Candle.objects.get(open_time=datetime(2025, 1, 6, 1, tzinfo=UTC))
    assert pepe_like.close == Decimal("0.00000959")
    assert pepe_like.volume == Decimal(326785325982)


def test_gzipped_files_and_epoch_millisecond_timestamps_are_accepted(tmp_path):
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + "1736121600000,100,102,99,101,5\n1736125200000,101,103,100,102,6\n")
    run(path)
    assert list(Candle.objects.values_list("open_time", flat=True)) == [
        datetime(2025, 1, 6, 0, tzinfo=UTC), datetime(2025, 1, 6, 1, tzinfo=UTC),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("2025-01-06T01:00:00Z,101,100.5,100,102,6", "line 3: high 100.5 is below max(open, close) 102"),
        ("2025-01-06T01:00:00Z,101,103,101.5,102,6", "line 3: low 101.5 is above min(open, close) 101"),
        ("2025-01-06T01:00:00Z,101,103,100,102,-6", "line 3: volume -6 is negative"),
        ("2025-01-06T01:00:00Z,-101,103,-102,102,6", "line 3: open -101 is negative"),
        (
            "2025-01-06T00:00:00Z,101,103,100,102,6",
            "line 3: duplicate time 2025-01-06T00:00:00+00:00 (also on line 2)",
        ),
        ("2025-01-05T23:00:00Z,101,103,100,102,6", "line 3: time goes backwards"),
        (
            "yesterday,101,103,100,102,6",
            "line 3: timestamp 'yesterday' is neither ISO-8601 nor epoch milliseconds",
        ),
        ("1736125200,101,103,100,102,6", "line 3: timestamp 1736125200 looks like epoch seconds"),
        (
            "2025-01-06T03:00:00+02:00,101,103,100,102,6",
            "line 3: timestamp '2025-01-06T03:00:00+02:00' is not UTC",
        ),
        (
            "2025-01-06T01:30:00Z,101,103,100,102,6",
            "line 3: open time 2025-01-06T01:30:00+00:00 is not aligned to 1h",
        ),
        ("2025-01-06T01:00:00Z,abc,103,100,102,6", "line 3: open 'abc' is not a number"),
        ("2025-01-06T01:00:00Z,101,103,100,102", "line 3: expected 6 columns, got 5"),
        ("2025-01-06T01:00:00Z,101,103,100,102,NaN", "line 3: volume 'NaN' is not a finite number"),
        (
            "2025-01-06T01:00:00Z,1.0000000000001,103,1,102,6",
            "line 3: open 1.0000000000001 has more precision",
        ),
    ],
)
def test_each_bad_row_is_reported_by_line_and_nothing_is_written(tmp_path, bad_line, message):
    path = write(tmp_path, HEADER + GOOD_1 + bad_line + "\n" + "2025-01-06T02:00:00Z,102,104,101,103,7\n")
    with pytest.raises(CommandError) as error:
        run(path)
    assert message in str(error.value)
    assert "Nothing was imported" in str(error.value)
    assert Candle.objects.count() == 0


def test_a_wrong_header_an_empty_file_and_a_header_alone_are_refused(tmp_path):
    for text, message in [
        ("time,o,h,l,c,v\n" + GOOD_1, "line 1: header must be timestamp,open,high,low,close,volume"),
        ("", "line 1: the file is empty"),
        (HEADER, "the file has a header but no rows"),
    ]:
        with pytest.raises(CommandError, match=message):
            run(write(tmp_path, text))
    assert Candle.objects.count() == 0


def test_every_error_of_a_file_is_listed_not_only_the_first(tmp_path):
    path = write(
        tmp_path,
        HEADER + "2025-01-06T00:00:00Z,100,99,98,101,5\n" + "2025-01-06T01:00:00Z,101,103,100,102,-1\n",
    )
    with pytest.raises(CommandError) as error:
        run(path)
    assert "line 2: high 99 is below" in str(error.value)
    assert "line 3: volume -1 is negative" in str(error.value)


def test_gaps_are_reported_and_refused_on_request(tmp_path):
    text = HEADER + GOOD_1 + "2025-01-06T03:00:00Z,101,103,100,102,6\n"
    output = run(write(tmp_path, text))
    assert (
        "gap: 2 missing 1h bar(s) between 2025-01-06T00:00:00+00:00 and 2025-01-06T03:00:00+00:00" in output
    )
    assert "1 gap(s), 2 missing bar(s)" in output
    Candle.objects.all().delete()
    with pytest.raises(CommandError, match="line 3: gap: 2 missing 1h bar"):
        run(write(tmp_path, text), "--reject-gaps")
    assert Candle.objects.count() == 0


def test_a_bad_last_row_leaves_stored_candles_untouched_even_with_replace(tmp_path):
    run(write(tmp_path, HEADER + GOOD_1 + GOOD_2))
    with pytest.raises(CommandError):
        run(write(tmp_path, HEADER + GOOD_1 + "2025-01-06T01:00:00Z,101,100,99,102,6\n"), "--replace")
    assert Candle.objects.count() == 2
    assert Candle.objects.get(open_time=datetime(2025, 1, 6, 1, tzinfo=UTC)).high == Decimal(103)


def test_overlapping_an_existing_series_needs_replace(tmp_path):
    run(write(tmp_path, HEADER + GOOD_1 + GOOD_2))
    with pytest.raises(CommandError, match="use replace"):
        run(write(tmp_path, HEADER + GOOD_2))
    run(write(tmp_path, csv_text(hourly(5))), "--replace")
    assert Candle.objects.count() == 5
    assert Dataset.objects.get(name="mine").revision == 2


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run(tmp_path / "nope.csv")


def test_the_symbol_may_be_given_without_a_slash(tmp_path):
    call_command(
        "import_candles", str(write(tmp_path, HEADER + GOOD_1)), "--dataset", "mine", "--symbol", "eth-usdt",
        "--timeframe", "1h", stdout=StringIO(),
    )  # fmt: skip
    assert list(Candle.objects.values_list("symbol", flat=True)) == ["ETH/USDT"]
