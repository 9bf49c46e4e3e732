"""Tournament pages (issue 15): the list, and a page that follows a tournament while it runs
and then says who is better and how sure that is.

The page reads the runs (one query, their stored results left out), the lineup, and the
tournament's results as tournaments.results stored them when the last run completed (one
query: the runs already tell the state they must match), never replaying a run nor, unless
they are stale, computing the statistics. The in-sample mode (the page's `?in_sample=` or the
tournament's setting) picks the stored row, as the lineup's resolved training cutoffs do
(tournaments.in_sample); web.tournament_memory renders what the mode did. While the tournament
runs, the live region polls; its HTML is cached per (runs' state, metric, in-sample mode and
registry), so a poll that finds nothing new costs the queries that tell it so. Polling stops (HTTP 286) once the tournament is completed or cancelled.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from urllib.parse import urlencode

from django.core.cache import cache
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

from agents.registry import registry_digest
from tournaments import in_sample as tournament_in_sample
from tournaments import results as tournament_results
from tournaments.models import RunStatus, Tournament, TournamentRun
from web import figures, tournament_memory

POLL_SECONDS = 3
LIVE_CACHE_SECONDS = 300
METRIC_LABELS = {
    "return_pct": "Return",
    "sharpe": "Sharpe",
    "max_drawdown_pct": "Max drawdown",
    "cost_adjusted_return_pct": "Cost-adjusted return",
}
FINISHED = (Tournament.Status.COMPLETED, Tournament.Status.CANCELLED)


@require_GET
def tournament_list(request: HttpRequest) -> HttpResponse:
    tournaments = Tournament.objects.annotate(
        entry_count=Count("entries", distinct=True),
        run_count=Count("runs", distinct=True),
        runs_completed=Count("runs", filter=Q(runs__status=RunStatus.COMPLETED), distinct=True),
        runs_failed=Count("runs", filter=Q(runs__status=RunStatus.FAILED), distinct=True),
        window_count=Count("windows", distinct=True),
    ).order_by("-created_at", "-id")
    context = {"tournaments": list(tournaments), "poll_seconds": POLL_SECONDS * 2}
    if request.htmx:
        return render(request, "web/tournament_list.html#tournament-table", context)
    return render(request, "web/tournament_list.html", context)


def metric_param(request: HttpRequest) -> str:
    metric = request.GET.get("metric", "return_pct")
    return metric if metric in tournament_results.METRICS else "return_pct"


def in_sample_param(request: HttpRequest, tournament: Tournament) -> str:
    # the page's choice, else the tournament's setting (web.tournament_memory, docs/memory.md)
    mode = request.GET.get("in_sample")
    return mode if mode in tournament_memory.IN_SAMPLE_MODES else tournament.in_sample


def tournament_or_404(tournament_id: int) -> Tournament:
    try:
        return Tournament.objects.get(pk=tournament_id)
    except Tournament.DoesNotExist as exc:
        raise Http404("no such tournament") from exc


def page_choices(request: HttpRequest, tournament_id: int) -> tuple[Tournament, str, str]:
    """The tournament (404 when missing), and the metric and in-sample mode its pages show."""
    tournament = tournament_or_404(tournament_id)
    return tournament, metric_param(request), in_sample_param(request, tournament)


def _rounds_per_window(tournament: Tournament, window) -> int:
    # as tournaments.selectors.rounds_planned: the agents' rounds plus the settling round
    try:
        step = max(1, int(tournament.rules.get("invocation_interval_minutes", 60))) * 60
    except (TypeError, ValueError):
        step = 3600
    return math.ceil((window["end"] - window["start"]).total_seconds() / step) + 1


def _run_rows(tournament: Tournament) -> list[dict]:
    return list(
        TournamentRun.objects.filter(tournament=tournament)
        .order_by("window__index", "instance")
        .values("pk", "window__index", "window__start_time", "window__end_time", "instance", "status",
                "rounds_done", "competition_id", "llm_cost_usd", "attempts", "error", "finished_at")
    )  # fmt: skip


def lineup(tournament: Tournament) -> list[dict]:
    # llm_config: an entry's own training cutoff, which the in-sample selection reads
    return list(tournament.entries.order_by("id").values("pk", "name", "llm_provider", "llm_model", "llm_config"))


def selection(tournament: Tournament, entries: list[dict]) -> str:
    """The in-sample selection's digest of the lineup the page holds (no query): picks the stored row."""
    return tournament_in_sample.selection_digest(masked=bool((tournament.rules or {}).get("masked")), entries=entries)


