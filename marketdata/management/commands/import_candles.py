"""Import a user's candle CSV(.gz) into a dataset, all rows or none."""

from django.core.management.base import BaseCommand, CommandError

from marketdata.importing import CandleFileError
from marketdata.selectors import symbol_from_path
from marketdata.services import CandleImportError, candles_import


class Command(BaseCommand):
    help = (
        "Import FILE (timestamp,open,high,low,close,volume; timestamp = bar open, ISO-8601 UTC "
        "or epoch ms; .csv or .csv.gz) into a dataset. Every row is validated first; on any "
        "error nothing is written."
    )

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--dataset", required=True, help="dataset name (created if missing)")
        parser.add_argument("--symbol", required=True, help='e.g. "BTC/USDT" (also BTC-USDT or BTCUSDT)')
        parser.add_argument("--timeframe", required=True, help="e.g. 1h, 5m, 1d")
        parser.add_argument("--replace", action="store_true", help="replace stored rows of this series")
        parser.add_argument("--reject-gaps", action="store_true", help="treat missing bars as errors")
        parser.add_argument("--description", default="")

    def handle(self, *args, file, dataset, symbol, timeframe, replace, reject_gaps, description, **options):
        try:
            report = candles_import(
                path=file,
                dataset_name=dataset,
                symbol=symbol_from_path(symbol),
                timeframe=timeframe,
                replace=replace,
                reject_gaps=reject_gaps,
                description=description,
            )
        except (CandleFileError, CandleImportError, ValueError) as exc:
            raise CommandError(f"{exc}\nNothing was imported.") from exc
        for start, end, missing in report.gaps:
            self.stdout.write(
                self.style.WARNING(
                    f"gap: {missing} missing {timeframe} bar(s) between {start.isoformat()} and {end.isoformat()}"
                )
            )
        self.stdout.write(self.style.SUCCESS(report.summary()))
