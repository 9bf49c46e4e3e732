"""Replay: a clock that walks a competition from start_time to end_time over its dataset.

Round n runs at market time start_time + n x interval. Between rounds the round itself
processes every bar of the dataset's timeframe (stops, funding, close-out). When the clock
reaches end_time a final round marks everything and the competition completes with all
positions closed at the final mark. Stopping at any point and running again resumes at
the first round not yet completed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Sum

from gauntlet.errors import ConflictError, DomainError

from .. import services
from ..models import Competition, Round
from .clock import next_round_number, round_market_time, rounds_total
from .context import InvocationCounts
from .run import competition_finish, round_run

PROGRESS_KEY = "gauntlet:replay-progress:{}"


@dataclass
class ReplayProgress:
    competition_id: int
    rounds_done: int
    rounds_total: int
    market_time: str | None
    elapsed_seconds: float
    eta_seconds: float | None
    llm_cost_usd: str
    status: str
    finished: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def replay_progress_get(competition_id: int) -> dict | None:
    return cache.get(PROGRESS_KEY.format(competition_id))


def replay_run(
    *,
    competition_id: int,
    rounds: int | None = None,
    until_end: bool = False,
    pace_seconds: float = 0.0,
    on_round: Callable[[ReplayProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ReplayProgress:
    """Run replay rounds in this process: `rounds` of them, or until the end (`until_end`)."""
    competition = Competition.objects.get(pk=competition_id)
    if competition.mode != Competition.Mode.REPLAY:
        raise DomainError("only replay competitions can be replayed", code="not_replay")
    if competition.status == Competition.Status.DRAFT:
        services.competition_start(competition_id=competition_id)
    elif competition.status != Competition.Status.ACTIVE:
        raise ConflictError(f"the competition is {competition.status}; resume it first", code="not_active")
    if rounds is None and not until_end:
        rounds = 1
    total = rounds_total(competition)
    started = time.perf_counter()
    done_here = 0
    finished = Round.objects.filter(competition=competition).exclude(status=Round.Status.RUNNING)
    done_before = finished.count()
    cost = finished.aggregate(cost=Sum("llm_cost_usd"))["cost"] or Decimal(0)
    progress = _progress(competition, total, started, done_here, done_before, cost)
    number = None
    previous = None  # market time of the last round this loop completed
    counts = InvocationCounts()
    while True:
        competition.refresh_from_db(fields=["status", "market_time"])
        if competition.status != Competition.Status.ACTIVE or (should_stop and should_stop()):
            break
        if number is None:
            number = next_round_number(competition)
        market_time = round_market_time(competition, number)
        if market_time >= competition.end_time:
            competition_finish(competition_id=competition_id, number=number)
            break
        round_ = round_run(competition_id=competition_id, number=number, market_time=market_time,
                           competition=competition, counts=counts, previous_market_time=previous)
        done_here += 1
        if round_ is not None and round_.status != Round.Status.RUNNING:
            # this runner finished it: the next one is the next number, no need to ask
            cost += round_.llm_cost_usd or Decimal(0)
            number += 1
            if round_.status == Round.Status.COMPLETED:
                previous = round_.market_time
        else:  # someone else ran it, or it stopped half-way: ask again, count again
            number = None
            previous = None
            counts.forget()
        progress = _progress(competition, total, started, done_here, done_before, cost)
        if on_round:
            on_round(progress)
        if rounds is not None and done_here >= rounds:
            break
        if pace_seconds:
            time.sleep(pace_seconds)
    competition.refresh_from_db()
    finished = Round.objects.filter(competition=competition).exclude(status=Round.Status.RUNNING)
    cost = finished.aggregate(cost=Sum("llm_cost_usd"))["cost"] or Decimal(0)
    return _progress(competition, total, started, done_here, finished.count() - done_here, cost)


def _progress(
    competition: Competition, total: int, started: float, done_here: int, done_before: int, cost: Decimal
) -> ReplayProgress:
    """Progress from counts kept by the runner (no query per round); published to the cache."""
    done = min(done_before + done_here, total)
    elapsed = time.perf_counter() - started
    eta = None
    if done_here and done < total:
        eta = elapsed / done_here * (total - done)
    progress = ReplayProgress(
        competition_id=competition.pk,
        rounds_done=done,
        rounds_total=total,
        market_time=_iso(competition.market_time),
        elapsed_seconds=round(elapsed, 2),
        eta_seconds=None if eta is None else round(eta, 1),
        llm_cost_usd=str(cost),
        status=competition.status,
        finished=competition.status == Competition.Status.COMPLETED,
    )
    cache.set(PROGRESS_KEY.format(competition.pk), progress.as_dict(), timeout=24 * 3600)
    return progress


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