def _grid(tournament: Tournament, runs: list[dict]) -> tuple[list[dict], dict]:
    """Windows (rows) x instances (cells) with each run's status and progress; totals."""
    windows: dict[int, dict] = {}
    totals = defaultdict(int)
    for run in runs:
        window = windows.setdefault(run["window__index"], {
            "index": run["window__index"], "start": run["window__start_time"], "end": run["window__end_time"],
            "runs": [],
        })  # fmt: skip
        planned = _rounds_per_window(tournament, window)
        run["rounds_planned"] = planned
        run["percent"] = (
            100
            if run["status"] == RunStatus.COMPLETED
            else min(100, round(100 * run["rounds_done"] / planned))
        )
        window["runs"].append(run)
        totals[run["status"]] += 1
        totals["rounds_done"] += run["rounds_done"]
        totals["rounds_planned"] += planned
    totals["runs"] = len(runs)
    return list(windows.values()), dict(totals)


def _state_key(tournament: Tournament, runs: list[dict], metric: str, in_sample: str) -> str:
    state = "|".join(f"{r['pk']}:{r['status']}:{r['rounds_done']}" for r in runs)
    # the registry: a corrected training cutoff moves which windows are in-sample
    raw = f"tournament-live|{tournament.pk}|{tournament.status}|{metric}|{in_sample}|{registry_digest()}|{state}"
    return "gauntlet:tournament-live:" + hashlib.sha256(raw.encode()).hexdigest()


@require_GET
def tournament_detail(request: HttpRequest, tournament_id: int) -> HttpResponse:
    tournament, metric, in_sample = page_choices(request, tournament_id)
    runs = _run_rows(tournament)
    key = _state_key(tournament, runs, metric, in_sample)
    html, entries = cache.get(key), None
    if html is None:
        entries = lineup(tournament)
        html = render_to_string(
            "web/tournament_detail.html#live", _live_context(tournament, runs, entries, metric, in_sample),
            request=request,
        )
        cache.set(key, html, LIVE_CACHE_SECONDS)
    if request.htmx:
        status = HttpResponseStopPolling.status_code if tournament.status in FINISHED else 200
        return HttpResponse(html, status=status)
    return render(request, "web/tournament_detail.html", {
        "tournament": tournament, "entries": entries if entries is not None else lineup(tournament),
        "metric": metric, "in_sample": in_sample, "live_html": mark_safe(html),
    })  # fmt: skip


def _live_context(tournament: Tournament, runs: list[dict], entries: list[dict], metric: str, in_sample: str) -> dict:
    windows, totals = _grid(tournament, runs)
    instances = list(range(tournament.instances))
    context = {
        "tournament": tournament,
        "metric": metric,
        "metric_label": METRIC_LABELS[metric],
        "metric_choices": list(METRIC_LABELS.items()),
        "in_sample": in_sample,
        "in_sample_choices": tournament_memory.IN_SAMPLE_CHOICES,
        "windows": windows,
        "instances": instances,
        "totals": totals,
        "llm_cost_usd": sum((run["llm_cost_usd"] for run in runs), start=0),
        "failures": [run for run in runs if run["status"] == RunStatus.FAILED][:20],
        "live": tournament.status not in FINISHED,
        "poll_seconds": POLL_SECONDS,
        "page": None,
    }
    # the stored results, read while they count exactly these completed runs with this lineup's cutoffs
    state = tournament_results.state_of([run["finished_at"] for run in runs if run["status"] == RunStatus.COMPLETED])
    page = tournament_results.tournament_results_get(
        tournament_id=tournament.pk, settings=tournament_results.ResultsSettings(metric=metric, in_sample=in_sample),
        state=state, selection=selection(tournament, entries),
    )
    if page is not None:
        context.update(_results_context(tournament, page, entries))
        context.update(tournament_memory.in_sample_context(page))
    return context


def compare_url(
    tournament_id: int, entry_ids: dict[str, int], first: str, second: str, metric: str, in_sample: str
) -> str | None:
    """The tournament compare page of two agents (by lineup entry), None for an agent not in the lineup."""
    if first not in entry_ids or second not in entry_ids:
        return None
    query = urlencode({"a": entry_ids[first], "b": entry_ids[second], "metric": metric, "in_sample": in_sample})
    return f"{reverse('tournament-compare', args=[tournament_id])}?{query}"


