"""The compare page of two tournament agents (issue 15): their paired per-window differences on
return and Sharpe, with the paired bootstrap interval, the p-value and the Holm-adjusted
verdict as the tournament's stored results hold them, a chart of both agents window by window,
and links to each run's competition compare page.

An agent is a lineup entry (`?a=<entry id>&b=<entry id>`); in every run it is one participant.
The page reads the tournament, its lineup, the stored results (state and row) and the two
agents' participants: five queries, whatever the number of runs.
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
from web.tournament_views import METRIC_LABELS, lineup, metric_param, tournament_or_404

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


def _window_rows(results: dict, first: str, second: str, links: dict) -> list[dict]:
    values = results["window_values"]
    rows = []
    for position, window in enumerate(results["windows"]):
        row = {"window": window, "runs": sorted(
            (instance, run) for (index, instance), run in links.items() if index == window
        )}  # fmt: skip
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
    tournament = tournament_or_404(tournament_id)
    metric = metric_param(request)
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
        "metric_choices": list(METRIC_LABELS.items()),
        "a": by_id[chosen[0]], "b": by_id[chosen[1]], "first": first, "second": second, "results": None,
    }  # fmt: skip
    results = tournament_results.tournament_results_get(tournament_id=tournament.pk, metric=metric)
    ranked = {row["agent"]: row for row in (results or {}).get("ranking", ())}
    if results is not None and first in ranked and second in ranked:
        pair_metrics = PAIR_METRICS if metric in PAIR_METRICS else (*PAIR_METRICS, metric)
        links = _run_links(tournament.pk, first, second)
        windows = results["windows"]
        colors = [figures.color_for(0), figures.color_for(1)]
        context.update({
            "results": results,
            "rows": [ranked[first], ranked[second]],
            "pairs": [pair for name in pair_metrics if (pair := _pair(results, name, first, second))],
            "window_rows": _window_rows(results, first, second, links),
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
    return render(request, "web/tournament_compare.html", context)
