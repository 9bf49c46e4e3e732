"""Faults: a worker killed with SIGKILL mid-tournament, and two workers handed the same run.

Needs PostgreSQL (DATABASE_URL=postgres://...); Redis too when REDIS_URL is set (the shared
provider limits then live there). Workers are subprocesses of this module's `__main__`:
`run_tournament`'s own loop (tournaments.management.commands.run_tournament.work), kept
polling until the tournament is over (as a Celery worker waits for redeliveries), with a
short run lease so a dead worker's run is taken over in seconds. Model agents answer from
bench/fake_llm_server.py served by this test process, which counts every request.

"Invoked once" as in competitions/tests/test_celery_worker.py: an Invocation row is written
only when the answer arrives, so a call in flight at the kill left no row and is made again
on resume. The server sees at most one extra request per model agent; every (run, round,
agent) has exactly one Invocation row; every decision is filled once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

if __name__ == "__main__":  # a worker subprocess (_worker_main): Django is set up before models load
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gauntlet.settings")
    import django

    django.setup()

import pytest
from django.db import connection

from agents.models import Invocation
from competitions.models import Participant, Round
from tournaments import runs, services
from tournaments.models import Tournament, TournamentRun
from tournaments.tests.conftest import START, store_market, tournament_fields
from trading.models import Fill

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 3
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _worker_main(tournament_id: int) -> None:
    """A worker process: claim and execute runs until the tournament is over."""
    from django.conf import settings

    settings.TOURNAMENT_RUN_LEASE_SECONDS = LEASE_SECONDS
    from tournaments.management.commands.run_tournament import work
    from tournaments.models import Tournament

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        work(tournament_id)
        if Tournament.objects.get(pk=tournament_id).status != "running":
            return
        time.sleep(0.2)  # a run another worker holds: look again once its lease may have ended


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}{port}/{quote(db['NAME'])}"


class Worker:
    def __init__(self, tournament_id: int, log_dir: Path, name: str):
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 -- written by the worker until it ends
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gauntlet.settings", "DATABASE_URL": _database_url(),
               "DATABASE_CONN_MAX_AGE": "0", "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tournaments.tests.test_faults", str(tournament_id)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.owner = f"local:{os.uname().nodename}:{self.process.pid}"

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-3000:]


@pytest.fixture
def fake_llm():
    sys.path.insert(0, str(ROOT / "bench"))
    from fake_llm_server import FakeLLMServer

    with FakeLLMServer(latency=0.15, open_quantity="0.001") as server:
        yield server


@pytest.fixture
def start_worker(postgres_only, tmp_path):
    started: list[Worker] = []

    def start(tournament_id: int) -> Worker:
        worker = Worker(tournament_id, tmp_path, f"worker-{len(started)}")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def test_a_worker_killed_mid_run_leaves_its_run_to_another_and_nothing_runs_twice(fake_llm, start_worker):
    store_market()
    entries = [
        {"name": "Opener", "llm_provider": "openai_compatible", "llm_model": "open-m",
         "llm_config": {"base_url": fake_llm.base_url}},
        {"name": "Holder", "llm_provider": "openai_compatible", "llm_model": "hold-m",
         "llm_config": {"base_url": fake_llm.base_url}},
        {"name": "Dice", "llm_provider": "baseline", "llm_model": "random"},
    ]
    tournament = services.tournament_create(**tournament_fields(
        entries=entries, instances=1, max_attempts=3,
        windows_spec={"start": START.isoformat(), "count": 3, "length_minutes": 8 * 60, "step_minutes": 8 * 60},
    ))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    doomed = start_worker(tournament.pk)
    # kill it once it is part-way through a run: rounds done, more to come
    deadline = time.monotonic() + 60
    while not TournamentRun.objects.filter(tournament=tournament, claimed_by=doomed.owner, status="running",
                                           rounds_done__gte=2).exists():
        assert time.monotonic() < deadline and doomed.process.poll() is None, doomed.log()
        time.sleep(0.05)
    doomed.kill()
    killed_run = TournamentRun.objects.get(tournament=tournament, claimed_by=doomed.owner, status="running")
    assert killed_run.rounds_done < 9

    survivor = start_worker(tournament.pk)
    deadline = time.monotonic() + 180
    while Tournament.objects.get(pk=tournament.pk).status == "running":
        assert time.monotonic() < deadline and survivor.process.poll() in (None, 0), survivor.log()
        time.sleep(0.2)

    assert Tournament.objects.get(pk=tournament.pk).status == "completed", survivor.log()
    all_runs = list(TournamentRun.objects.filter(tournament=tournament))
    assert {(r.status, r.rounds_done) for r in all_runs} == {("completed", 9)}  # 8 hourly rounds + final
    killed_run.refresh_from_db()
    assert killed_run.claimed_by == survivor.owner and killed_run.attempts == 2

    competitions = [r.competition_id for r in all_runs]
    agent_rounds = Round.objects.filter(competition_id__in=competitions, status="completed").count()
    participants = Participant.objects.filter(competition_id__in=competitions)
    # one Invocation row per (run, round, agent) that is invoked (the final round invokes none)
    rows = Counter(Invocation.objects.filter(participant__in=participants).values_list("participant_id", "round_id"))
    assert set(rows.values()) == {1}
    per_run = 8 * len(entries)
    assert len(rows) == per_run * len(all_runs) and agent_rounds == 9 * len(all_runs)
    # the model server: each (run, round, agent) asked once, plus at most the one call lost in the kill
    for model in ("open-m", "hold-m"):
        asked = fake_llm.requests_by_model.get(model, 0)
        assert 8 * len(all_runs) <= asked <= 8 * len(all_runs) + 1, (model, asked)
    # each decision filled once: the opener's every successful answer opened exactly one long
    opener = participants.filter(name="Opener")
    answered = Invocation.objects.filter(participant__in=opener, status="success").count()
    opener_fills = Fill.objects.filter(account__participant__in=opener, closes=False)
    assert answered == 8 * len(all_runs)
    assert opener_fills.count() == answered
    assert len(set(opener_fills.values_list("account_id", "market_time"))) == answered


def test_two_workers_given_the_same_run_execute_it_once(postgres_only):
    """Two owners race for one run at the same moment (a redelivered task, a second command):
    one claims and plays it, the other gets nothing, and the rounds are played once."""
    store_market()
    tournament = services.tournament_create(**tournament_fields(instances=1, windows_spec={
        "start": START.isoformat(), "count": 1, "length_minutes": 240, "step_minutes": 240}))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run_id = TournamentRun.objects.get(tournament=tournament).pk
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def worker(owner: str) -> None:
        try:
            barrier.wait()
            claimed = runs.run_claim(run_id=run_id, owner=owner)
            outcomes[owner] = runs.run_execute(run_id=run_id, owner=owner).status if claimed else None
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert Counter(outcomes.values()) == Counter({"completed": 1, None: 1})
    run = TournamentRun.objects.get(pk=run_id)
    assert (run.status, run.attempts, run.rounds_done) == ("completed", 1, 5)
    assert run.claimed_by == next(owner for owner, status in outcomes.items() if status)
    assert Round.objects.filter(competition_id=run.competition_id).count() == 5


if __name__ == "__main__":
    _worker_main(int(sys.argv[1]))
