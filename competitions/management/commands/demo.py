"""`make demo`: shipped data, the demo competition, rounds on a thread, and the web server.

With DEMO_LOCAL_MODEL=1 and no DEMO_LOCAL_BASE_URL it also starts the shipped local model
(SmolLM2-135M on llama.cpp's server, from .venv-llm) on a free loopback port for as long as
the demo runs, so a real model trades without any API key.
"""

import subprocess
from pathlib import Path

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
        server = self._start_local_model() if wants_shipped_model() and not no_server else None
        try:
            if server is None:
                call_command("demo_setup")
            else:
                call_command("demo_setup", local_base_url=server.base_url, local_model=server.model)
            if not no_server:
                self._serve(addrport)
        finally:
            if server is not None:
                from gauntlet.local_model import local_model_stop

                local_model_stop(server)

    def _start_local_model(self):
        from gauntlet import local_model

        if local_model.venv_python() is None:
            self.stdout.write("Building .venv-llm for the local model: `make llm` (~15 min the first time on 2 cores)")
            subprocess.run(["make", "llm"], cwd=settings.BASE_DIR, check=True)
        log_path = Path(settings.BASE_DIR) / "artifacts" / "demo-local-model.log"
        server = local_model.local_model_start(log_path=log_path)
        self.stdout.write(
            f"Local model {server.model} serving at {server.base_url} (log: {log_path}); "
            "on 2 cores it takes minutes per decision, and rounds wait for it."
        )
        return server

    def _serve(self, addrport):
        if uses_celery():
            self.stdout.write("Rounds run on Celery: start `celery -A gauntlet worker` and `celery -A gauntlet beat`.")
        else:
            InProcessRunner(replay_pace_seconds=settings.DEMO_ROUND_SECONDS).start()
            self.stdout.write(f"Rounds run in this process, one every {settings.DEMO_ROUND_SECONDS:g} s.")
        self.stdout.write(f"Open http://{addrport}/ to watch the competition (admin: http://{addrport}/admin/).")
        call_command("runserver", addrport, use_reloader=False)


def wants_shipped_model() -> bool:
    """DEMO_LOCAL_MODEL=1 without a base URL means the model shipped in .venv-llm."""
    return settings.DEMO_LOCAL_MODEL == "1" and not settings.DEMO_LOCAL_BASE_URL
