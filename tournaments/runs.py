"""A tournament's runs as work: claimed by one worker at a time under a lease, executed as a
replay of their competition (resumed where a dead worker left it), failed with a reason after
a bounded number of attempts, and the tournament completed when none is left.

Celery tasks (tasks.py) and `manage.py run_tournament` are the doors into these.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from gauntlet.errors import ConflictError, DomainError

from . import ports, results
from .models import RunStatus, Tournament, TournamentRun

logger = logging.getLogger(__name__)
Status = Tournament.Status

# How long a claim holds without a round finishing; renewed after every round.
DEFAULT_LEASE_SECONDS = 900


def lease_seconds() -> int:
    return int(getattr(settings, "TOURNAMENT_RUN_LEASE_SECONDS", DEFAULT_LEASE_SECONDS))


def _tournament_complete_if_done(tournament_id: int) -> None:
    with transaction.atomic():
        tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
        if tournament.status != Status.RUNNING:
            return
        if tournament.runs.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING]).exists():
            return
        tournament.status = Status.COMPLETED
        tournament.completed_at = timezone.now()
        tournament.save(update_fields=["status", "completed_at"])
    logger.info("tournament %s completed", tournament_id)


# -- runs -----------------------------------------------------------------------------------


def _claimable(now: datetime) -> Q:
    return Q(status=RunStatus.PENDING) | Q(status=RunStatus.RUNNING, lease_expires_at__lt=now)


def _expired_runs_fail(queryset, now: datetime) -> None:
    """A run whose worker vanished after its last allowed attempt fails instead of being retaken."""
    lost = queryset.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now,
                           attempts__gte=F("tournament__max_attempts"))
    tournaments = set()
    for run_id, tournament_id in lost.values_list("pk", "tournament_id"):
        if TournamentRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=now).update(
            status=RunStatus.FAILED, finished_at=now, lease_expires_at=None,
            error="the worker was lost (its lease expired) on the last allowed attempt",
        ):
            tournaments.add(tournament_id)
    for tournament_id in tournaments:  # that may have been its last unfinished run
        _tournament_complete_if_done(tournament_id)


def runs_lost_release(*, tournament_id: int | None = None) -> list[int]:
    """Runs whose worker vanished (still running, lease expired) go back to pending with the
    reason, for their tasks to be sent again (a Celery task of a killed worker would otherwise
    come back only after the broker's visibility timeout); the ids of those released. A run on
    its last allowed attempt fails instead. Safe to call from any number of workers at once."""
    now = timezone.now()
    running = TournamentRun.objects.filter(tournament__status=Status.RUNNING)
    if tournament_id is not None:
        running = running.filter(tournament_id=tournament_id)
    _expired_runs_fail(running, now)
    released = []
    for run_id in running.filter(status=RunStatus.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True):
        if TournamentRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, lease_expires_at__lt=now).update(
            status=RunStatus.PENDING, claimed_by="", lease_expires_at=None,
            error="the worker was lost (its lease expired); the run resumes on another",
        ):
            logger.warning("run %s: its worker was lost; released for another", run_id)
            released.append(run_id)
    return released


def run_claim(*, owner: str, run_id: int | None = None, tournament_id: int | None = None) -> TournamentRun | None:
    """Take one run (that run, or the next of that tournament) for `owner`; None if there is none to take.

    One conditional UPDATE per candidate: on PostgreSQL and SQLite alike exactly one claimer's
    UPDATE matches the row, so no run is executed by two workers at once.
    """
    if (run_id is None) == (tournament_id is None):
        raise ValueError("give a run_id or a tournament_id")
    now = timezone.now()
    runs = TournamentRun.objects.filter(tournament__status=Status.RUNNING)
    runs = runs.filter(pk=run_id) if run_id is not None else runs.filter(tournament_id=tournament_id)
    _expired_runs_fail(runs, now)
    candidates = runs.filter(_claimable(now), attempts__lt=F("tournament__max_attempts"))
    for candidate in candidates.order_by("window__index", "instance").values("pk", "attempts")[:20]:
        claimed = TournamentRun.objects.filter(_claimable(now), pk=candidate["pk"], attempts=candidate["attempts"]).update(
            status=RunStatus.RUNNING, claimed_by=owner[:100], attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds()), started_at=Coalesce(F("started_at"), now),
        )
        if claimed:
            logger.info("run %s claimed by %s", candidate["pk"], owner)
            return TournamentRun.objects.select_related("tournament", "competition").get(pk=candidate["pk"])
    return None


def run_claim_next(*, owner: str) -> TournamentRun | None:
    """Take the next run of any running tournament, the one started first first; None if none is left."""
    running = Tournament.objects.filter(status=Status.RUNNING).order_by("started_at", "pk").values_list("pk", flat=True)
    for tournament_id in running:
        run = run_claim(tournament_id=tournament_id, owner=owner)
        if run is not None:
            return run
    return None


def runs_claimable_exist() -> bool:
    """Is any run of a running tournament waiting for a worker (pending, or its lease run out)?"""
    return TournamentRun.objects.filter(_claimable(timezone.now()), tournament__status=Status.RUNNING).exists()


def runs_waiting() -> list[int]:
    """The pending runs of running tournaments (each wants a worker), oldest tournament first."""
    waiting = TournamentRun.objects.filter(status=RunStatus.PENDING, tournament__status=Status.RUNNING,
                                           attempts__lt=F("tournament__max_attempts"))
    return list(waiting.order_by("tournament__started_at", "tournament_id", "window__index", "instance")
                .values_list("pk", flat=True))


def _mine(run_id: int, owner: str):
    return TournamentRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, claimed_by=owner[:100])


def run_result(competition) -> dict:
    """Final equity and return of every participant of a finished run's competition."""
    latest = ports.EquitySnapshot.objects.filter(account__participant=OuterRef("pk")).order_by("-market_time", "-id")
    rows = (
        ports.Participant.objects.filter(competition=competition)
        .annotate(final_equity=Subquery(latest.values("equity")[:1]))
        .order_by("id")
        .values("name", "llm_provider", "llm_model", "final_equity")
    )
    capital = Decimal(competition.initial_capital)
    participants = []
    for row in rows:
        equity = row["final_equity"]
        ret = None if equity is None else ((Decimal(equity) / capital - 1) * 100).quantize(Decimal("0.0001"))
        participants.append({
            "name": row["name"], "llm_provider": row["llm_provider"], "llm_model": row["llm_model"],
            "final_equity": None if equity is None else str(equity), "return_pct": None if ret is None else str(ret),
        })
    return {"participants": participants}


def run_execute(*, run_id: int, owner: str, stop: Callable[[], bool] | None = None) -> TournamentRun:
    """Replay a claimed run's competition to its end (resuming where it stopped), then record
    how it ended: completed with its result, cancelled, or failed/back to pending on an error."""
    run = TournamentRun.objects.select_related("tournament", "competition", "window").get(pk=run_id)
    if run.status != RunStatus.RUNNING or run.claimed_by != owner[:100]:
        raise ConflictError(f"run {run_id} is not claimed by {owner}", code="not_claimed")
    started = time.perf_counter()
    checked = {"at": 0.0, "stop": False}

    def on_round(progress) -> None:
        # renews the lease; a zero count means this owner lost the run: stop after this round
        kept = _mine(run_id, owner).update(
            lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds()),
            rounds_done=progress.rounds_done, llm_cost_usd=Decimal(progress.llm_cost_usd),
        )
        checked["stop"] = checked["stop"] or not kept

    def should_stop() -> bool:
        now = time.monotonic()
        if not checked["stop"] and now - checked["at"] > 2:
            checked["at"] = now
            checked["stop"] = not _mine(run_id, owner).filter(tournament__status=Status.RUNNING).exists()
        return checked["stop"] or bool(stop and stop())

    competition = run.competition
    try:
        if competition is None:
            raise DomainError("the run's competition was deleted")
        if competition.status != ports.Competition.Status.COMPLETED:
            ports.replay_run(competition_id=competition.pk, until_end=True, on_round=on_round, should_stop=should_stop)
        competition.refresh_from_db()
    except Exception as exc:  # any failure is the run's, reported with its reason; never the worker's
        logger.exception("run %s failed", run_id)
        return run_fail(run_id=run_id, owner=owner, error=f"{type(exc).__name__}: {exc}",
                        seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    now = timezone.now()
    if competition.status == ports.Competition.Status.COMPLETED:
        _run_complete(run, owner=owner, now=now, seconds=seconds)
    elif competition.status == ports.Competition.Status.CANCELLED:
        _mine(run_id, owner).update(status=RunStatus.CANCELLED, finished_at=now, lease_expires_at=None,
                                    seconds=F("seconds") + seconds)
    else:  # stopped early (tournament cancelled or lease lost): give the run back as it stands
        _mine(run_id, owner).update(status=RunStatus.PENDING, lease_expires_at=None, claimed_by="",
                                    attempts=F("attempts") - 1, seconds=F("seconds") + seconds)
    _tournament_complete_if_done(run.tournament_id)
    return TournamentRun.objects.get(pk=run_id)


def _run_complete(run: TournamentRun, *, owner: str, now: datetime, seconds: float) -> None:
    competition = run.competition
    finished = ports.Round.objects.filter(competition=competition).exclude(status=ports.Round.Status.RUNNING)
    cost = finished.aggregate(cost=Sum("llm_cost_usd"))["cost"] or Decimal(0)
    run_result_record(
        run=run, owner=owner, now=now, result=results.statistics_add(run_result(competition), competition),
        seconds=F("seconds") + seconds, rounds_done=finished.count(), llm_cost_usd=cost,
    )


def run_result_record(*, run: TournamentRun, owner: str, now: datetime, result: dict, **fields) -> bool:
    """Mark the claimed run completed with its result (and `fields`) and, in the same commit, the
    tournament's results with it counted, computed beforehand outside the transaction: no page
    or API call finds the run completed but its results not yet computed. If another run
    completed meanwhile, the results are computed again from every completed run after the
    commit. False if the run was no longer this owner's."""
    prepared = None
    try:
        prepared = results.results_prepare(
            tournament_id=run.tournament_id,
            completing=results.CompletedRun(run.pk, run.window.index, run.instance, result, now),
        )
    except Exception:  # the results are a view of the runs: a failure there must not fail the run
        logger.exception("results of tournament %s not computed for run %s", run.tournament_id, run.pk)
    with transaction.atomic():
        # completions of one tournament take turns (the tournament row first, then the run, the
        # order tournament_cancel locks them in); SQLite has a single writer anyway
        Tournament.objects.select_for_update().filter(pk=run.tournament_id).values_list("pk", flat=True).first()
        completed = _mine(run.pk, owner).update(
            status=RunStatus.COMPLETED, finished_at=now, lease_expires_at=None, error="", result=result, **fields
        )
        stored = bool(completed and prepared and results.results_commit(prepared))
    if completed and not stored:
        try:
            results.results_refresh(tournament_id=run.tournament_id)
        except Exception:  # a page or API call computes them when it finds them stale
            logger.exception("results of tournament %s not stored after run %s", run.tournament_id, run.pk)
    return bool(completed)


def run_fail(*, run_id: int, owner: str, error: str, seconds: float = 0.0) -> TournamentRun:
    """Record a failed attempt: back to pending while attempts remain (the next attempt resumes
    at the first round not completed), else failed for good, with the reason."""
    run = TournamentRun.objects.select_related("tournament").get(pk=run_id)
    final = run.attempts >= run.tournament.max_attempts
    _mine(run_id, owner).update(
        status=RunStatus.FAILED if final else RunStatus.PENDING, error=error[:2000], lease_expires_at=None,
        claimed_by=owner[:100] if final else "", finished_at=timezone.now() if final else None,
        seconds=F("seconds") + seconds,
    )
    if final:
        _tournament_complete_if_done(run.tournament_id)
    return TournamentRun.objects.get(pk=run_id)
