"""Tournament results that say how sure they are (issue 15), from STORED per-run results.

Per run: when a run completes, `statistics_add` writes into its `result` JSON what the
statistics need per agent (Sharpe, max drawdown, cost-adjusted return, LLM counts, per-round
returns) and the run's buy-and-hold return; `results_backfill` fills runs completed before.

Per tournament: the ranking with intervals, the pairs after Holm, the model confidence set and
power (analytics.tournament) are computed from those rows by the worker that completes a run,
for every metric, and stored in a TournamentResults row per settings with the state they were
computed from (completed runs, last finish); the run's completion and its results are
committed together. Pages and the API read the row while its state is current, so no request
pays for the bootstrap; a stale or missing row (other settings, a worker that died between
the two) is computed by the request and stored. A write never puts an older state over a newer.

Which results a ranking counts (`ranking_input`) follows the settings' `in_sample` mode
(tournaments.in_sample: a window before an agent's training cutoff is left out of its
statistics, ranked apart, or included). The mode is a setting, so each mode has its own row;
the worker stores the tournament's own mode, another mode (the page's toggle, the API's
parameter, a changed setting) is computed when first asked. What decides the selection besides
the windows (the lineup's resolved cutoffs, masking: `in_sample.selection_digest`) is part of
the row's key, so a corrected cutoff is never read from an older row.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import time
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics import mcs as mcs_module
from analytics import power as power_module
from analytics.paired import DEFAULT_PAIRED_TEST
from analytics.resampling import DEFAULT_RESAMPLES
from analytics.tournament import METRICS, RunResult, tournament_results, window_values
from analytics.tournament import TournamentResults as TournamentResultsData

from . import in_sample as in_sample_module
from . import ports
from .in_sample import InSampleReport
from .models import RunStatus, Tournament, TournamentResults, TournamentRun

# Bumped when the stored per-agent statistics change shape; older runs are backfilled.
STATISTICS_VERSION = 1
# Bumped when the stored tournament-level results change shape: every stored row is then stale.
RESULTS_VERSION = 2  # 2: the in-sample mode and report
# Per-round returns are stored rounded: 12 significant digits are far below any market move.
RETURN_DIGITS = 12
UNITS = {"return_pct": "%", "sharpe": "", "max_drawdown_pct": "%", "cost_adjusted_return_pct": "%"}


@dataclasses.dataclass(frozen=True)
class ResultsSettings:
    """Everything stored results depend on besides the runs; hashed (with the versions) into
    the row's key. `metric` orders the ranking and is the MCS loss (minus the metric per window)
    and the power sentence's scale; `in_sample` says which results count (tournaments.in_sample);
    the rest are analytics.tournament's parameters."""

    metric: str = "return_pct"
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    alpha: float = 0.05
    test: str = DEFAULT_PAIRED_TEST
    mcs_size: float = mcs_module.DEFAULT_SIZE
    mcs_block_size: int = mcs_module.DEFAULT_BLOCK_SIZE
    mcs_reps: int = mcs_module.DEFAULT_REPS
    power: float = 0.80
    in_sample: str = in_sample_module.DEFAULT_MODE

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; choose from {list(METRICS)}")
        if self.in_sample not in in_sample_module.MODES:
            raise ValueError(f"in_sample must be one of {list(in_sample_module.MODES)}, got {self.in_sample!r}")

    def key(self, selection: str) -> str:
        """The stored row's key: these settings, the formats' versions and the in-sample
        selection's digest (in_sample.selection_digest)."""
        payload = {
            "results": RESULTS_VERSION, "statistics": STATISTICS_VERSION, "selection": selection,
            **dataclasses.asdict(self),
        }  # fmt: skip
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def analytics_options(self) -> dict:
        """The keyword arguments of analytics.tournament.tournament_results."""
        return {name: value for name, value in dataclasses.asdict(self).items() if name != "in_sample"}


# What a completing run stores: every metric the pages offer, in the tournament's in-sample mode.
STORED_SETTINGS: tuple[ResultsSettings, ...] = tuple(ResultsSettings(metric=metric) for metric in METRICS)


def stored_settings(in_sample: str) -> tuple[ResultsSettings, ...]:
    return tuple(dataclasses.replace(settings, in_sample=in_sample) for settings in STORED_SETTINGS)


