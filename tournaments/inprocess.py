"""Tournament runs without Celery: the in-process runner plays them.

`make demo` and `manage.py run_rounds` run competitions.dispatch.InProcessRunner; this job,
registered from the app's ready(), gives it the tournaments too. When a running tournament
has a run waiting, a background thread claims it (tournaments.runs.run_claim_next), plays it
at full speed (runs.run_execute) and goes on to the next until none is left, one run at a time.
So a tournament started from the API, the admin or the pages plays with nothing else running.

The runner leaves the competitions of running tournaments to their workers (this thread, a
Celery worker, `run_tournament`): it does not pace their rounds. Stopping the runner stops
the thread after its current round and hands its run back. A process killed outright leaves
its run leased until the lease runs out (TOURNAMENT_RUN_LEASE_SECONDS), as any worker does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from django.db import connections

from . import ports, runs
from .models import Tournament, TournamentRun

logger = logging.getLogger(__name__)


class TournamentRunsInProcess:
    """competitions.dispatch.InProcessJob: one thread playing tournament runs, started when one waits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def owner(self) -> str:
        return f"inprocess:{socket.gethostname()}:{os.getpid()}"

    def step(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            if not runs.runs_claimable_exist():
                return
            self._stopping = threading.Event()
            self._thread = threading.Thread(target=self._work, args=(self._stopping,), name="gauntlet-tournaments",
                                            daemon=True)
            self._thread.start()

    def _work(self, stopping: threading.Event) -> None:
        owner = self.owner
        try:
            while not stopping.is_set():
                run = runs.run_claim_next(owner=owner)
                if run is None:
                    return
                runs.run_execute(run_id=run.pk, owner=owner, stop=stopping.is_set)
        except Exception:  # run_execute reports a run's own failure; this is the thread's
            logger.exception("in-process tournament worker stopped on an error")
        finally:
            connections.close_all()

    def competitions_owned(self) -> set[int]:
        # only the active ones (the runner looks at no other): a handful, not every run of every tournament
        return set(
            TournamentRun.objects.filter(tournament__status=Tournament.Status.RUNNING,
                                         competition__status=ports.Competition.Status.ACTIVE)
            .values_list("competition_id", flat=True)
        )

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            thread = self._thread
            self._stopping.set()
        if thread is not None:
            thread.join(timeout)


in_process_job = TournamentRunsInProcess()
