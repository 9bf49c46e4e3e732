"""Make a draft tournament from a bundle file and add its recorded answers to the decision cache."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from gauntlet.errors import DomainError
from tournaments import bundle
from tournaments.models import CacheMode


class Command(BaseCommand):
    help = (
        "Import a tournament bundle (from tournament_export) as a draft; --cache-mode read_only replays it "
        "from the recorded answers only. Then: run_tournament ID."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="bundle file (JSON lines, or the API's JSON object)")
        parser.add_argument("--cache-mode", choices=CacheMode.values, help="override the bundle's cache mode")
        parser.add_argument("--allow-other-data", action="store_true",
                            help="import even if the local dataset's checksum differs")

    def handle(self, *args, path, cache_mode, allow_other_data, **options):
        try:
            with open(path, encoding="utf-8") as handle:
                parsed = bundle.bundle_parse(handle.read())
            with transaction.atomic():
                tournament, warnings = bundle.bundle_import(bundle=parsed, cache_mode=cache_mode,
                                                            allow_other_data=allow_other_data)
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc}") from exc
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(
            f"imported tournament {tournament.pk} ({tournament.name}) as a draft, cache {tournament.cache_mode}, "
            f"{len(parsed.get('cache') or [])} recorded answers; run it with: manage.py run_tournament {tournament.pk}"
        )
