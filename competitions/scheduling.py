"""Celery beat entries, kept in step with competitions by one service.

One PeriodicTask per live competition fires its rounds at its interval: created on start,
disabled on pause, enabled on resume, removed when the competition completes or is
cancelled. Rows are saved one by one (never bulk-updated) so django-celery-beat's change
signal tells the running beat to reload.
"""

import json

from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from .models import Competition

ROUND_TASK = "competitions.tasks.competition_round_due"
TICK_TASK = "competitions.tasks.competitions_tick_task"
TICK_NAME = "gauntlet: lifecycle tick and worker heartbeat"


def schedule_name(competition_id: int) -> str:
    return f"gauntlet: rounds of competition {competition_id}"


@transaction.atomic
def competition_schedule_sync(*, competition: Competition) -> PeriodicTask | None:
    """Create, enable, disable or remove the competition's beat entry to match its status."""
    name = schedule_name(competition.pk)
    wanted = competition.mode == Competition.Mode.LIVE and competition.status in {
        Competition.Status.ACTIVE,
        Competition.Status.PAUSED,
    }
    existing = PeriodicTask.objects.select_for_update().filter(name=name).first()
    if not wanted:
        if existing is not None:
            existing.delete()
        return None
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=competition.invocation_interval_minutes, period=IntervalSchedule.MINUTES
    )
    task = existing or PeriodicTask(name=name)
    task.task = ROUND_TASK
    task.interval = interval
    task.args = json.dumps([competition.pk])
    task.kwargs = "{}"
    task.start_time = competition.start_time
    task.enabled = competition.status == Competition.Status.ACTIVE
    task.description = f"Invocation rounds of {competition.name!r} every {competition.invocation_interval_minutes} min"
    task.save()
    return task


def tick_schedule_ensure() -> PeriodicTask:
    """The once-a-minute lifecycle tick (auto start/end) that also proves a worker is alive."""
    interval, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.MINUTES)
    task, _ = PeriodicTask.objects.update_or_create(
        name=TICK_NAME, defaults={"task": TICK_TASK, "interval": interval, "enabled": True}
    )
    return task