def finite_or_none(value) -> float | None:
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
            benchmark = finite_or_none(metrics.return_pct)
            continue
        usage = invocations.get(row.participant_id, {})
        agents[row.name] = {
            "is_baseline": row.is_baseline,
            "sharpe": finite_or_none(metrics.sharpe),
            "max_drawdown_pct": finite_or_none(metrics.max_drawdown),
            "cost_adjusted_return_pct": finite_or_none(metrics.cost_adjusted_return),
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
    returns how many runs were filled. Safe to repeat: a filled run is skipped. The filled
    tournaments' stored results are computed again (their state did not move, so they would
    otherwise be read as fresh)."""
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
    for filled_id in tournaments:
        TournamentResults.objects.filter(tournament_id=filled_id).delete()
        results_refresh(tournament_id=filled_id)
    return filled


# -- the completed runs, and which of them a ranking counts ------------------------------------------


@dataclasses.dataclass(frozen=True)
class ResultsState:
    """What stored results were computed from: a run completing moves it, nothing else does."""

    runs_completed: int
    last_finished_at: datetime | None


@dataclasses.dataclass(frozen=True)
class CompletedRun:
    run_id: int
    window: int  # the window's index
    instance: int
    result: dict
    finished_at: datetime | None


def completed_runs(tournament_id: int) -> list[CompletedRun]:
    """One query: every completed run with its stored result, in window and instance order."""
    rows = (
        TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED)
        .order_by("window__index", "instance")
        .values_list("pk", "window__index", "instance", "result", "finished_at")
    )
    return [CompletedRun(pk, window, instance, result or {}, finished) for pk, window, instance, result, finished in rows]


def state_of(finishes: list[datetime | None]) -> ResultsState:
    """The state made by completed runs that finished at these times (a caller holding the runs
    already, such as the tournament page, needs no query for it)."""
    known = [finished for finished in finishes if finished is not None]
    return ResultsState(len(finishes), max(known) if known else None)


def runs_state(runs: list[CompletedRun]) -> ResultsState:
    return state_of([run.finished_at for run in runs])


def results_state(tournament_id: int) -> ResultsState:
    state = TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED).aggregate(
        count=Count("id"), last=Max("finished_at")
    )
    return ResultsState(state["count"], state["last"])


@dataclasses.dataclass(frozen=True)
class RankingInput:
    """The completed runs a ranking counts, as analytics wants them."""

    runs: list[RunResult]
    reference: dict[int, float]  # window index -> buy-and-hold return %, averaged over instances
    baselines: list[str]
    # every agent's results split by its training cutoff: `runs` is split.out_of_sample unless the
    # mode includes them; mode apart ranks split.in_sample on its own
    split: in_sample_module.Split


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


def ranking_input(runs: list[CompletedRun], settings: ResultsSettings, report: InSampleReport) -> RankingInput:
    """Which results a ranking counts: every agent with a return in every completed run, less
    the windows in-sample for that agent (by `report`) unless `settings.in_sample` is include."""
    results, reference, baselines = [], {}, {}
    for run in runs:
        for participant in run.result.get("participants", []):
            if participant.get("return_pct") is None:
                continue
            results.append(_run_result(participant["name"], run.window, run.instance, participant))
            if participant.get("llm_provider") == "baseline":
                baselines[participant["name"]] = True
        benchmark = run.result.get("benchmark_return_pct")
        if benchmark is not None:
            reference.setdefault(run.window, []).append(float(benchmark))
    split = in_sample_module.runs_split(results, report)
    return RankingInput(
        runs=results if settings.in_sample == "include" else split.out_of_sample,
        reference={window: sum(values) / len(values) for window, values in reference.items()},
        baselines=list(baselines),
        split=split,
    )


# -- computing the tournament-level results ----------------------------------------------------------


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


def _power_sentence(results: TournamentResultsData) -> PowerSentence:
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


def _in_sample_dict(chosen: RankingInput, settings: ResultsSettings, report: InSampleReport) -> dict:
    """What the ranking did with in-sample windows, per agent and why; mode apart: those results ranked alone."""
    split = chosen.split
    windows = len({run.window for run in (*split.out_of_sample, *split.in_sample)})
    apart = None
    if settings.in_sample == "apart" and split.in_sample:
        ranked = tournament_results(
            split.in_sample, baselines=chosen.baselines, reference=chosen.reference or None,
            **settings.analytics_options(),
        )  # fmt: skip
        apart = {"windows": list(ranked.windows), "ranking": list(ranked.agents), "pairs": ranked.pairs}
    return {**in_sample_module.report_dict(report, split, settings.in_sample, windows), "results": apart}


def results_compute(
    *, tournament_id: int, runs: list[CompletedRun], settings: ResultsSettings, report: InSampleReport
) -> dict | None:
    """What GET /api/v1/tournaments/{id}/results answers for these completed runs (None if no agent
    has a result): the ranking with intervals, every pair after Holm, the model confidence set,
    power and its sentence, each agent's value per window for every metric (the heatmap and
    the compare page read them), and what was done with in-sample windows (`report`: the
    tournament's in_sample.in_sample_report). Plain JSON, stored as it is."""
    chosen = ranking_input(runs, settings, report)
    if not chosen.split.out_of_sample and not chosen.split.in_sample:
        return None
    results = tournament_results(
        chosen.runs, baselines=chosen.baselines, reference=chosen.reference or None, **settings.analytics_options()
    )
    state = runs_state(runs)
    baselines = set(chosen.baselines)
    members = set(results.mcs.members) if results.mcs else set()
    windows = list(results.windows)
    agents = [row.agent for row in results.agents]
    per_window = {}
    for name in METRICS:
        per_window[name] = {}
        for agent in agents:
            values = window_values(chosen.runs, agent, name)
            per_window[name][agent] = [values.get(window) for window in windows]
    return _clean({
        "tournament_id": tournament_id,
        "runs_completed": state.runs_completed,
        "last_finished_at": state.last_finished_at.isoformat() if state.last_finished_at else None,
        "settings": dataclasses.asdict(settings),
        "metric": results.metric, "alpha": results.alpha, "resamples": results.resamples, "seed": results.seed,
        "test": results.test, "windows": windows,
        "ranking": [
            {**_clean(row), "is_baseline": row.agent in baselines, "in_confidence_set": row.agent in members}
            for row in results.agents
        ],
        "pairs": results.pairs,
        "model_confidence_set": results.mcs,
        "power": results.power,
        "power_sentence": _power_sentence(results),
        "baselines": chosen.baselines,
        "window_values": per_window,
        "in_sample": _in_sample_dict(chosen, settings, report),
    })  # fmt: skip


# -- stored results: written when a run completes, read by pages and the API ---------------------------


def _store(
    *, tournament_id: int, settings: ResultsSettings, selection: str, data: dict, state: ResultsState, seconds: float
) -> bool:
    """Write `data` unless the row already holds this state or a newer one (compare and set on
    the state: two workers finishing runs at once never put an older state over a newer one).
    A new row replaces the rows of the same settings under an older in-sample selection."""
    newer = Q(runs_completed__lt=state.runs_completed)
    if state.last_finished_at is not None:
        newer |= Q(runs_completed=state.runs_completed) & (
            Q(last_finished_at__lt=state.last_finished_at) | Q(last_finished_at__isnull=True)
        )
    plain = dataclasses.asdict(settings)
    values = {
        "settings": {**plain, "selection": selection}, "runs_completed": state.runs_completed,
        "last_finished_at": state.last_finished_at, "data": data, "computed_at": timezone.now(),
        "compute_seconds": round(seconds, 4),
    }  # fmt: skip
    key = settings.key(selection)
    rows = TournamentResults.objects.filter(tournament_id=tournament_id, settings_key=key)
    if rows.filter(newer).update(**values):
        return True
    try:
        with transaction.atomic():  # a savepoint: a lost race leaves the caller's transaction usable
            TournamentResults.objects.create(tournament_id=tournament_id, settings_key=key, **values)
    except IntegrityError:  # a row exists: it holds this state or a newer one, or one that lost a race to us
        return bool(rows.filter(newer).update(**values))
    older = [
        pk for pk, stored in TournamentResults.objects.filter(tournament_id=tournament_id).exclude(settings_key=key)
        .values_list("pk", "settings")
        if {name: value for name, value in stored.items() if name != "selection"} == plain
    ]  # fmt: skip
    TournamentResults.objects.filter(pk__in=older).delete()
    return True


def _computed(
    tournament_id: int, runs: list[CompletedRun], settings: ResultsSettings, report: InSampleReport
) -> tuple[dict | None, float]:
    began = time.perf_counter()
    data = results_compute(tournament_id=tournament_id, runs=runs, settings=settings, report=report)
    return data, time.perf_counter() - began


def _mode(tournament_id: int) -> str:
    mode = Tournament.objects.filter(pk=tournament_id).values_list("in_sample", flat=True).first()
    return mode or in_sample_module.DEFAULT_MODE


def results_refresh(
    *, tournament_id: int, settings: tuple[ResultsSettings, ...] | None = None
) -> ResultsState:
    """Compute and store the results of the tournament's completed runs as they are now (by
    default for every metric in the tournament's in-sample mode)."""
    settings = stored_settings(_mode(tournament_id)) if settings is None else settings
    report = in_sample_module.in_sample_report(tournament_id=tournament_id)
    runs = completed_runs(tournament_id)
    state = runs_state(runs)
    for one in settings:
        data, seconds = _computed(tournament_id, runs, one, report)
        if data is not None:
            _store(tournament_id=tournament_id, settings=one, selection=report.digest, data=data, state=state,
                   seconds=seconds)  # fmt: skip
    return state


@dataclasses.dataclass(frozen=True)
class PreparedResults:
    """Results computed for the state a completing run is about to make (runs.run_execute)."""

    tournament_id: int
    state: ResultsState
    selection: str  # the in-sample selection they were computed with (InSampleReport.digest)
    computed: tuple[tuple[ResultsSettings, dict, float], ...]


def results_prepare(*, tournament_id: int, completing: CompletedRun) -> PreparedResults:
    """The results as they will be once `completing` is stored as completed, computed BEFORE it
    is (outside any transaction: the bootstrap takes a while), so that the run's completion and
    its results become visible in one commit (`results_commit`): every metric, in the
    tournament's in-sample mode."""
    report = in_sample_module.in_sample_report(tournament_id=tournament_id)
    runs = [run for run in completed_runs(tournament_id) if run.run_id != completing.run_id]
    runs = sorted([*runs, completing], key=lambda run: (run.window, run.instance))
    computed = []
    for one in stored_settings(_mode(tournament_id)):
        data, seconds = _computed(tournament_id, runs, one, report)
        if data is not None:
            computed.append((one, data, seconds))
    return PreparedResults(tournament_id, runs_state(runs), report.digest, tuple(computed))


def results_commit(prepared: PreparedResults) -> bool:
    """Store prepared results, inside the transaction that marks the run completed, if the
    tournament's state is the one they were computed for. The caller holds the tournament's row
    lock, so completions take turns: when two runs finish at once the second sees the first and
    gets False, and computes again after its commit (`results_refresh`)."""
    if results_state(prepared.tournament_id) != prepared.state:
        return False
    for settings, data, seconds in prepared.computed:
        _store(tournament_id=prepared.tournament_id, settings=settings, selection=prepared.selection, data=data,
               state=prepared.state, seconds=seconds)  # fmt: skip
    return True


def tournament_results_get(
    *,
    tournament_id: int,
    metric: str = "return_pct",
    in_sample: str | None = None,
    settings: ResultsSettings | None = None,
    state: ResultsState | None = None,
    selection: str | None = None,
) -> dict | None:
    """The tournament's results for `settings` (or the default settings with `metric` and the
    `in_sample` mode, else the tournament's own); None before a run completes. Read from the
    stored row when it was computed from the current state (give `state` when the caller already
    has the runs; else one aggregate query finds it) and the current in-sample selection (give
    `selection`, in_sample.selection_digest, when the caller holds the lineup; else two queries
    find it, with the tournament's mode); computed and stored only when the row is stale or
    missing (other settings or mode, a corrected cutoff, or a run that completed in a process
    that died before storing). One query when the caller gives all three and the row is stored."""
    tournament = None
    if settings is None or selection is None:
        tournament = Tournament.objects.only("rules", "in_sample").get(pk=tournament_id)
    settings = settings or ResultsSettings(metric=metric, in_sample=in_sample or tournament.in_sample)
    state = state or results_state(tournament_id)
    if not state.runs_completed:
        return None
    selection = selection or in_sample_module.selection_digest_get(tournament)
    row = (
        TournamentResults.objects.filter(tournament_id=tournament_id, settings_key=settings.key(selection))
        .values("runs_completed", "last_finished_at", "data")
        .first()
    )
    if row and ResultsState(row["runs_completed"], row["last_finished_at"]) == state:
        return row["data"]
    report = in_sample_module.in_sample_report(tournament_id=tournament_id)
    runs = completed_runs(tournament_id)
    data, seconds = _computed(tournament_id, runs, settings, report)
    if data is not None:
        _store(tournament_id=tournament_id, settings=settings, selection=report.digest, data=data,
               state=runs_state(runs), seconds=seconds)  # fmt: skip
    return data
