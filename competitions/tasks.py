"""Celery tasks: thin doors into competitions.rounds and competitions.services.

Tasks take ids only, load rows and call one service. Every task is idempotent: the round
row claims the work, so a duplicate beat tick or a redelivered task does nothing twice.
"""

import logging

from celery import shared_task
from django.utils import timezone

from gauntlet.heartbeat import worker_heartbeat

from . import services
from .models import Competition
from .rounds.claim import RoundBusy
from .rounds.trigger import live_round_run, round_trigger
from .rounds.replay import replay_run

logger = logging.getLogger(__name__)


@shared_task(name="competitions.tasks.competitions_tick_task")
def competitions_tick_task() -> dict:
    """Once a minute: start/complete live competitions by the clock, and say a worker is alive."""
    worker_heartbeat()
    return services.competitions_tick()


@shared_task(
    name="competitions.tasks.competition_round_due",
    bind=True,
    autoretry_for=(RoundBusy,),
    retry_backoff=15,
    max_retries=12,
)
def competition_round_due(self, competition_id: int) -> int | None:
    """Beat's entry point for a live competition: run the round the clock says is due."""
    competition = Competition.objects.filter(pk=competition_id).first()
    if competition is None:
        return None
    round_ = live_round_run(competition=competition, now=timezone.now())
    return round_.pk if round_ else None


@shared_task(name="competitions.tasks.round_trigger_task", bind=True, autoretry_for=(RoundBusy,), retry_backoff=5)
def round_trigger_task(self, competition_id: int) -> int | None:
    round_ = round_trigger(competition_id=competition_id)
    return round_.pk if round_ else None


@shared_task(name="competitions.tasks.replay_run_task", bind=True, autoretry_for=(RoundBusy,), retry_backoff=5)
def replay_run_task(self, competition_id: int, rounds: int | None = None) -> dict:
    progress = replay_run(competition_id=competition_id, rounds=rounds, until_end=rounds is None)
    return progress.as_dict()
