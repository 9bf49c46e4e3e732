"""Writes of the marketdata app: datasets and candles, stored snapshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from gauntlet.db import insert_rows
from gauntlet.timefmt import iso_utc
from marketdata.catalogue import CRYPTO_QUOTES
from marketdata.importing import ParsedCandles, parse_candle_file
from marketdata.models import Candle, Dataset, MarketSnapshotRecord
from marketdata.series import timeframe_seconds
from marketdata.snapshot import MarketSnapshot
from marketdata.sources import PriceSource, get_source

SHIPPED_DATASETS_DIR = Path(__file__).resolve().parent / "datasets"
SHIPPED_PROVENANCE = "Binance spot market data"
BATCH_SIZE = 5000
SHIPPED_FILE = re.compile(
    rf"^(?P<base>[A-Z0-9]+?)(?P<quote>{'|'.join(CRYPTO_QUOTES)})-(?P<tf>\w+)\.csv(\.gz)?$"
)


@dataclass
class ImportReport:
    dataset: str
    symbol: str
    timeframe: str
    rows: int
    first: datetime | None = None
    last: datetime | None = None
    gaps: list[tuple[datetime, datetime, int]] = field(default_factory=list)
    replaced: int = 0
    skipped: bool = False

    def summary(self) -> str:
        if self.skipped:
            return f"{self.dataset} {self.symbol} {self.timeframe}: already loaded ({self.rows} rows)"
        text = (
            f"{self.dataset} {self.symbol} {self.timeframe}: {self.rows} rows"
            f" from {self.first:%Y-%m-%d %H:%M} to {self.last:%Y-%m-%d %H:%M} UTC"
        )
        if self.replaced:
            text += f", replaced {self.replaced} stored rows"
        if self.gaps:
            missing = sum(g[2] for g in self.gaps)
            text += f"; {len(self.gaps)} gap(s), {missing} missing bar(s)"
        return text


class CandleImportError(ValueError):
    pass


def dataset_get_or_create(*, name: str, description: str = "", provenance: str = "") -> Dataset:
    dataset, created = Dataset.objects.get_or_create(
        name=name, defaults={"description": description, "provenance": provenance}
    )
    if not created and ((description and not dataset.description) or (provenance and not dataset.provenance)):
        dataset.description = dataset.description or description
        dataset.provenance = dataset.provenance or provenance
        dataset.save(update_fields=["description", "provenance", "updated_at"])
    return dataset


def _insert_candles(dataset_id: int, symbol: str, timeframe: str, parsed: ParsedCandles) -> None:
    """Plain batched INSERTs: the rows are validated already and Django's per-field
    preparation triples the load time of the shipped data (104k rows)."""
    quote = connection.ops.quote_name
    columns = ("dataset_id", "symbol", "timeframe", "open_time", "open", "high", "low", "close", "volume")
    sql = (
        f"INSERT INTO {quote(Candle._meta.db_table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    adapt_time = connection.ops.adapt_datetimefield_value
    rows = [
        (dataset_id, symbol, timeframe, adapt_time(r.open_time), r.open, r.high, r.low, r.close, r.volume)
        for r in parsed.rows
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE):
            cursor.executemany(sql, rows[start : start + BATCH_SIZE])


@transaction.atomic
def candles_store(
    *,
    dataset_name: str,
    symbol: str,
    timeframe: str,
    parsed: ParsedCandles,
    replace: bool = False,
    description: str = "",
    provenance: str = "",
) -> ImportReport:
    """Write validated candles in one transaction: all rows or none."""
    timeframe_seconds(timeframe)
    dataset = dataset_get_or_create(name=dataset_name, description=description, provenance=provenance)
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    stored = Candle.objects.filter(dataset=dataset, symbol=symbol, timeframe=timeframe)
    replaced = 0
    if replace:
        replaced, _ = stored.delete()
    else:
        times = [row.open_time for row in parsed.rows]
        if stored.filter(open_time__gte=times[0], open_time__lte=times[-1]).exists():
            raise CandleImportError(
                f"{dataset_name} already holds {symbol} {timeframe} candles between "
                f"{times[0].isoformat()} and {times[-1].isoformat()}; use replace (--replace) to overwrite"
            )
    _insert_candles(dataset.pk, symbol, timeframe, parsed)
    Dataset.objects.filter(pk=dataset.pk).update(revision=F("revision") + 1, updated_at=timezone.now())
    return ImportReport(
        dataset=dataset_name,
        symbol=symbol,
        timeframe=timeframe,
        rows=len(parsed.rows),
        first=parsed.rows[0].open_time,
        last=parsed.rows[-1].open_time,
        gaps=parsed.gaps,
        replaced=replaced,
    )


def candles_import(
    *,
    path: str | Path,
    dataset_name: str,
    symbol: str,
    timeframe: str,
    replace: bool = False,
    reject_gaps: bool = False,
    description: str = "",
    provenance: str = "",
) -> ImportReport:
    """Validate a whole CSV(.gz) file, then store it; raises CandleFileError before any write."""
    parsed = parse_candle_file(path, timeframe=timeframe, reject_gaps=reject_gaps)
    return candles_store(
        dataset_name=dataset_name,
        symbol=symbol,
        timeframe=timeframe,
        parsed=parsed,
        replace=replace,
        description=description,
        provenance=provenance,
    )


def shipped_files(directory: Path = SHIPPED_DATASETS_DIR) -> list[tuple[str, str, str, Path]]:
    """(dataset, symbol, timeframe, path) for every shipped file, e.g. binance-1h/BTCUSDT-1h.csv.gz."""
    found = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
        for path in sorted(folder.iterdir()):
            match = SHIPPED_FILE.match(path.name)
            if match:
                symbol = f"{match['base']}/{match['quote']}"
                found.append((folder.name, symbol, match["tf"], path))
    return found


def _file_row_count(path: Path) -> int:
    from marketdata.importing import open_text

    with open_text(path) as handle:
        return sum(1 for line in handle if line.strip()) - 1


def datasets_load_shipped(*, names: list[str] | None = None, force: bool = False) -> list[ImportReport]:
    """Load the datasets shipped in marketdata/datasets/. Idempotent: a symbol whose stored
    rows already match the file (same count) is skipped; a partial one is replaced."""
    reports = []
    for dataset_name, symbol, timeframe, path in shipped_files():
        if names and dataset_name not in names:
            continue
        stored = Candle.objects.filter(dataset__name=dataset_name, symbol=symbol, timeframe=timeframe).count()
        if stored and not force and stored == _file_row_count(path):
            reports.append(ImportReport(dataset_name, symbol, timeframe, rows=stored, skipped=True))
            continue
        reports.append(
            candles_import(
                path=path,
                dataset_name=dataset_name,
                symbol=symbol,
                timeframe=timeframe,
                replace=True,
                description=f"Hourly Binance spot candles ({timeframe}), shipped with Gauntlet",
                provenance=SHIPPED_PROVENANCE,
            )
        )
    return reports


def snapshot_fetch(
    *,
    source: str | PriceSource,
    symbols: list[str],
    at: datetime,
    dataset: str | None = None,
    timeframe: str | None = None,
) -> tuple[MarketSnapshot, str]:
    """The snapshot every agent of a round will see, and the dataset label to store it under.

    Raises a MarketDataError subclass (stale price, exchange down, no data) with the reason.
    """
    if isinstance(source, str):
        options = {}
        if dataset:
            options["dataset"] = dataset
        if timeframe:
            options["timeframe"] = timeframe
        source = get_source(source, **options)
    snapshot = source.snapshot(list(symbols), at)
    label = dataset or getattr(source, "dataset_label", lambda: "")()
    return snapshot, label or ""


def snapshot_store(*, snapshot: MarketSnapshot, dataset: str = "", rebuild: dict | None = None) -> MarketSnapshotRecord:
    """Store the snapshot a round's agents saw.

    `rebuild` (a replay source's rebuild_key(): its name, dataset and timeframe) says the
    snapshot is a function of (dataset, time): then only each symbol's summary is stored
    (mids, 24 h change) with that key, and snapshot_from_record rebuilds the whole snapshot,
    candles and indicators, from the dataset. A stored year of hourly rounds' candle
    windows would be gigabytes of the same bars over and over, and their JSON most of a
    replay round's time.
    """
    if rebuild is None:
        payload = snapshot.to_dict()
    else:  # the summary alone: the candles are never formatted
        payload = {
            "at": iso_utc(snapshot.at), "source": snapshot.source, "rebuild": dict(rebuild),
            "symbols": {symbol: entry.summary_dict() for symbol, entry in snapshot.symbols.items()},
        }
    record = MarketSnapshotRecord(at=snapshot.at, source=snapshot.source, dataset=dataset, payload=payload)
    return insert_rows(MarketSnapshotRecord, [record])[0]


def snapshot_take(
    *,
    source: str | PriceSource,
    symbols: list[str],
    at: datetime,
    dataset: str | None = None,
    timeframe: str | None = None,
) -> MarketSnapshotRecord:
    """Build the snapshot every agent of a round will see, and store it.

    Raises a MarketDataError subclass (stale price, exchange down, no data) with the
    reason; nothing is stored then. Not wrapped in a transaction: a live fetch may take
    seconds and must not hold one open; the single INSERT is atomic by itself.
    """
    snapshot, label = snapshot_fetch(source=source, symbols=symbols, at=at, dataset=dataset, timeframe=timeframe)
    return snapshot_store(snapshot=snapshot, dataset=label)


def snapshot_from_record(record: MarketSnapshotRecord) -> MarketSnapshot:
    """The snapshot as the round's agents saw it: stored whole, or rebuilt from its dataset."""
    payload = record.payload
    rebuild = payload.get("rebuild")
    if not rebuild:
        return MarketSnapshot.from_dict(payload)
    options = {key: value for key, value in rebuild.items() if key != "source"}
    source = get_source(rebuild["source"], **options)
    return source.snapshot(list(payload["symbols"]), MarketSnapshot.from_dict(payload).at)
