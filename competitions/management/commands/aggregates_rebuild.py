"""Recompute the stored aggregates (competitions.aggregates) from scratch.

Pages never need this to be right (they fold in whatever the stored totals have not seen),
only to be fast; run it after restoring or editing ledger rows by hand.
"""

from django.core.management.base import BaseCommand
from django.db import transaction

from competitions.aggregates import aggregates_rebuild


class Command(BaseCommand):
    help = "Recompute invocation action counts and participant aggregates from every row."

    def add_arguments(self, parser):
        parser.add_argument(
            "--competition", type=int, action="append", dest="competition_ids",
            help="only this competition (repeat for more); default: all",
        )  # fmt: skip

    def handle(self, *args, competition_ids=None, **options):
        with transaction.atomic():
            folded = aggregates_rebuild(competition_ids=competition_ids)
        self.stdout.write(f"rebuilt the aggregates of {folded} participants")
