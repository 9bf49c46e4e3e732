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
from django.db import transaction
from django.db.models import Sum

from gauntlet.errors import ConflictError, DomainError
from marketdata.sources import MarketDataError

from .. import aggregates, services
from ..models import Competition, Round
from ..rules import trading_rules
from .claim import RoundExists
from .clock import next_round_number, round_market_time, rounds_total
from .context import InvocationCounts
from .run import competition_finish, replay_batch_open, round_run

PROGRESS_KEY = "gauntlet:replay-progress:{}"

# Rounds of agents that answer in process (agents.invoke.answers_in_process) run in batches, one transaction each (run.ReplayBatch): a
# batch ends after this long or this many rounds, whichever comes first. A pause, a stop or
# a crash takes effect at a batch's end; a crash repeats at most one batch.
REPLAY_BATCH_SECONDS = 2.0
REPLAY_BATCH_ROUNDS = 500


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
    batching = not pace_seconds  # a paced replay shows every round as it runs
    known_new = False  # the next round is one no runner has claimed yet (as far as this loop knows)
    while True:
        competition.refresh_from_db(fields=["status", "market_time"])
        if competition.status != Competition.Status.ACTIVE or (should_stop and should_stop()):
            break
        if number is None:
            number = next_round_number(competition)
            known_new = False  # it may be a round a dead runner left half-way: one at a time
        market_time = round_market_time(competition, number)
        if market_time >= competition.end_time:
            competition_finish(competition_id=competition_id, number=number)
            break
        if batching and known_new:
            try:
                ran = _batch_run(competition, number=number, previous=previous, counts=counts,
                                 limit=None if rounds is None else rounds - done_here, on_round=on_round,
                                 should_stop=should_stop,
                                 progress_of=lambda done, spent, here=done_here, before=cost: _progress(
                                     competition, total, started, here + done, done_before, before + spent))
            except (RoundExists, MarketDataError):
                # rolled back: the rounds are taken up one at a time from the first not completed
                number, previous, known_new = None, None, False
                counts.forget()
                continue
            if ran is not None:
                number, previous, done, spent = ran
                done_here += done
                cost += spent
                progress = _progress(competition, total, started, done_here, done_before, cost)
                if rounds is not None and done_here >= rounds:
                    break
                continue
            batching = False  # a model takes part: its calls are committed as they are answered
        round_ = round_run(competition_id=competition_id, number=number, market_time=market_time,
                           competition=competition, counts=counts, previous_market_time=previous)
        done_here += 1
        if round_ is not None and round_.status != Round.Status.RUNNING:
            # this runner finished it: the next one is the next number, no need to ask
            cost += round_.llm_cost_usd or Decimal(0)
            number += 1
            known_new = True
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


def _batch_run(
    competition: Competition,
    *,
    number: int,
    previous: datetime | None,
    counts: InvocationCounts,
    limit: int | None,
    on_round: Callable[[ReplayProgress], None] | None,
    should_stop: Callable[[], bool] | None,
    progress_of: Callable[[int, Decimal], ReplayProgress],
) -> tuple[int, datetime | None, int, Decimal] | None:
    """Rounds from `number` on in one transaction (run.ReplayBatch), until the batch's time
    or size is up, `limit` rounds are done, the clock reaches end_time or should_stop says so.

    Returns (next number, market time of the last completed round, rounds done, their LLM
    cost), or None (nothing run) when a model takes part. Raises RoundExists (a round of
    the batch was there already) or MarketDataError (between two rounds), the batch
    rolled back.
    """
    began = time.perf_counter()
    done, spent = 0, Decimal(0)
    with transaction.atomic():
        batch = replay_batch_open(competition=competition, rules=trading_rules(competition), next_number=number)
        if batch is None:
            return None
        while True:
            market_time = round_market_time(competition, number)
            if market_time >= competition.end_time:
                break
            round_ = round_run(competition_id=competition.pk, number=number, market_time=market_time,
                               competition=competition, counts=counts, previous_market_time=previous, batch=batch)
            done += 1
            spent += round_.llm_cost_usd or Decimal(0)
            number += 1
            if round_.status == Round.Status.COMPLETED:
                previous = round_.market_time
                competition.market_time = round_.market_time
            if on_round:
                on_round(progress_of(done, spent))
            if (limit is not None and done >= limit) or (should_stop and should_stop()):
                break
            if done >= REPLAY_BATCH_ROUNDS or time.perf_counter() - began >= REPLAY_BATCH_SECONDS:
                break
        batch.flush(competition)
        if done:  # the participants' stored aggregates, once per batch (pages fold the rest)
            aggregates.participants_fold(competition_id=competition.pk)
    return number, previous, done, spent


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
