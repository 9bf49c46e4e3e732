"""The compare page of two tournament agents (issue 15): their paired per-window differences on
return and Sharpe, with the paired bootstrap interval, the p-value and the Holm-adjusted
verdict as the tournament's stored results hold them, a chart of both agents window by window,
and links to each run's competition compare page.

An agent is a lineup entry (`?a=<entry id>&b=<entry id>`); in every run it is one participant.
The in-sample mode (`?in_sample=`, else the tournament's setting; tournaments.in_sample) picks
the stored results: by default a window that starts before either agent's training-data
cutoff is left out, so the pair is compared only on the windows both have out of sample, and
the page says which and why. The page reads the tournament, its lineup, the stored results
(state and row) and the two agents' participants: five queries, whatever the number of runs.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from analytics.tournament import PAIR_METRICS
from tournaments import results as tournament_results
from tournaments import selectors as tournament_selectors
from web import figures
from web.tournament_memory import IN_SAMPLE_CHOICES
from web.tournament_views import METRIC_LABELS, lineup, page_choices, selection

FLIPPED = {"better": "worse", "worse": "better"}


def _oriented(pair: dict, first: str, unit: str, label: str) -> dict:
    """A stored pair as `first` minus the other: the difference, interval and verdict turned round
    when the results hold it the other way (the p-values do not depend on the order)."""
    interval = pair["interval"] or {}
    low, high, difference, verdict = interval.get("low"), interval.get("high"), pair["mean_difference"], pair["verdict"]
    second = pair["second"] if pair["first"] == first else pair["first"]
    if pair["first"] != first:
        low, high = (None if high is None else -high), (None if low is None else -low)
        difference = None if difference is None else -difference
        verdict = FLIPPED.get(verdict, verdict)
    return {
        "label": f"{label}: {first} − {second}", "metric_label": label, "first": first, "second": second, "unit": unit,
        "difference": difference, "ci_low": low, "ci_high": high, "verdict": verdict, "p_value": pair["p_value"],
        "p_adjusted": pair["p_adjusted"], "windows": pair["windows"], "test": pair["test"],
        "minimum_detectable_difference": pair["minimum_detectable_difference"],
    }  # fmt: skip


def _pair(results: dict, metric: str, first: str, second: str) -> dict | None:
    for pair in results["pairs"].get(metric, ()):
        if {pair["first"], pair["second"]} == {first, second}:
            return _oriented(pair, first, tournament_results.UNITS[metric], METRIC_LABELS[metric])
    return None


def _memory(results: dict, first: str, second: str) -> dict:
    """What the in-sample mode did to this pair: each agent's windows before its cutoff and why,
    and how many windows the pair is compared on."""
    report = results.get("in_sample") or {}
    agents = {item["agent"]: item for item in report.get("agents", ())}
    both = [agents[name] for name in (first, second) if name in agents]
    windows = set(results["windows"])
    remembered = {item["agent"]: sorted(set(item["in_sample_windows"]) & windows) for item in both}
    return {
        "mode": report.get("mode"), "masked": report.get("masked", False), "agents": both,
        "in_sample": remembered, "any": any(remembered.values()),
        "either": sorted(set().union(*remembered.values())) if remembered else [],
    }  # fmt: skip


def _window_rows(results: dict, first: str, second: str, links: dict, memory: dict) -> list[dict]:
    values = results["window_values"]
    rows = []
    for position, window in enumerate(results["windows"]):
        row = {"window": window, "runs": sorted(
            (instance, run) for (index, instance), run in links.items() if index == window
        ), "in_sample": [name for name, windows in memory["in_sample"].items() if window in windows]}  # fmt: skip
        for metric in PAIR_METRICS:
            a = values[metric].get(first, [None] * len(results["windows"]))[position]
            b = values[metric].get(second, [None] * len(results["windows"]))[position]
            row[metric] = {"a": a, "b": b, "difference": None if a is None or b is None else a - b}
        rows.append(row)
    return rows


def _run_links(tournament_id: int, first: str, second: str) -> dict[tuple[int, int], dict]:
    """Per run: its competition's compare page of the two participants (or its dashboard)."""
    links = {}
    for key, run in tournament_selectors.run_participants(tournament_id, [first, second]).items():
        ids = [run["participants"][name] for name in (first, second) if name in run["participants"]]
        url = reverse("competition-compare", args=[run["competition_id"]])
        links[key] = {
            "url": f"{url}?{urlencode([('p', pid) for pid in ids])}" if len(ids) == 2
            else reverse("competition-dashboard", args=[run["competition_id"]]),
            "status": run["status"],
        }  # fmt: skip
    return links


