"""Tournament results that say how sure they are (issue 15), from STORED per-run results.

When a run completes, `statistics_add` writes into its `result` JSON what the statistics
need per agent (Sharpe, max drawdown, cost-adjusted return, LLM counts, per-round returns)
and the run's buy-and-hold return. Pages and the API then read those rows only (one query)
and hand them to analytics.tournament; no run is recomputed. `results_backfill` fills runs
completed before the statistics were stored.

The results of one tournament state are computed once: cached by (tournament, completed
runs, last finish, metric), so every poll of a running tournament's page costs one count query
until another run completes.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce

from analytics import power as power_module
from analytics.tournament import METRICS, RunResult, TournamentResults, tournament_results

from agents.registry import registry_digest

from . import in_sample as in_sample_module
from . import ports
from .models import RunStatus, Tournament, TournamentRun

# Bumped when the stored per-agent statistics change shape; older runs are backfilled.
STATISTICS_VERSION = 1
CACHE_SECONDS = 24 * 3600
# Per-round returns are stored rounded: 12 significant digits are far below any market move.
RETURN_DIGITS = 12
UNITS = {"return_pct": "%", "sharpe": "", "max_drawdown_pct": "%", "cost_adjusted_return_pct": "%"}


def _float(value) -> float | None:
    return None if value is None or (isinstance(value, float) and not math.isfinite(value)) else float(value)


def _round_returns(points) -> list[float]:
    equity = [float(value) for _, value in points]
    return [
        round(current / previous - 1.0, RETURN_DIGITS) if previous else 0.0
        for previous, current in itertools.pairwise(equity)
    ]


def run_statistics(competition) -> dict:
    """Per participant name: what analytics.tournament.RunResult needs, plus the run's
    buy-and-hold return %. Leaderboard (one load) + one invocation aggregate."""
    board = ports.leaderboard_get(competition_id=competition.pk, include_benchmark=True)
    invocations = {
        row["participant_id"]: row
        for row in ports.Invocation.objects.filter(participant__competition=competition)
        .values("participant_id")
        .annotate(
            n_invocations=Count("id"),
            n_invalid=Count("id", filter=Q(status=ports.Invocation.Status.INVALID_RESPONSE)),
            n_proposed=Coalesce(Sum("actions_count"), 0),
            n_rejected=Coalesce(Sum("rejected_actions_count"), 0),
            n_input=Coalesce(Sum("input_tokens"), 0),
            n_output=Coalesce(Sum("output_tokens"), 0),
            total_cost=Sum("cost_usd"),
            latency_total_ms=Coalesce(Sum("latency_ms"), 0),
            latency_samples=Count("id", filter=Q(latency_ms__gt=0)),
        )
    }
    agents, benchmark = {}, None
    for row in board.rows:
        metrics = row.metrics
        if row.participant_id is None:
            benchmark = _float(metrics.return_pct)
            continue
        usage = invocations.get(row.participant_id, {})
        agents[row.name] = {
            "is_baseline": row.is_baseline,
            "sharpe": _float(metrics.sharpe),
            "max_drawdown_pct": _float(metrics.max_drawdown),
            "cost_adjusted_return_pct": _float(metrics.cost_adjusted_return),
            "cost_usd": str(usage.get("total_cost") or Decimal(0)),
            "input_tokens": usage.get("n_input", 0),
            "output_tokens": usage.get("n_output", 0),
            "invocations": usage.get("n_invocations", 0),
            "invalid_responses": usage.get("n_invalid", 0),
            "actions_proposed": usage.get("n_proposed", 0),
            "actions_rejected": usage.get("n_rejected", 0),
            "latency_seconds_sum": usage.get("latency_total_ms", 0) / 1000.0,
            "latency_samples": usage.get("latency_samples", 0),
            "returns": _round_returns(board.equity.get(row.participant_id, [])),
        }
    return {"agents": agents, "benchmark_return_pct": benchmark}


def statistics_add(result: dict, competition) -> dict:
    """A completed run's `result` with its per-agent statistics (runs.run_execute stores it)."""
    statistics = run_statistics(competition)
    participants = [
        {**participant, "statistics": statistics["agents"].get(participant["name"])}
        for participant in result.get("participants", [])
    ]
    return {
        **result,
        "participants": participants,
        "benchmark_return_pct": statistics["benchmark_return_pct"],
        "statistics_version": STATISTICS_VERSION,
    }


