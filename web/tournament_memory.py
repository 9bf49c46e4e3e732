"""What a model may remember, on the tournament pages (issue 16, docs/memory.md).

- The in-sample part of the tournament page: which windows start before each agent's
  training-data cutoff, what the ranking did with them (left out by default, ranked apart, or
  included), and why (the cutoff and its source). tournament_views passes the page's choice.
- The memory-gap page: per agent, return % unmasked minus masked (the same lineup on the same
  windows) and before minus after its cutoff, with 95 % intervals, a sentence each, and what
  the gaps cannot mean. It reads tournaments.memory.memory_gap_report, as the API does.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from gauntlet.errors import DomainError
from tournaments import in_sample as tournament_in_sample
from tournaments.memory import memory_gap_report
from tournaments.models import RunStatus, Tournament
from web import figures

IN_SAMPLE_MODES = tournament_in_sample.MODES
IN_SAMPLE_CHOICES = [
    ("exclude", "Leave them out"),
    ("apart", "Rank them apart"),
    ("include", "Include them"),
]
GAP_COLORS = {"masked": figures.color_for(0), "cutoff": figures.color_for(1)}


def in_sample_context(results: dict) -> dict:
    """The tournament page's in-sample note, per-agent reasons and (mode apart) the in-sample ranking,
    from the stored results (tournaments.results: their `in_sample` part)."""
    report = results.get("in_sample") or {}
    apart = (report.get("results") or {}).get("ranking", [])
    return {
        "in_sample_report": report,
        "in_sample_agents": [item for item in report.get("agents", []) if item["status"] != "code"],
        "in_sample_apart": [{"row": row, "summary": row["metrics"][results["metric"]]} for row in apart],
    }


def _gap_figure(agents: list[dict]) -> dict | None:
    """Each agent's masked gap and cutoff gap (dot) with its 95 % interval (whiskers), a line at zero."""
    traces = []
    for kind, label in (("masked", "unmasked − masked"), ("cutoff", "before − after cutoff")):
        shown = [a for a in agents if a[f"{kind}_gap"] and a[f"{kind}_gap"]["value"] is not None][::-1]
        if not shown:
            continue
        gaps = [a[f"{kind}_gap"] for a in shown]
        traces.append({
            "type": "scatter", "mode": "markers", "name": label, "y": [a["agent"] for a in shown],
            "x": [round(g["value"], 6) for g in gaps],
            "error_x": {
                "type": "data", "symmetric": False, "thickness": 2, "width": 6,
                "array": [round((g["interval"]["high"] if g["interval"] else g["value"]) - g["value"], 6) for g in gaps],
                "arrayminus": [round(g["value"] - (g["interval"]["low"] if g["interval"] else g["value"]), 6)
                               for g in gaps],
            },
            "marker": {"size": 11, "color": GAP_COLORS[kind], "symbol": "circle" if kind == "masked" else "diamond"},
            "hovertemplate": f"%{{y}}: %{{x:+.2f}} % a window ({label})<extra></extra>",
        })  # fmt: skip
    if not traces:
        return None
    return {
        "data": traces,
        "layout": {
            "height": max(240, 100 + 48 * len(agents)), "margin": {"l": 140, "r": 20, "t": 40, "b": 50},
            "xaxis": {"title": {"text": "gap in return % a window (95 % interval)"}, "zeroline": True,
                      "zerolinewidth": 2, "ticksuffix": " %"},
            "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, "uirevision": "memory-gap",
        },
    }  # fmt: skip


@require_GET
def tournament_memory_gap(request: HttpRequest, tournament_id: int) -> HttpResponse:
    try:
        tournament = Tournament.objects.get(pk=tournament_id)
    except Tournament.DoesNotExist as exc:
        raise Http404("no such tournament") from exc
    masked_param = request.GET.get("masked", "").strip()
    context = {"tournament": tournament, "report": None, "error": None, "masked_param": masked_param}
    status = 200
    try:
        if masked_param and not masked_param.isdigit():
            raise DomainError(f"masked must be a tournament id, got {masked_param!r}", field="masked")
        report = memory_gap_report(tournament_id=tournament.pk,
                                   masked_tournament_id=int(masked_param) if masked_param else None)
    except DomainError as exc:
        context["error"] = exc.message
        status = 400
    else:
        plain_has_results = Tournament.objects.filter(
            pk=report["tournament_id"], runs__status=RunStatus.COMPLETED
        ).exists()
        context.update({
            "report": report, "has_results": plain_has_results,
            "gap_figure": _gap_figure(report["agents"]) if plain_has_results else None,
            "is_masked_side": report["tournament_id"] != tournament.pk,
        })  # fmt: skip
    return render(request, "web/tournament_memory_gap.html", context, status=status)
