"""Real Celery workers on the "tournaments" queue play a tournament started through the service.

Needs PostgreSQL and Redis (DATABASE_URL=postgres://... REDIS_URL=redis://.../n). Each worker
is `celery -A gauntlet worker -Q tournaments` in its own subprocess (its own -n node name;
prefetch 1 and acks_late as configured; the prefork pool with one process, and in the first
test a threads pool of two beside it) on pytest's test database; the tests are transactional so the workers see their rows. Model agents answer
from bench/fake_llm_server.py served by this test process, which counts every request.

"Invoked once" as in test_faults.py: an Invocation row is written only when the answer
arrives, so a call in flight when a worker is killed left no row and is made again on resume:
the server sees at most one extra request per model agent in that test, none in the other.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from agents.models import Invocation
from competitions.models import Participant, Round
from gauntlet.celery import app
from tournaments import services
from tournaments.models import Tournament, TournamentRun
from tournaments.tests.conftest import START, store_market, tournament_fields
from trading.models import Fill

ROOT = Path(__file__).resolve().parents[2]
HOURS = 8  # rounds per run with agents (plus the final settling round)
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'])}"


class CeleryWorker:
    """One `celery worker` process group; its node name is in the owner of every run it claims."""

    def __init__(self, log_dir: Path, extra_env: dict[str, str], pool: str = "prefork", concurrency: int = 1):
        self.hostname = f"t-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = log_dir / f"{self.hostname}.log"
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gauntlet.settings", "DATABASE_URL": _database_url(),
               "DATABASE_CONN_MAX_AGE": "0", "PYTHONUNBUFFERED": "1", **extra_env}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "gauntlet", "worker", "-Q", "tournaments",
                 "--pool", pool, "--concurrency", str(concurrency), "--hostname", self.hostname, "--without-heartbeat",
                 "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def owns(self, claimed_by: str) -> bool:
        return claimed_by.startswith(f"celery:{self.hostname}:")

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), as the OOM killer or `docker kill` would."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@pytest.fixture
def fake_llm():
    sys.path.insert(0, str(ROOT / "bench"))
    from fake_llm_server import FakeLLMServer

    with FakeLLMServer(latency=0.15, open_quantity="0.001") as server:
        yield server


@pytest.fixture
def celery_workers(postgres_only, tmp_path):
    """start(pools, **env) -> one worker per (pool, concurrency), each answering a ping; every one
    is stopped (killed if need be) after the test."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis for the Celery broker (set REDIS_URL)")
    with app.connection_for_write() as broker:  # tasks a killed earlier session left behind
        broker.default_channel.queue_purge("tournaments")
    started: list[CeleryWorker] = []

    def start(pools: list[tuple[str, int]], **extra_env: str) -> list[CeleryWorker]:
        workers = [CeleryWorker(tmp_path, extra_env, pool, concurrency) for pool, concurrency in pools]
        started.extend(workers)
        deadline = time.monotonic() + 60
        waiting = {w.hostname: w for w in workers}
        while waiting:
            for answer in app.control.ping(destination=list(waiting), timeout=0.5) or []:
                for hostname in answer:
                    waiting.pop(hostname, None)
            for worker in waiting.values():
                assert worker.alive() and time.monotonic() < deadline, worker.log()
        return workers

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def _model_lineup(base_url: str) -> list[dict]:
    return [
        {"name": "Opener", "llm_provider": "openai_compatible", "llm_model": "open-m",
         "llm_config": {"base_url": base_url}},
        {"name": "Holder", "llm_provider": "openai_compatible", "llm_model": "hold-m",
         "llm_config": {"base_url": base_url}},
        {"name": "Dice", "llm_provider": "baseline", "llm_model": "random"},
    ]


def _start(base_url: str, windows: int) -> Tournament:
    store_market()
    tournament = services.tournament_create(**tournament_fields(
        entries=_model_lineup(base_url), instances=2, max_attempts=3,
        windows_spec={"start": START.isoformat(), "count": windows, "length_minutes": HOURS * 60,
                      "step_minutes": 4 * 60},
    ))
    services.tournament_start(tournament_id=tournament.pk, enqueue=True)  # one task per run, after commit
    return tournament


