"""The in-process round runner in the foreground: what Celery beat and a worker do, without them."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from competitions.dispatch import InProcessRunner


class Command(BaseCommand):
    help = "Run live rounds when due and advance active replays at a pace, until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--pace", type=float, default=settings.DEMO_ROUND_SECONDS,
                            help="wall seconds between replay rounds")

    def handle(self, *args, pace, **options):
        runner = InProcessRunner(replay_pace_seconds=pace)
        runner.start()
        self.stdout.write(f"in-process runner started (replay pace {pace}s); Ctrl-C to stop")
        try:
            while runner.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            runner.stop()
            runner.join(timeout=30)