def results_backfill(*, tournament_id: int | None = None) -> int:
    """Add the statistics to completed runs that lack them (completed before they were stored);
    returns how many runs were filled. Safe to repeat: a filled run is skipped."""
    runs = TournamentRun.objects.filter(status=RunStatus.COMPLETED, competition__isnull=False).select_related(
        "competition"
    )
    if tournament_id is not None:
        runs = runs.filter(tournament_id=tournament_id)
    filled, tournaments = 0, set()
    for run in runs.iterator():
        if (run.result or {}).get("statistics_version") == STATISTICS_VERSION:
            continue
        TournamentRun.objects.filter(pk=run.pk).update(
            result=statistics_add(run.result or {}, run.competition)
        )
        filled += 1
        tournaments.add(run.tournament_id)
    for filled_id in tournaments:  # the state (completed runs, last finish) did not move: drop its results
        completed, last = _state(filled_id)
        cache.delete_many([
            results_cache_key(filled_id, completed, last, metric, mode)
            for metric in METRICS for mode in in_sample_module.MODES
        ])  # fmt: skip
    return filled


# -- reading the stored results ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StoredResults:
    """The completed runs' stored results, as analytics wants them."""

    runs: list[RunResult]
    reference: dict[int, float]  # window index -> buy-and-hold return %, averaged over instances
    baselines: list[str]
    run_ids: dict[tuple[int, int], int]  # (window index, instance) -> run id


def _run_result(agent: str, window: int, instance: int, participant: dict) -> RunResult:
    stats = participant.get("statistics") or {}
    return RunResult(
        agent=agent, window=window, instance=instance,
        return_pct=float(participant["return_pct"]),
        sharpe=stats.get("sharpe"),
        max_drawdown_pct=stats.get("max_drawdown_pct"),
        cost_adjusted_return_pct=stats.get("cost_adjusted_return_pct"),
        cost_usd=Decimal(stats.get("cost_usd") or 0),
        input_tokens=stats.get("input_tokens", 0), output_tokens=stats.get("output_tokens", 0),
        invocations=stats.get("invocations", 0), invalid_responses=stats.get("invalid_responses", 0),
        actions_proposed=stats.get("actions_proposed", 0), actions_rejected=stats.get("actions_rejected", 0),
        latency_seconds_sum=stats.get("latency_seconds_sum", 0.0), latency_samples=stats.get("latency_samples", 0),
        returns=tuple(stats.get("returns") or ()),
    )  # fmt: skip


def stored_results(tournament_id: int) -> StoredResults:
    """One query: every completed run's stored result, in window and instance order."""
    rows = (
        TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED)
        .order_by("window__index", "instance")
        .values_list("pk", "window__index", "instance", "result")
    )
    runs, reference, baselines, run_ids = [], {}, {}, {}
    for run_id, window, instance, result in rows:
        run_ids[(window, instance)] = run_id
        for participant in (result or {}).get("participants", []):
            if participant.get("return_pct") is None:
                continue
            runs.append(_run_result(participant["name"], window, instance, participant))
            if participant.get("llm_provider") == "baseline":
                baselines[participant["name"]] = True
        benchmark = (result or {}).get("benchmark_return_pct")
        if benchmark is not None:
            reference.setdefault(window, []).append(float(benchmark))
    return StoredResults(
        runs=runs,
        reference={window: sum(values) / len(values) for window, values in reference.items()},
        baselines=list(baselines),
        run_ids=run_ids,
    )


@dataclasses.dataclass(frozen=True)
class PowerSentence:
    windows: int
    unit: str
    minimum_detectable_difference: float | None
    gap: float | None  # |mean of the first - mean of the second| on the metric
    first: str | None
    second: str | None
    windows_needed: int | None
    more_windows: int | None


