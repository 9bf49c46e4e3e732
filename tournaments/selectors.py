"""Reads for tournaments: lists, runs and progress, each in a fixed number of queries."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db.models import Count, Q, Sum

from . import ports
from .models import RunStatus, Tournament, TournamentRun


def tournament_list():
    return Tournament.objects.prefetch_related("entries", "windows").order_by("-created_at", "-id")


def tournament_get(tournament_id: int) -> Tournament:
    return Tournament.objects.prefetch_related("entries", "windows").get(pk=tournament_id)


def tournament_check(tournament_id: int) -> None:
    """Tournament.DoesNotExist (a 404 at the API) for a missing tournament, in one small query."""
    if not Tournament.objects.filter(pk=tournament_id).exists():
        raise Tournament.DoesNotExist(f"no tournament {tournament_id}")


def tournament_results_choice_get(tournament_id: int) -> Tournament:
    """The tournament with what its results' settings read besides the runs (its in-sample mode,
    its rules for masking), in one small query; Tournament.DoesNotExist (a 404) when missing."""
    return Tournament.objects.only("pk", "rules", "in_sample").get(pk=tournament_id)


def run_list(tournament_id: int):
    return (
        TournamentRun.objects.filter(tournament_id=tournament_id)
        .select_related("window", "competition")
        .order_by("window__index", "instance")
    )


def rounds_planned(tournament: Tournament) -> int:
    """Rounds every run will play, summed: the agents' rounds of each window plus its final
    (settling) round, K times."""
    try:
        step = max(1, int(tournament.rules.get("invocation_interval_minutes", 60))) * 60
    except (TypeError, ValueError):  # a draft saved by the admin before its check
        step = 3600
    total = 0
    for start, end in tournament.windows.values_list("start_time", "end_time"):
        total += int(-(-(end - start).total_seconds() // step)) + 1
    return total * tournament.instances


@dataclass
class TournamentProgress:
    tournament_id: int
    status: str
    runs_total: int
    runs_pending: int
    runs_running: int
    runs_completed: int
    runs_failed: int
    runs_cancelled: int
    rounds_done: int
    rounds_total: int
    llm_cost_usd: str
    cache_hits: int
    failures: list[dict]

    @property
    def runs_done(self) -> int:
        return self.runs_completed + self.runs_failed + self.runs_cancelled

    def as_dict(self) -> dict:
        return {**asdict(self), "runs_done": self.runs_done}


def tournament_progress(tournament_id: int) -> TournamentProgress:
    """Runs by status, rounds played, LLM cost so far and decision-cache hits: four queries."""
    tournament = Tournament.objects.get(pk=tournament_id)
    runs = TournamentRun.objects.filter(tournament_id=tournament_id)
    counts = runs.aggregate(
        total=Count("id"),
        rounds=Sum("rounds_done"),
        cost=Sum("llm_cost_usd"),
        **{status: Count("id", filter=Q(status=status)) for status in RunStatus.values},
    )
    hits = ports.Invocation.objects.filter(
        round__competition__tournament_run__tournament_id=tournament_id, cached=True
    ).count()
    failures = list(runs.filter(status=RunStatus.FAILED).values("id", "window__index", "instance", "attempts", "error")[:50])
    return TournamentProgress(
        tournament_id=tournament_id,
        status=tournament.status,
        runs_total=counts["total"],
        runs_pending=counts[RunStatus.PENDING],
        runs_running=counts[RunStatus.RUNNING],
        runs_completed=counts[RunStatus.COMPLETED],
        runs_failed=counts[RunStatus.FAILED],
        runs_cancelled=counts[RunStatus.CANCELLED],
        rounds_done=counts["rounds"] or 0,
        rounds_total=rounds_planned(tournament),
        llm_cost_usd=str(counts["cost"] or Decimal(0)),
        cache_hits=hits,
        failures=[
            {"run_id": f["id"], "window": f["window__index"], "instance": f["instance"], "attempts": f["attempts"],
             "error": f["error"]}
            for f in failures
        ],
    )


def run_participants(tournament_id: int, names: list[str]) -> dict[tuple[int, int], dict]:
    """(window index, instance) -> {"competition_id", "status", "participants": {name: participant id}}
    for these agents of the tournament's runs, in one query: what links a run to its
    competition's pages."""
    rows = (
        ports.Participant.objects.filter(competition__tournament_run__tournament_id=tournament_id, name__in=names)
        .order_by("competition__tournament_run__window__index", "competition__tournament_run__instance", "id")
        .values("pk", "name", "competition_id", "competition__tournament_run__window__index",
                "competition__tournament_run__instance", "competition__tournament_run__status")
    )  # fmt: skip
    runs: dict[tuple[int, int], dict] = {}
    for row in rows:
        key = (row["competition__tournament_run__window__index"], row["competition__tournament_run__instance"])
        run = runs.setdefault(key, {
            "competition_id": row["competition_id"], "status": row["competition__tournament_run__status"],
            "participants": {},
        })  # fmt: skip
        run["participants"][row["name"]] = row["pk"]
    return runs
