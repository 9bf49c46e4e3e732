"""A real Celery worker consuming only the "tournaments" queue plays a whole tournament.

Needs PostgreSQL and Redis (DATABASE_URL=postgres://... REDIS_URL=redis://.../n). The worker
is `celery -A gauntlet worker -Q tournaments` in a subprocess on pytest's test database; the
test is transactional so the worker sees its rows.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from gauntlet.celery import app
from tournaments import services
from tournaments.models import Tournament, TournamentRun
from tournaments.tests.conftest import store_market, tournament_fields

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'])}"


@pytest.fixture
def tournament_worker(postgres_only, tmp_path):
    if not settings.REDIS_URL:
        pytest.skip("needs Redis for the Celery broker (set REDIS_URL)")
    hostname = f"gauntlet-tournaments-{uuid.uuid4().hex[:8]}@localhost"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gauntlet.settings", "DATABASE_URL": _database_url(),
           "DATABASE_CONN_MAX_AGE": "0", "PYTHONUNBUFFERED": "1"}
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gauntlet", "worker", "-Q", "tournaments", "--pool", "threads",
             "--concurrency", "2", "--hostname", hostname, "--without-heartbeat", "--without-mingle",
             "--without-gossip", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 40
            while not app.control.ping(destination=[hostname], timeout=0.5):
                assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()[-3000:]
            yield lambda: log_path.read_text(errors="replace")[-3000:]
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)


def test_a_started_tournament_is_played_by_a_worker_on_the_tournaments_queue(tournament_worker):
    store_market()
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=True)

    deadline = time.monotonic() + 120
    while Tournament.objects.get(pk=tournament.pk).status != "completed":
        assert time.monotonic() < deadline, tournament_worker()
        time.sleep(0.5)
    runs = TournamentRun.objects.filter(tournament=tournament)
    assert {(r.status, r.attempts, r.rounds_done) for r in runs} == {("completed", 1, 5)}
    assert all(r.claimed_by.startswith("celery:") for r in runs)
