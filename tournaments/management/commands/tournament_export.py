"""Write a tournament's reproducibility bundle (JSON lines), or its runs/invocations as CSV or JSON."""

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from tournaments import bundle
from tournaments.models import Tournament


class Command(BaseCommand):
    help = "Export a tournament: --what bundle (JSON lines: header, then the decision cache), runs or invocations."

    def add_arguments(self, parser):
        parser.add_argument("tournament_id", type=int)
        parser.add_argument("--what", choices=["bundle", "runs", "invocations"], default="bundle")
        parser.add_argument("--format", choices=["json", "csv"], default="json", help="for runs and invocations")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, *args, tournament_id, what, format, output, **options):
        if not Tournament.objects.filter(pk=tournament_id).exists():
            raise CommandError(f"no tournament with id {tournament_id}")
        if what == "bundle":
            text = bundle.bundle_lines(bundle.bundle_export(tournament_id=tournament_id))
        else:
            rows, columns = (
                (bundle.run_rows(tournament_id), bundle.RUN_COLUMNS) if what == "runs"
                else (bundle.invocation_rows(tournament_id), bundle.INVOCATION_COLUMNS)
            )
            text = bundle.rows_csv(rows, columns) if format == "csv" else json.dumps(rows, indent=1, default=str) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stderr.write(f"wrote {what} of tournament {tournament_id} to {output}")
        else:
            sys.stdout.write(text)
