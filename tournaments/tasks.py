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

A broker that loses its queue (a Redis restarted without persistence) loses the tasks of runs
still pending, and nothing would send them again. `tournament_runs_resend_task` (beat, every
few minutes) looks at the tournaments queue: when it is empty while runs wait, no task is on
its way for them (a task a worker holds is a run it has claimed, or one waiting out a retry's
backoff, which then merely starts sooner), so it sends theirs again. A duplicate is harmless:
the claim lets one task play a run, the others find it taken or finished.
"""

import logging
import os
import socket

from celery import current_app, shared_task
from django.conf import settings

from . import runs
from .models import RunStatus, TournamentRun

logger = logging.getLogger(__name__)

# The bound on tries is the tournament's max_attempts (counted on the run row, so it holds
# across redeliveries); this only caps Celery's own retry chain.
MAX_TASK_RETRIES = 25
RETRY_BACKOFF_SECONDS = 30
QUEUE = "tournaments"  # settings.CELERY_TASK_ROUTES sends every task of this module there


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


def queue_depth(queue: str = QUEUE) -> int | None:
    """Messages waiting in the broker's queue (not those workers hold); None without a broker
    or when it cannot be asked. A queue the broker does not know (Redis drops an empty list) is 0."""
    if not getattr(settings, "CELERY_BROKER_URL", ""):
        return None
    try:
        with current_app.connection_for_write() as connection:
            channel = connection.default_channel
            try:
                return channel.queue_declare(queue=queue, passive=True).message_count
            except connection.channel_errors:  # no such queue: nothing in it
                return 0
    except Exception as exc:  # the broker is down: try again next time
        logger.warning("tournaments queue depth unknown: %s", exc)
        return None


def tournament_runs_resend() -> list[int]:
    """Send again the tasks of waiting runs when the queue holds none (the broker lost them)."""
    if queue_depth() != 0:
        return []
    waiting = runs.runs_waiting()
    for run_id in waiting:
        tournament_run_task.delay(run_id)
    if waiting:
        logger.warning("the tournaments queue is empty while %s runs wait: their tasks were sent again", len(waiting))
    return waiting


@shared_task(name="tournaments.tasks.tournament_runs_resend_task")
def tournament_runs_resend_task() -> list[int]:
    return tournament_runs_resend()