def _results_context(tournament: Tournament, results: dict, entries: list[dict]) -> dict:
    metric, in_sample = results["metric"], results["settings"]["in_sample"]
    unit = tournament_results.UNITS[metric]
    label = METRIC_LABELS[metric]
    mcs = results["model_confidence_set"] or {}
    agents = [row["agent"] for row in results["ranking"]]
    entry_ids = {entry["name"]: entry["pk"] for entry in entries}
    ranking = []
    for row in results["ranking"]:
        rates = {rate["opponent"]: rate for rate in row["win_rates"]}
        # each agent links to its comparison with the leader; the leader to the runner-up
        rival = (agents[1] if len(agents) > 1 else None) if row["agent"] == agents[0] else agents[0]
        ranking.append({
            "row": row, "summary": row["metrics"][metric], "is_baseline": row["is_baseline"],
            "in_set": row["in_confidence_set"], "mcs_p": mcs.get("p_values", {}).get(row["agent"]),
            "vs_hold": rates.get("buy and hold"), "rates": rates, "rival": rival,
            "compare_url": compare_url(tournament.pk, entry_ids, row["agent"], rival, metric, in_sample) if rival else None,
        })  # fmt: skip
    cells, links = {}, {}
    for pair in results["pairs"].get(metric, ()):
        flipped = {"better": "worse", "worse": "better"}.get(pair["verdict"], pair["verdict"])
        low, high = (pair["interval"]["low"], pair["interval"]["high"]) if pair["interval"] else (None, None)
        difference = pair["mean_difference"]
        cells[(pair["first"], pair["second"])] = figures.PairCell(
            pair["verdict"], difference, low, high, pair["p_adjusted"]
        )
        cells[(pair["second"], pair["first"])] = figures.PairCell(
            flipped, None if difference is None else -difference,
            None if high is None else -high, None if low is None else -low, pair["p_adjusted"],
        )  # fmt: skip
        for first, second in ((pair["first"], pair["second"]), (pair["second"], pair["first"])):
            links[(first, second)] = compare_url(tournament.pk, entry_ids, first, second, metric, in_sample)
    windows = results["windows"]
    # the values the ranking counted: an in-sample cell left out (or ranked apart) is not drawn
    values = {
        agent: {window: value for window, value in zip(windows, series, strict=True) if value is not None}
        for agent, series in results["window_values"][metric].items()
    }
    forest = [
        figures.ForestRow(
            item["row"]["agent"], item["summary"]["mean"],
            (item["summary"]["mean_interval"] or {}).get("low"), (item["summary"]["mean_interval"] or {}).get("high"),
            item["is_baseline"], item["in_set"],
        )
        for item in ranking
    ]  # fmt: skip
    uirevision = f"tournament-{tournament.pk}-{metric}"
    return {
        "page": results,
        "results": results,
        "ranking": ranking,
        "opponents": [*results["baselines"], *(["buy and hold"] if any(item["vs_hold"] for item in ranking) else [])],
        "unit": unit,
        "sentence": results["power_sentence"],
        "result_windows": windows,
        "forest_figure": figures.forest_figure(forest, label=label, unit=unit, uirevision=uirevision),
        "pairwise_figure": figures.pairwise_figure(agents, cells, unit=unit, uirevision=uirevision, links=links),
        "window_figure": figures.window_heatmap_figure(
            agents, windows, values, label=label, unit=unit, uirevision=uirevision
        ),
    }


@require_GET
def tournament_window(request: HttpRequest, tournament_id: int, window_index: int) -> HttpResponse:
    """Equity curves (cumulative return round by round) of every agent and instance of one window,
    from the stored per-round returns, with links to each run's competition dashboard."""
    tournament = tournament_or_404(tournament_id)
    runs = list(
        TournamentRun.objects.filter(tournament=tournament, window__index=window_index)
        .order_by("instance")
        .values(
            "pk", "instance", "status", "competition_id", "result", "window__start_time", "window__end_time"
        )
    )
    if not runs:
        raise Http404("no such window")
    colors: dict[str, str] = {}
    lines = []
    dashes = ("solid", "dot", "dash")
    by_agent: dict[str, list[list[float]]] = defaultdict(list)
    for run in runs:
        for participant in (run["result"] or {}).get("participants", []):
            returns = ((participant.get("statistics") or {}).get("returns")) or []
            colors.setdefault(participant["name"], figures.color_for(len(colors)))
            by_agent[participant["name"]].append(returns)
            if len(runs) <= len(dashes):  # a few instances: each its own line
                name = (
                    participant["name"] if len(runs) == 1 else f"{participant['name']} · i{run['instance']}"
                )
                lines.append(
                    figures.RoundLine(name, returns, colors[participant["name"]], dashes[run["instance"] % 3])
                )
    if len(runs) > len(dashes):  # many instances: one line per agent, the instances averaged round by round
        for agent, series in by_agent.items():
            rounds = max(len(returns) for returns in series)
            mean = [
                sum(r[i] for r in series if i < len(r)) / max(1, sum(1 for r in series if i < len(r)))
                for i in range(rounds)
            ]
            lines.append(figures.RoundLine(f"{agent} (mean of {len(series)})", mean, colors[agent]))
    context = {
        "tournament": tournament,
        "window_index": window_index,
        "runs": runs,
        "start": runs[0]["window__start_time"],
        "end": runs[0]["window__end_time"],
        "equity_figure": figures.window_equity_figure(
            lines, uirevision=f"window-{tournament.pk}-{window_index}"
        )
        if lines
        else None,
    }
    if request.htmx:
        return render(request, "web/tournament_detail.html#window", context)
    return render(request, "web/tournament_window.html", context)
