"""Who runs rounds: Celery (production) or a thread in this process (the embedded default).

`ROUND_RUNNER=celery` (the default when a broker is configured): beat fires live rounds,
tasks run replays and triggered rounds. `ROUND_RUNNER=inprocess` (the default without
Redis): `InProcessRunner` does beat's and the worker's job on one background thread, with
the very same services, so the demo needs nothing but Python. Apps above this one hand it
their own background work as `InProcessJob`s (tournaments plays its runs that way).

What a runner runs (the next round now, the live round due) is in rounds/trigger.py,
shared with competitions.tasks; the heartbeat is gauntlet.heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from gauntlet.heartbeat import worker_heartbeat

from . import services
from .models import Competition, Round
from .rounds.claim import RoundBusy
from .rounds.clock import live_round_due, round_market_time
from .rounds.replay import replay_run
from .rounds.run import round_run
from .rounds.trigger import round_trigger

logger = logging.getLogger(__name__)

_replay_threads: dict[int, threading.Thread] = {}
_replay_lock = threading.Lock()


def uses_celery() -> bool:
    return settings.ROUND_RUNNER == "celery"


def dispatch_round_trigger(*, competition_id: int) -> Round | None:
    """Run one round now: queued on Celery (returns None), or run here and returned."""
    if uses_celery():
        from .tasks import round_trigger_task

        transaction.on_commit(lambda: round_trigger_task.delay(competition_id))
        return None
    return round_trigger(competition_id=competition_id)


def dispatch_replay(*, competition_id: int) -> bool:
    """Run a replay to its end in the background: a Celery task, or a thread here.

    Returns False when this process already runs that replay.
    """
    if uses_celery():
        from .tasks import replay_run_task

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


class InProcessJob(Protocol):
    """Background work an app above this one gives the in-process runner (registered with
    `in_process_job_register`, from the app's ready())."""

    def step(self) -> None:
        """Called on every tick of the runner; returns at once (long work goes on a thread of its own)."""

    def competitions_owned(self) -> set[int]:
        """Active competitions this job plays itself: the runner does not pace their rounds."""

    def stop(self) -> None:
        """Stop after the current round, handing back what it holds."""


_in_process_jobs: list[InProcessJob] = []


def in_process_job_register(job: InProcessJob) -> None:
    if job not in _in_process_jobs:
        _in_process_jobs.append(job)


class InProcessRunner(threading.Thread):
    """Beat and worker on one thread: the lifecycle tick, due live rounds, paced replay rounds,
    and the registered jobs' steps."""

    def __init__(self, *, replay_pace_seconds: float = 2.0, poll_seconds: float = 1.0):
        super().__init__(name="gauntlet-rounds", daemon=True)
        self.replay_pace_seconds = replay_pace_seconds
        self.poll_seconds = poll_seconds
        self.stopped = threading.Event()
        self._last_replay_round: dict[int, float] = {}

    def stop(self) -> None:
        self.stopped.set()
        for job in _in_process_jobs:
            job.stop()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                worker_heartbeat()
                services.competitions_tick()
                for job in _in_process_jobs:
                    job.step()
                self.step()
            except Exception:
                logger.exception("in-process runner step failed; carrying on")
            finally:
                close_old_connections()
            self.stopped.wait(self.poll_seconds)

    def step(self) -> None:
        now = timezone.now()
        owned = set().union(*(job.competitions_owned() for job in _in_process_jobs))
        active = Competition.objects.filter(status=Competition.Status.ACTIVE).exclude(pk__in=owned)
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
