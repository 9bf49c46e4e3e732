"""`make demo`: shipped data, the demo competition, rounds on a thread, and the web server."""

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from competitions.dispatch import InProcessRunner, uses_celery


class Command(BaseCommand):
    help = "Load the shipped market data, set up the demo competition and serve it with rounds running."

    def add_arguments(self, parser):
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-server", action="store_true", help="set up only; do not serve")

    def handle(self, *args, addrport, no_server, **options):
        call_command("load_datasets")
        call_command("demo_setup")
        if no_server:
            return
        if uses_celery():
            self.stdout.write("Rounds run on Celery: start `celery -A gauntlet worker` and `celery -A gauntlet beat`.")
        else:
            InProcessRunner(replay_pace_seconds=settings.DEMO_ROUND_SECONDS).start()
            self.stdout.write(f"Rounds run in this process, one every {settings.DEMO_ROUND_SECONDS:g} s.")
        self.stdout.write(f"Open http://{addrport}/ to watch the competition.")
        call_command("runserver", addrport, use_reloader=False)