@dataclasses.dataclass(frozen=True)
class ResultsPage:
    """What the page and the API show for one tournament state and metric."""

    tournament_id: int
    runs_completed: int
    results: TournamentResults
    stored: StoredResults
    power_sentence: PowerSentence
    # tournaments.in_sample: which windows were in-sample for whom and what the ranking did with them
    in_sample: dict | None = None
    in_sample_results: TournamentResults | None = None  # mode "apart": the in-sample results ranked alone


def _power_sentence(results: TournamentResults) -> PowerSentence:
    means = [(row.agent, row.metrics[results.metric].mean) for row in results.agents]
    means = [(agent, mean) for agent, mean in means if mean is not None]
    power = results.power
    gap = abs(means[0][1] - means[1][1]) if len(means) >= 2 else None
    needed = None
    if power is not None and power.sd_difference is not None and gap:
        needed = power_module.windows_needed(power.sd_difference, gap, alpha=power.alpha, power=power.power)
    windows = len(results.windows)
    return PowerSentence(
        windows=windows, unit=UNITS[results.metric],
        minimum_detectable_difference=power.minimum_detectable_difference if power else None,
        gap=gap, first=means[0][0] if gap is not None else None, second=means[1][0] if gap is not None else None,
        windows_needed=needed, more_windows=None if needed is None else max(0, needed - windows),
    )  # fmt: skip


def _state(tournament_id: int) -> tuple[int, str]:
    state = TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED).aggregate(
        count=Count("id"), last=Max("finished_at")
    )
    return state["count"], state["last"].isoformat() if state["last"] else ""


def results_cache_key(tournament_id: int, completed: int, last: str, metric: str, in_sample: str) -> str:
    # the registry's digest: a corrected training cutoff moves which windows are in-sample
    return (f"tournament-results:v{STATISTICS_VERSION}:{tournament_id}:{completed}:{last}:{metric}:"
            f"{in_sample}:{registry_digest()}")