@require_GET
def tournament_compare(request: HttpRequest, tournament_id: int) -> HttpResponse:
    tournament, metric, in_sample = page_choices(request, tournament_id)
    entries = lineup(tournament)
    by_id = {str(entry["pk"]): entry for entry in entries}
    chosen = [request.GET.get(side, "").strip() for side in ("a", "b")]
    if not all(chosen):  # nothing chosen yet: the first two of the lineup
        chosen = [str(entry["pk"]) for entry in entries[:2]]
    if len(chosen) < 2 or any(key not in by_id for key in chosen):
        return HttpResponseBadRequest("a and b must be ids of agents in this tournament's lineup", content_type="text/plain")
    if chosen[0] == chosen[1]:
        return HttpResponseBadRequest("a and b must be two different agents", content_type="text/plain")
    first, second = by_id[chosen[0]]["name"], by_id[chosen[1]]["name"]
    context = {
        "tournament": tournament, "entries": entries, "metric": metric, "metric_label": METRIC_LABELS[metric],
        "metric_choices": list(METRIC_LABELS.items()), "in_sample": in_sample, "in_sample_choices": IN_SAMPLE_CHOICES,
        "a": by_id[chosen[0]], "b": by_id[chosen[1]], "first": first, "second": second, "results": None,
    }  # fmt: skip
    results = tournament_results.tournament_results_get(
        tournament_id=tournament.pk, settings=tournament_results.ResultsSettings(metric=metric, in_sample=in_sample),
        selection=selection(tournament, entries),
    )
    ranked = {row["agent"]: row for row in (results or {}).get("ranking", ())}
    if results is not None and first in ranked and second in ranked:
        pair_metrics = PAIR_METRICS if metric in PAIR_METRICS else (*PAIR_METRICS, metric)
        links = _run_links(tournament.pk, first, second)
        memory = _memory(results, first, second)
        apart = (results["in_sample"] or {}).get("results") or {"pairs": {}}
        windows = results["windows"]
        colors = [figures.color_for(0), figures.color_for(1)]
        context.update({
            "results": results,
            "rows": [ranked[first], ranked[second]],
            "pairs": [pair for name in pair_metrics if (pair := _pair(results, name, first, second))],
            "window_rows": _window_rows(results, first, second, links, memory),
            "memory": memory,
            # mode apart: the pair on the windows in-sample for both, ranked on their own
            "apart_pairs": [pair for name in pair_metrics if (pair := _pair(apart, name, first, second))],
            "p_values": (results["model_confidence_set"] or {}).get("p_values", {}),
            "figures": [
                {"chart_id": f"paired-{name}", "data_id": f"paired-{name}-data", "label": METRIC_LABELS[name],
                 "figure": figures.paired_windows_figure(
                    windows,
                    [figures.WindowSeries(agent, results["window_values"][name][agent], color)
                     for agent, color in zip((first, second), colors, strict=True)],
                    label=METRIC_LABELS[name], unit=tournament_results.UNITS[name],
                    uirevision=f"tournament-compare-{tournament.pk}-{name}",
                )}
                for name in PAIR_METRICS
            ],
        })  # fmt: skip
    elif results is not None:  # an agent with no window counted: every one it played is in-sample for it
        context.update({"memory": _memory(results, first, second),
                        "unranked": [name for name in (first, second) if name not in ranked]})
    return render(request, "web/tournament_compare.html", context)
