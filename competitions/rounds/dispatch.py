"""Who runs rounds: Celery (production) or a thread in this process (the embedded default).

`ROUND_RUNNER=celery` (the default when a broker is configured): beat fires live rounds,
tasks run replays and triggered rounds. `ROUND_RUNNER=inprocess` (the default without
Redis): `InProcessRunner` does beat's and the worker's job on one background thread, with
the very same services, so the demo needs nothing but Python.

`round_trigger` (run the next round now) and the worker heartbeat live here too: every
door that runs rounds goes through this module or competitions.tasks, which calls it.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, transaction
from django.utils import timezone

from gauntlet.errors import ConflictError

from .. import services
from ..models import Competition, Round
from .claim import RoundBusy
from .clock import live_round_due, next_round_number, round_market_time, round_number_at
from .replay import replay_run
from .run import round_run

logger = logging.getLogger(__name__)

# the cache key the health check reads (gauntlet.api): when a worker (or this process's
# runner) last said it is alive
WORKER_HEARTBEAT_KEY = "gauntlet:worker-heartbeat"

_replay_threads: dict[int, threading.Thread] = {}
_replay_lock = threading.Lock()


def uses_celery() -> bool:
    return settings.ROUND_RUNNER == "celery"


def worker_heartbeat() -> None:
    cache.set(WORKER_HEARTBEAT_KEY, timezone.now().isoformat(), timeout=None)


def round_trigger(*, competition_id: int) -> Round | None:
    """Run the next round now (API and admin, for debugging): live at the wall clock, replay at its clock."""
    competition = Competition.objects.get(pk=competition_id)
    if competition.status != Competition.Status.ACTIVE:
        raise ConflictError(f"the competition is {competition.status}; rounds run only while active", code="not_active")
    number = next_round_number(competition)
    if competition.mode == Competition.Mode.REPLAY:
        market_time = round_market_time(competition, number)
        if market_time >= competition.end_time:
            return services.competition_finish(competition_id=competition_id, number=number)
        return round_run(competition_id=competition_id, number=number, market_time=market_time)
    now = timezone.now().replace(microsecond=0)
    if now >= competition.end_time:
        raise ConflictError("the competition's end time has passed", code="ended")
    number = max(number, round_number_at(competition, now))
    return round_run(competition_id=competition_id, number=number, market_time=now)


def live_round_run(*, competition: Competition, now) -> Round | None:
    """Run the live round the clock says is due, if any (beat's task and the in-process runner)."""
    number = live_round_due(competition, now)
    if number is None:
        return None
    return round_run(competition_id=competition.pk, number=number, market_time=round_market_time(competition, number))


def dispatch_round_trigger(*, competition_id: int) -> Round | None:
    """Run one round now: queued on Celery (returns None), or run here and returned."""
    if uses_celery():
        from ..tasks import round_trigger_task

        transaction.on_commit(lambda: round_trigger_task.delay(competition_id))
        return None
    return round_trigger(competition_id=competition_id)


def dispatch_replay(*, competition_id: int) -> bool:
    """Run a replay to its end in the background: a Celery task, or a thread here.

    Returns False when this process already runs that replay.
    """
    if uses_celery():
        from ..tasks import replay_run_task

        transaction.on_commit(lambda: replay_run_task.delay(competition_id))
        return True
    with _replay_lock:
        running = _replay_threads.get(competition_id)
        if running is not None and running.is_alive():
            return False
        thread = threading.Thread(
            target=_replay_in_thread, args=(competition_id,), name=f"replay-{competition_id}", daemon=True
        )
        _replay_threads[competition_id] = thread
    transaction.on_commit(thread.start)
    return True


def _replay_in_thread(competition_id: int) -> None:
    try:
        replay_run(competition_id=competition_id, until_end=True)
    except Exception:
        logger.exception("replay of competition %s stopped on an error", competition_id)
    finally:
        close_old_connections()


class InProcessRunner(threading.Thread):
    """Beat and worker on one thread: the lifecycle tick, due live rounds, paced replay rounds."""

    def __init__(self, *, replay_pace_seconds: float = 2.0, poll_seconds: float = 1.0):
        super().__init__(name="gauntlet-rounds", daemon=True)
        self.replay_pace_seconds = replay_pace_seconds
        self.poll_seconds = poll_seconds
        self.stopped = threading.Event()
        self._last_replay_round: dict[int, float] = {}

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                worker_heartbeat()
                services.competitions_tick()
                self.step()
            except Exception:
                logger.exception("in-process runner step failed; carrying on")
            finally:
                close_old_connections()
            self.stopped.wait(self.poll_seconds)

    def step(self) -> None:
        now = timezone.now()
        active = Competition.objects.filter(status=Competition.Status.ACTIVE)
        for competition in active:
            try:
                if competition.mode == Competition.Mode.LIVE:
                    self._live_round_if_due(competition, now)
                else:
                    self._replay_round_if_due(competition)
            except RoundBusy:
                continue

    def _live_round_if_due(self, competition: Competition, now) -> None:
        number = live_round_due(competition, now)
        if number is not None and not Round.objects.filter(competition=competition, number=number).exists():
            round_run(competition_id=competition.pk, number=number, market_time=round_market_time(competition, number))

    def _replay_round_if_due(self, competition: Competition) -> None:
        if competition.pk in _replay_threads and _replay_threads[competition.pk].is_alive():
            return  # a full-speed replay of it is running
        last = self._last_replay_round.get(competition.pk)
        if last is not None and time.monotonic() - last < self.replay_pace_seconds:
            return
        self._last_replay_round[competition.pk] = time.monotonic()
        round_trigger(competition_id=competition.pk)
