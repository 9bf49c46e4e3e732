"""Celery: one task per tournament run, on its own queue ("tournaments").

Delivery is at least once (acks_late: acknowledged only when the task returns;
reject_on_worker_lost: a killed worker's task goes back to the queue; prefetch 1: a worker
holds one run at a time). Execution is at most once at a time: the task first claims its
run row (runs.run_claim); a duplicate delivery finds it taken and waits for the lease
to end or finds it finished and does nothing. A run that stopped half-way resumes at its
first round not completed. See docs/tournaments.md for the broker's visibility timeout.

A worker killed outright (SIGKILL, OOM, a container stopped) leaves its task unacknowledged
until the broker's visibility timeout (hours) and its run leased. So once the lease has run
out, `tournament_runs_recover_task` (beat, once a minute; and every task of the tournament
when its own run ends) gives the run back and sends its task again.
"""

import logging
import os
import socket

from celery import shared_task

from . import runs
from .models import RunStatus, TournamentRun

logger = logging.getLogger(__name__)

# The bound on tries is the tournament's max_attempts (counted on the run row, so it holds
# across redeliveries); this only caps Celery's own retry chain.
MAX_TASK_RETRIES = 25
RETRY_BACKOFF_SECONDS = 30


@shared_task(
    name="tournaments.tasks.tournament_run_task",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_TASK_RETRIES,
)
def tournament_run_task(self, run_id: int) -> str:
    # the worker's node name and process: which worker holds (or played) the run
    owner = f"celery:{self.request.hostname or socket.gethostname()}:{os.getpid()}:{self.request.id}"
    run = runs.run_claim(run_id=run_id, owner=owner)
    if run is None:
        current = TournamentRun.objects.filter(pk=run_id).values("status", "lease_expires_at").first()
        if current is not None and current["status"] == RunStatus.RUNNING:
            # someone else holds it (a redelivery while the first worker still runs): look again later
            raise self.retry(countdown=runs.lease_seconds())
        return current["status"] if current else "missing"
    run = runs.run_execute(run_id=run_id, owner=owner)
    tournament_runs_recover(run.tournament_id)
    if run.status == RunStatus.PENDING:  # failed with attempts left: try again, resuming
        raise self.retry(countdown=RETRY_BACKOFF_SECONDS * run.attempts)
    return run.status


def tournament_runs_recover(tournament_id: int | None = None) -> list[int]:
    """Release the runs of lost workers (runs.runs_lost_release) and send their tasks again."""
    released = runs.runs_lost_release(tournament_id=tournament_id)
    for run_id in released:
        tournament_run_task.delay(run_id)
    return released


@shared_task(name="tournaments.tasks.tournament_runs_recover_task")
def tournament_runs_recover_task() -> list[int]:
    return tournament_runs_recover()
