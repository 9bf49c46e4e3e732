"""Round times and numbers: round n runs at market time start_time + n x interval."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Max

from ..models import Competition, Round


def round_market_time(competition: Competition, number: int) -> datetime:
    return competition.start_time + timedelta(minutes=competition.invocation_interval_minutes * number)


def round_number_at(competition: Competition, moment: datetime) -> int:
    elapsed = moment - competition.start_time
    return max(0, int(elapsed.total_seconds() // (competition.invocation_interval_minutes * 60)))


def live_round_due(competition: Competition, now: datetime) -> int | None:
    """The number of the live round the wall clock says is due now, or None (not active, or
    outside start_time..end_time). Beat's task and the in-process runner both ask this."""
    if competition.status != Competition.Status.ACTIVE:
        return None
    if not (competition.start_time <= now < competition.end_time):
        return None
    return round_number_at(competition, now)


def rounds_total(competition: Competition) -> int:
    span = competition.end_time - competition.start_time
    step = competition.invocation_interval_minutes * 60
    return int(-(-span.total_seconds() // step))  # ceil: rounds at start, start+step, ... < end


def next_round_number(competition: Competition) -> int:
    """The first round not finished: a crashed running round is resumed, else last + 1."""
    running = Round.objects.filter(competition=competition, status=Round.Status.RUNNING).order_by("number").first()
    if running is not None:
        return running.number
    last = Round.objects.filter(competition=competition).aggregate(last=Max("number"))["last"]
    return 0 if last is None else last + 1
