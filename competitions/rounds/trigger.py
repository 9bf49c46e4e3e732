"""Run a round now: the next one (`round_trigger`, for the API and admin), or the live one
the wall clock says is due (`live_round_run`, for beat's task). Celery tasks and the
in-process runner (dispatch.py) both call these.
"""

from __future__ import annotations

from django.utils import timezone

from gauntlet.errors import ConflictError

from ..models import Competition, Round
from .clock import live_round_due, next_round_number, round_market_time, round_number_at
from .run import competition_finish, round_run


def round_trigger(*, competition_id: int) -> Round | None:
    """Run the next round now (API and admin, for debugging): live at the wall clock, replay at its clock."""
    competition = Competition.objects.get(pk=competition_id)
    if competition.status != Competition.Status.ACTIVE:
        raise ConflictError(f"the competition is {competition.status}; rounds run only while active", code="not_active")
    number = next_round_number(competition)
    if competition.mode == Competition.Mode.REPLAY:
        market_time = round_market_time(competition, number)
        if market_time >= competition.end_time:
            return competition_finish(competition_id=competition_id, number=number)
        return round_run(competition_id=competition_id, number=number, market_time=market_time)
    now = timezone.now().replace(microsecond=0)
    if now >= competition.end_time:
        raise ConflictError("the competition's end time has passed", code="ended")
    number = max(number, round_number_at(competition, now))
    return round_run(competition_id=competition_id, number=number, market_time=now)


def live_round_run(*, competition: Competition, now) -> Round | None:
    """Run the live round the clock says is due, if any (beat's entry point)."""
    number = live_round_due(competition, now)
    if number is None:
        return None
    return round_run(competition_id=competition.pk, number=number, market_time=round_market_time(competition, number))
