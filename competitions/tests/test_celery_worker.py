"""A real Celery worker runs live rounds through Redis, and survives being killed mid-round.

Needs PostgreSQL and Redis (CI: DATABASE_URL=postgres://... REDIS_URL=redis://.../15).
The worker is `celery -A gauntlet worker` in a subprocess, started through Celery's own
command-line entry point by this module's `__main__` block, which changes one thing: live
rounds read a seeded synthetic market instead of the exchange (no network in tests).
It connects to pytest's test database; the tests are transactional so it sees their rows.

What "each agent invoked once" means when a worker dies mid-invocation: an Invocation row
is written only when the agent's answer arrives, so a call in flight when the worker was
killed left no row and is made again by the resumed round. The model server therefore sees
exactly two requests per agent (the lost one and the repeat), the round keeps exactly one
Invocation row per agent, and exactly one fill per decision.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYNTHETIC_SEED = 11
LEASE_SECONDS = 3

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _synthetic_start(now):
    """Ten days of hourly history before now, aligned to the hour (same in test and worker)."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(days=10)


def _worker_main(argv: list[str]) -> None:
    """Entry point of the worker subprocess: Celery's CLI with live prices from the synthetic source."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gauntlet.settings")
    import django

    django.setup()
    from django.utils import timezone

    from competitions.rounds import run as rounds
    from marketdata.sources import get_source

    source = get_source("synthetic", seed=SYNTHETIC_SEED, start=_synthetic_start(timezone.now()))
    rounds.price_source_for = lambda competition: source
    from celery.bin.celery import main

    sys.argv = ["celery", "-A", "gauntlet", "worker", *argv]
    main()


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
    sys.exit(0)


# --- the tests (imported by pytest only below this line) ----------------------------------

from django.conf import settings
from django.db import connection
from django.utils import timezone

from agents.models import Invocation
from bench.fake_llm_server import FakeLLMServer
from competitions import services
from competitions.models import Round
from competitions.tasks import competition_round_due
from competitions.tests.factories import CompetitionFactory
from gauntlet.celery import app
from trading.models import Fill, Order


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"])
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'])}"


class Worker:
    """One worker subprocess in its own process group; `kill()` is SIGKILL to all of it."""

    def __init__(self, log_dir: Path):
        self.hostname = f"gauntlet-test-{uuid.uuid4().hex[:8]}@localhost"
        self.log_path = log_dir / f"{self.hostname.split('@')[0]}.log"
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "gauntlet.settings",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "CELERY_RESULT_BACKEND": settings.CELERY_RESULT_BACKEND or settings.REDIS_URL,
            "ROUND_LEASE_SECONDS": str(LEASE_SECONDS),
            "DATABASE_CONN_MAX_AGE": "0",
            "PYTHONUNBUFFERED": "1",
        })
        self._log = open(self.log_path, "wb")  # noqa: SIM115 -- the worker writes to it until kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "competitions.tests.test_celery_worker",
             "--pool", "threads", "--concurrency", "2", "--loglevel", "INFO",
             "--hostname", self.hostname, "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self, timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited with {self.process.returncode}:\n{self.log()}")
            if app.control.ping(destination=[self.hostname], timeout=0.5):
                return
        pytest.fail(f"the worker did not answer a ping within {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


@pytest.fixture
def workers(postgres_only, transactional_db):
    """Start workers with `workers()`; every one is killed at teardown, whatever happened."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis for the Celery broker (set REDIS_URL, e.g. redis://127.0.0.1:6379/15)")
    started: list[Worker] = []
    app.control.purge()  # stale messages from an earlier run must not be delivered here
    with tempfile.TemporaryDirectory(prefix="gauntlet-worker-") as log_dir:

        def start() -> Worker:
            worker = Worker(Path(log_dir))
            started.append(worker)
            worker.wait_ready()
            return worker

        try:
            yield start
        finally:
            for worker in started:
                worker.kill()


