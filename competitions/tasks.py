"""Celery tasks: thin doors into competitions.rounds and competitions.services.

Tasks take ids only, load rows and call one service. Every task is idempotent: the round
row claims the work, so a duplicate beat tick or a redelivered task does nothing twice.
"""

import logging

from celery import shared_task
from django.core.cache import cache
from django.utils import timezone

from . import services
from .models import Competition
from .rounds import RoundBusy, round_market_time, round_number_at, round_run
from .replay import replay_run

logger = logging.getLogger(__name__)

WORKER_HEARTBEAT_KEY = "gauntlet:worker-heartbeat"


@shared_task(name="competitions.tasks.competitions_tick_task")
def competitions_tick_task() -> dict:
    """Once a minute: start/complete live competitions by the clock, and say a worker is alive."""
    cache.set(WORKER_HEARTBEAT_KEY, timezone.now().isoformat(), timeout=None)
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
    now = timezone.now()
    if competition is None or competition.status != Competition.Status.ACTIVE:
        return None
    if not (competition.start_time <= now < competition.end_time):
        return None
    number = round_number_at(competition, now)
    round_ = round_run(competition_id=competition_id, number=number, market_time=round_market_time(competition, number))
    return round_.pk if round_ else None


@shared_task(name="competitions.tasks.round_trigger_task", bind=True, autoretry_for=(RoundBusy,), retry_backoff=5)
def round_trigger_task(self, competition_id: int) -> int | None:
    from .rounds import round_trigger

    round_ = round_trigger(competition_id=competition_id)
    return round_.pk if round_ else None


@shared_task(name="competitions.tasks.replay_run_task", bind=True, autoretry_for=(RoundBusy,), retry_backoff=5)
def replay_run_task(self, competition_id: int, rounds: int | None = None) -> dict:
    progress = replay_run(competition_id=competition_id, rounds=rounds, until_end=rounds is None)
    return progress.as_dict()
