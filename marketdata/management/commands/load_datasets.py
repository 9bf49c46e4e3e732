"""Load the datasets shipped in marketdata/datasets/ (idempotent; `make demo` runs it)."""

import time

from django.core.management.base import BaseCommand

from marketdata.services import datasets_load_shipped


class Command(BaseCommand):
    help = "Load the shipped candle datasets (binance-1h). Skips symbols already fully loaded."

    def add_arguments(self, parser):
        parser.add_argument("names", nargs="*", help="dataset names to load (default: all shipped)")
        parser.add_argument("--force", action="store_true", help="reload even when already loaded")

    def handle(self, *args, names, force, **options):
        started = time.monotonic()
        reports = datasets_load_shipped(names=names or None, force=force)
        for report in reports:
            self.stdout.write(report.summary())
        loaded = sum(r.rows for r in reports if not r.skipped)
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(reports)} series, {loaded} rows loaded in {time.monotonic() - started:.1f}s"
            )
        )