@pytest.fixture
def fake_model():
    with FakeLLMServer(latency=0.2) as server:
        yield server


def _live_competition(**fields):
    now = timezone.now().replace(second=0, microsecond=0)
    defaults = {"mode": "live", "dataset": "", "start_time": now - timedelta(minutes=1),
                "end_time": now + timedelta(days=1), "invocation_interval_minutes": 60,
                "symbols": ["BTC/USDT"]}
    defaults.update(fields)
    return CompetitionFactory(**defaults)


def _round_due(competition, timeout: float) -> int | None:
    return competition_round_due.delay(competition.pk).get(timeout=timeout)


def test_a_live_round_fired_through_the_broker_is_completed_by_the_worker(workers):
    competition = _live_competition()
    opener = services.participant_register(
        competition_id=competition.pk, name="Opener", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": [{"reasoning": "in", "actions": [
            {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "0.01", "leverage": "1"}]}]},
    )
    services.participant_register(
        competition_id=competition.pk, name="Holder", llm_provider="baseline", llm_model="flat"
    )
    services.competition_start(competition_id=competition.pk)
    workers()

    round_id = _round_due(competition, timeout=40)

    round_ = Round.objects.get(pk=round_id)
    assert (round_.number, round_.status, round_.phase) == (0, "completed", "completed")
    assert round_.market_time == competition.start_time
    assert Invocation.objects.filter(round=round_).count() == 2
    fill = Fill.objects.get()
    assert fill.account.participant_id == opener.pk and str(fill.quantity.normalize()) == "0.01"
    # beat firing again within the interval finds the round done
    assert _round_due(competition, timeout=20) is None
    assert Round.objects.count() == 1 and Fill.objects.count() == 1


def test_a_worker_killed_mid_round_is_resumed_by_the_next_worker_without_duplicates(workers, fake_model):
    competition = _live_competition()
    models = ["open-a", "open-b", "hold-c"]
    for model in models:
        services.participant_register(
            competition_id=competition.pk, name=model, llm_provider="openai_compatible", llm_model=model,
            llm_config={"base_url": fake_model.base_url, "timeout_seconds": 30, "max_retries": 0},
        )
    services.competition_start(competition_id=competition.pk)
    fake_model.latency = 20.0  # long enough that the worker is surely mid-invocation when killed
    first = workers()
    competition_round_due.delay(competition.pk)
    assert fake_model.wait_for_requests(len(models), timeout=30), first.log()

    first.kill()
    round_ = Round.objects.get(competition=competition)
    assert (round_.status, round_.phase) == ("running", "bars")  # snapshot taken, no answer recorded
    assert not Invocation.objects.exists()

    # beat's next tick after the dead worker's lease ran out: a new worker resumes the round
    fake_model.latency = 0.2
    deadline = time.monotonic() + LEASE_SECONDS + 5
    while Round.objects.get(pk=round_.pk).lease_expires_at > timezone.now():
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.2)
    workers()
    assert _round_due(competition, timeout=60) == round_.pk

    round_.refresh_from_db()
    assert (round_.status, round_.phase) == ("completed", "completed")
    assert round_.snapshot_id is not None
    invocations = Invocation.objects.filter(round=round_)
    assert sorted(invocations.values_list("participant__llm_model", flat=True)) == sorted(models)
    assert set(invocations.values_list("status", flat=True)) == {"success"}
    # the killed worker's calls were lost in flight and made once more: two requests per agent
    assert fake_model.requests_by_model == {model: 2 for model in models}
    fills = Fill.objects.filter(account__participant__competition=competition)
    assert sorted(fills.values_list("account__participant__llm_model", flat=True)) == ["open-a", "open-b"]
    assert Order.objects.count() == 2
    # every agent saw the snapshot the first worker took
    assert set(invocations.values_list("snapshot_id", flat=True)) == {round_.snapshot_id}