def tournament_results_get(
    *, tournament_id: int, metric: str = "return_pct", in_sample: str | None = None
) -> ResultsPage | None:
    """The results for the tournament's completed runs, computed once per state; None before a run completes.

    in_sample: exclude | apart | include (tournaments.in_sample); None reads the tournament's setting.
    Two queries when cached (the state), six when not (plus the stored rows, and the rules, windows and
    lineup the in-sample report reads).
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    if in_sample is None:
        in_sample = Tournament.objects.filter(pk=tournament_id).values_list("in_sample", flat=True).first()
    mode = in_sample_module.mode_check(in_sample)
    completed, last = _state(tournament_id)
    if not completed:
        return None
    key = results_cache_key(tournament_id, completed, last, metric, mode)
    page = cache.get(key)
    if page is None:
        stored = stored_results(tournament_id)
        if not stored.runs:
            return None
        report = in_sample_module.in_sample_report(tournament_id=tournament_id)
        split = in_sample_module.runs_split(stored.runs, report)
        ranked = stored.runs if mode == "include" else split.out_of_sample
        results = tournament_results(ranked, baselines=stored.baselines, reference=stored.reference or None,
                                     metric=metric)
        apart = None
        if mode == "apart" and split.in_sample:
            apart = tournament_results(split.in_sample, baselines=stored.baselines,
                                       reference=stored.reference or None, metric=metric)
        windows = len({run.window for run in stored.runs})
        page = ResultsPage(tournament_id, completed, results, stored, _power_sentence(results),
                           in_sample_module.report_dict(report, split, mode, windows), apart)
        cache.set(key, page, CACHE_SECONDS)
    return page


# -- plain data for the API and the exports ----------------------------------------------------------


def _clean(value):
    """JSON-safe: dataclasses to dicts, tuples to lists, NaN and infinities to None."""
    if dataclasses.is_dataclass(value):
        return {field.name: _clean(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    return value


def results_dict(page: ResultsPage) -> dict:
    """GET /api/v1/tournaments/{id}/results: ranking with intervals, pairs, MCS, power."""
    results = page.results
    baselines = set(page.stored.baselines)
    members = set(results.mcs.members) if results.mcs else set()
    ranking = []
    for row in results.agents:
        ranking.append(
            {
                **_clean(row),
                "is_baseline": row.agent in baselines,
                "in_confidence_set": row.agent in members,
            }
        )
    return {
        "tournament_id": page.tournament_id,
        "runs_completed": page.runs_completed,
        "metric": results.metric,
        "alpha": results.alpha,
        "resamples": results.resamples,
        "seed": results.seed,
        "test": results.test,
        "windows": list(results.windows),
        "ranking": ranking,
        "pairs": _clean(results.pairs),
        "model_confidence_set": _clean(results.mcs),
        "power": _clean(results.power),
        "power_sentence": _clean(page.power_sentence),
        "in_sample": {
            **(page.in_sample or {}),
            # mode "apart": the in-sample results ranked alone (null when there are none, or in another mode)
            "results": _clean({"windows": list(page.in_sample_results.windows),
                               "ranking": list(page.in_sample_results.agents),
                               "pairs": page.in_sample_results.pairs}) if page.in_sample_results else None,
        },
    }


AGENT_RESULT_COLUMNS = [
    "run_id", "window", "instance", "agent", "is_baseline", "return_pct", "sharpe", "max_drawdown_pct",
    "cost_adjusted_return_pct", "cost_usd", "input_tokens", "output_tokens", "invocations", "invalid_responses",
    "actions_proposed", "actions_rejected", "latency_seconds_sum", "latency_samples", "rounds",
    "benchmark_return_pct",
]  # fmt: skip


def agent_result_rows(tournament_id: int) -> list[dict]:
    """One row per completed run and agent, as stored (one query): a tidy frame for pandas."""
    rows = []
    for run_id, window, instance, result in (
        TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED)
        .order_by("window__index", "instance")
        .values_list("pk", "window__index", "instance", "result")
    ):
        for participant in (result or {}).get("participants", []):
            stats = participant.get("statistics") or {}
            rows.append({
                "run_id": run_id, "window": window, "instance": instance, "agent": participant["name"],
                "is_baseline": participant.get("llm_provider") == "baseline",
                "return_pct": _float(None if participant.get("return_pct") is None else float(participant["return_pct"])),
                **{column: stats.get(column) for column in AGENT_RESULT_COLUMNS[6:18]},
                "rounds": len(stats.get("returns") or ()) if stats else None,
                "benchmark_return_pct": (result or {}).get("benchmark_return_pct"),
            })  # fmt: skip
    return rows


AGENT_SUMMARY_COLUMNS = [
    "rank", "agent", "is_baseline", "in_confidence_set", "windows", "runs", "metric", "mean", "mean_low",
    "mean_high", "median", "median_low", "median_high", "psr", "dsr", "cost_usd", "invalid_response_rate_pct",
]  # fmt: skip


def agent_summary_rows(page: ResultsPage) -> list[dict]:
    """One row per agent for the page's metric: the ranking, flat."""
    results = page.results
    members = set(results.mcs.members) if results.mcs else set()
    rows = []
    for row in results.agents:
        summary = row.metrics[results.metric]
        rows.append({
            "rank": row.rank, "agent": row.agent, "is_baseline": row.agent in page.stored.baselines,
            "in_confidence_set": row.agent in members, "windows": row.windows, "runs": row.runs,
            "metric": results.metric, "mean": summary.mean,
            "mean_low": summary.mean_interval.low if summary.mean_interval else None,
            "mean_high": summary.mean_interval.high if summary.mean_interval else None,
            "median": summary.median,
            "median_low": summary.median_interval.low if summary.median_interval else None,
            "median_high": summary.median_interval.high if summary.median_interval else None,
            "psr": row.sharpe_confidence.psr, "dsr": row.sharpe_confidence.dsr, "cost_usd": row.usage.cost_usd,
            "invalid_response_rate_pct": row.usage.invalid_response_rate_pct,
        })  # fmt: skip
    return [_clean(row) for row in rows]
