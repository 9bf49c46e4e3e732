"""Store the per-agent statistics of runs completed before they were stored (issue 15)."""

from django.core.management.base import BaseCommand

from tournaments.results import results_backfill


class Command(BaseCommand):
    help = "Add per-agent statistics to completed tournament runs that lack them (all tournaments, or one)."

    def add_arguments(self, parser):
        parser.add_argument("tournament_id", nargs="?", type=int, help="Only this tournament")

    def handle(self, *args, tournament_id=None, **options):
        filled = results_backfill(tournament_id=tournament_id)
        self.stdout.write(f"{filled} run(s) filled")