def _wait_until_over(tournament: Tournament, workers: list[CeleryWorker], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while Tournament.objects.get(pk=tournament.pk).status == "running":
        alive = [w for w in workers if w.alive()]
        assert alive and time.monotonic() < deadline, "\n\n".join(w.log() for w in workers)
        time.sleep(0.2)


def _assert_played_once(tournament: Tournament, fake_llm, lost_calls_allowed: int) -> list[TournamentRun]:
    """Every run completed; each (run, round, agent) has one Invocation, each decision one fill."""
    assert Tournament.objects.get(pk=tournament.pk).status == "completed"
    all_runs = list(TournamentRun.objects.filter(tournament=tournament))
    assert {(r.status, r.rounds_done) for r in all_runs} == {("completed", HOURS + 1)}
    competitions = [r.competition_id for r in all_runs]
    assert Round.objects.filter(competition_id__in=competitions, status="completed").count() == (HOURS + 1) * len(all_runs)
    participants = Participant.objects.filter(competition_id__in=competitions)
    rows = Counter(Invocation.objects.filter(participant__in=participants).values_list("participant_id", "round_id"))
    assert set(rows.values()) == {1}
    assert len(rows) == HOURS * 3 * len(all_runs)  # the final round invokes no one
    for model in ("open-m", "hold-m"):
        asked = fake_llm.requests_by_model.get(model, 0)
        assert HOURS * len(all_runs) <= asked <= HOURS * len(all_runs) + lost_calls_allowed, (model, asked)
    opener = participants.filter(name="Opener")
    answered = Invocation.objects.filter(participant__in=opener, status="success").count()
    opener_fills = Fill.objects.filter(account__participant__in=opener, closes=False)
    assert answered == HOURS * len(all_runs)
    assert opener_fills.count() == answered
    assert len(set(opener_fills.values_list("account_id", "market_time"))) == answered
    return all_runs


def test_two_celery_workers_share_a_started_tournament_and_play_each_run_once(celery_workers, fake_llm):
    # the production default (prefork: a process per run) and TOURNAMENT_WORKER_POOL=threads
    workers = celery_workers([("prefork", 1), ("threads", 2)])
    tournament = _start(fake_llm.base_url, windows=3)  # 6 runs

    _wait_until_over(tournament, workers, 90)

    all_runs = _assert_played_once(tournament, fake_llm, lost_calls_allowed=0)
    assert {r.attempts for r in all_runs} == {1}
    by_worker = Counter(next(w.hostname for w in workers if w.owns(r.claimed_by)) for r in all_runs)
    assert set(by_worker) == {w.hostname for w in workers}, by_worker  # both workers played runs


def test_a_celery_worker_killed_mid_run_leaves_its_run_to_the_other(celery_workers, fake_llm):
    """SIGKILL takes the whole worker, so its task is never acknowledged nor rejected. The run
    is resumed by the other worker: released once its lease runs out (tournament_runs_recover,
    here when the survivor finishes a run of the tournament) or redelivered by the broker after
    the visibility timeout, both shortened here."""
    workers = celery_workers([("prefork", 1), ("prefork", 1)], TOURNAMENT_RUN_LEASE_SECONDS="5", CELERY_VISIBILITY_TIMEOUT_SECONDS="20",
                             CELERY_UNACKED_RESTORE_SECONDS="1")
    tournament = _start(fake_llm.base_url, windows=2)  # 4 runs

    deadline = time.monotonic() + 60
    while not (held := TournamentRun.objects.filter(tournament=tournament, status="running", rounds_done__gte=2)
               .values_list("pk", "claimed_by").first()):
        assert time.monotonic() < deadline and all(w.alive() for w in workers), "\n\n".join(w.log() for w in workers)
        time.sleep(0.05)
    killed_run_id, owner = held
    doomed = next(w for w in workers if w.owns(owner))
    survivor = next(w for w in workers if w is not doomed)
    doomed.kill()
    assert TournamentRun.objects.get(pk=killed_run_id).rounds_done < HOURS + 1

    _wait_until_over(tournament, [survivor], 90)

    all_runs = _assert_played_once(tournament, fake_llm, lost_calls_allowed=1)
    killed_run = next(r for r in all_runs if r.pk == killed_run_id)
    assert survivor.owns(killed_run.claimed_by) and killed_run.attempts == 2, survivor.log()
    assert all(survivor.owns(r.claimed_by) or doomed.owns(r.claimed_by) for r in all_runs)
