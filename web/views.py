"""HTML pages. Each view renders its whole page, or for an HTMX request only the live partial.

The live partial of a page is rendered once per data version (page_queries
competition_live_get: one query tells whether a round, an answer, a fill or a status moved)
and kept in the cache, so the every-3-seconds polls of many open tabs cost one query each
until something changes.

Views are thin: rows come from competitions.selectors (plus web.page_queries for what only
a page needs), each a fixed number of SQL queries; figures from web.figures. Polling stops
(HTTP 286) once a competition is completed or cancelled, after one last swap that shows the
final state.

The participant page's long logs (closed positions, fills, invocations) show the latest
PAGE_SIZE rows; "load more" asks participant_log for the next page after the last row shown.
"""

import hashlib
import time

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET
from django_htmx.http import HttpResponseStopPolling

import analytics
from agents.selectors import structured_output_mode_get
from competitions import selectors
from competitions.models import Competition, Participant
from web import figures, page_queries

POLL_SECONDS = 3
LIVE_CACHE_SECONDS = 300
# Charts need no more points than a screen has pixels; selectors downsample to about this
# (the dashboard draws ten lines or more, so fewer points each).
CHART_POINTS = 800
DASHBOARD_CHART_POINTS = 400
BENCHMARK_COLOR = "#7F7F7F"

# Leaderboard columns: (metric, heading, short explanation for the header's title).
LEADERBOARD_COLUMNS = [
    ("equity", "Equity", "Account value: cash plus unrealised PnL"),
    ("return_pct", "Return", "Equity / initial capital - 1"),
    ("pnl", "PnL", "Equity - initial capital, after fees and funding"),
    ("sharpe", "Sharpe", "Annualised Sharpe ratio of per-round returns"),
    ("max_drawdown", "Max DD", "Deepest fall from a running peak"),
    ("win_rate", "Win rate", "Share of closed positions with net PnL > 0"),
    ("trades", "Trades", "Closed positions"),
    ("fees_paid", "Fees", "Trading fees paid"),
    ("llm_cost_usd", "LLM cost", "Model API cost in USD"),
    ("invalid_rate", "Invalid", "Share of invocations with an invalid response"),
]

COMPARE_COLUMNS = LEADERBOARD_COLUMNS + [
    ("sortino", "Sortino", "Annualised Sortino ratio"),
    ("calmar", "Calmar", "Annualised return / |max drawdown|"),
    ("profit_factor", "Profit factor", "Sum of wins / |sum of losses|"),
    ("average_leverage", "Avg leverage", "Gross notional / equity, averaged over rounds"),
    ("cost_adjusted_return", "Cost-adj. return", "(PnL - LLM cost) / initial capital"),
    ("error_rate", "Errors", "Share of invocations that errored or timed out"),
]

FEED_SIZE = 12
RECENT_FILLS = 10
# closed positions, fills and invocations per page of the participant page's logs
PAGE_SIZE = 50

SORT_CHOICES = [(metric, metric.replace("_", " ")) for metric in analytics.LEADERBOARD_METRICS]


def _live_response(
    request: HttpRequest,
    template: str,
    competition: Competition,
    key_parts: tuple,
    live_context,
    page_context: dict,
) -> HttpResponse:
    """The page, or for HTMX just its live partial; a finished competition stops the polling.

    live_context() builds the partial's context; it runs only when the cache has no render
    for this page, these parameters and this data version. Live-mode clocks (time left,
    next round in) tick on wall time, so those renders also expire every 10 seconds.
    """
    tick = (
        int(time.time() // 10)
        if competition.mode == Competition.Mode.LIVE and not competition.is_finished
        else 0
    )
    raw_key = "|".join(
        str(part) for part in (template, competition.pk, competition.live_version, tick, *key_parts)
    )
    key = "gauntlet:live:" + hashlib.sha256(raw_key.encode()).hexdigest()
    html = cache.get(key)
    if html is None:
        html = render_to_string(f"{template}#live", live_context(), request=request)
        cache.set(key, html, LIVE_CACHE_SECONDS)
    if request.htmx:
        status = HttpResponseStopPolling.status_code if competition.is_finished else 200
        return HttpResponse(html, status=status)
    return render(
        request, template, {**page_context, "competition": competition, "live_html": mark_safe(html)}
    )


def _competition_or_404(competition_id: int) -> Competition:
    try:
        return page_queries.competition_live_get(competition_id)
    except Competition.DoesNotExist as exc:
        raise Http404("no such competition") from exc


@require_GET
def competition_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status not in Competition.Status.values:
        status = None
    competitions = selectors.competition_list(status=status)
    context = {
        "rows": [(c, page_queries.competition_time_left(c)) for c in competitions],
        "status": status,
        "statuses": Competition.Status.values,
        "poll_seconds": POLL_SECONDS * 2,
    }
    if request.htmx:
        return render(request, "web/list.html#competition-table", context)
    return render(request, "web/list.html", context)


def _sort_param(request: HttpRequest) -> str:
    sort = request.GET.get("sort", analytics.DEFAULT_LEADERBOARD_METRIC)
    return sort if sort in analytics.LEADERBOARD_METRICS else analytics.DEFAULT_LEADERBOARD_METRIC


def _colors(participant_ids) -> dict[int, str]:
    """The same colour for a participant in every chart and its leaderboard swatch (by id order)."""
    return {pk: figures.color_for(index) for index, pk in enumerate(sorted(participant_ids))}


@require_GET
def competition_dashboard(request: HttpRequest, competition_id: int) -> HttpResponse:
    competition = _competition_or_404(competition_id)
    sort = _sort_param(request)
    return _live_response(
        request, "web/dashboard.html", competition, (sort,),
        lambda: _dashboard_context(competition, sort), {"sort": sort},
    )  # fmt: skip


def _dashboard_context(competition: Competition, sort: str) -> dict:
    # one load for the table and the chart: the benchmark row and line share one computation
    board = selectors.leaderboard_get(competition_id=competition.pk, metric=sort, include_benchmark=True)
    rows = board.rows
    participants = [row for row in rows if not row.is_benchmark]
    colors = _colors(row.participant_id for row in participants)
    lines = [
        figures.Line(
            name=row.name,
            points=analytics.downsample(board.equity.get(row.participant_id, []), DASHBOARD_CHART_POINTS),
            color=colors[row.participant_id],
            kind="baseline" if row.is_baseline else "model",
        )
        for row in sorted(participants, key=lambda row: row.participant_id)
    ]
    benchmark = next((row for row in rows if row.is_benchmark), None)
    if benchmark is not None:
        lines.append(
            figures.Line(
                name=benchmark.name,
                points=analytics.downsample(board.benchmark, DASHBOARD_CHART_POINTS),
                color=BENCHMARK_COLOR,
                kind="benchmark",
            )
        )
    rounds = page_queries.round_summary(competition)
    market_at, quotes = selectors.market_quotes(competition)
    in_sample = selectors.in_sample_map(competition)  # results a model may answer from memory
    return {
        "in_sample": in_sample,
        "in_sample_any": any(in_sample.values()),
        "competition": competition,
        "sort": sort,
        "rows": rows,
        "colors": colors,
        "columns": LEADERBOARD_COLUMNS,
        "sort_choices": SORT_CHOICES,
        "rounds": rounds,
        "clock": page_queries.competition_clock(competition),
        "time_left": page_queries.competition_time_left(competition),
        "next_round_in": page_queries.next_round_in(competition, rounds),
        "llm_cost_usd": sum((row.metrics.llm.cost_usd for row in participants), 0.0),
        "invocation_count": sum(row.metrics.llm.invocations for row in participants),
        "feed": selectors.recent_decisions(competition_id=competition.pk, limit=FEED_SIZE),
        "fills": selectors.recent_fills(competition_id=competition.pk, limit=RECENT_FILLS),
        "market_at": market_at,
        "quotes": quotes,
        "equity_figure": figures.equity_figure(
            lines, initial_capital=competition.initial_capital, uirevision=f"equity-{competition.pk}"
        ),
        "live": not competition.is_finished,
        "poll_seconds": POLL_SECONDS,
    }


@require_GET
def participant_detail(request: HttpRequest, competition_id: int, participant_id: int) -> HttpResponse:
    competition = _competition_or_404(competition_id)
    participant = get_object_or_404(Participant, pk=participant_id, competition=competition)
    participant.competition = competition
    return _live_response(
        request, "web/participant.html", competition, (participant.pk,),
        lambda: _participant_context(competition, participant), {"participant": participant},
    )  # fmt: skip


def _participant_context(competition: Competition, participant: Participant) -> dict:
    # the metrics and both charts from one load of the participant's history
    performance = selectors.participant_performance_get(participant_id=participant.pk)
    metrics = performance.row.metrics
    market_at, quotes = selectors.market_quotes(competition)
    account, open_positions = page_queries.open_book(participant, {q.symbol: q.price for q in quotes})
    equity_points = analytics.downsample(performance.equity, CHART_POINTS)
    drawdown_points = selectors.drawdown_history(performance.equity, CHART_POINTS)
    return {
        "competition": competition,
        "participant": participant,
        "metrics": metrics,
        "account": account,
        "open_positions": open_positions,
        "marked_at": market_at,
        "closed_count": metrics.trades,  # every closed position is one trade
        **_log_pages(competition.pk, participant.pk),
        "orders": page_queries.order_counts(participant),
        "structured_output": structured_output_mode_get(participant=participant),
        "equity_figure": figures.equity_figure(
            [
                figures.Line(
                    participant.name,
                    equity_points,
                    figures.color_for(0),
                    "baseline" if participant.is_baseline else "model",
                )
            ],
            initial_capital=competition.initial_capital,
            uirevision=f"participant-{participant.pk}",
        ),
        "drawdown_figure": figures.drawdown_figure(drawdown_points, uirevision=f"drawdown-{participant.pk}"),
        "live": not competition.is_finished,
        "poll_seconds": POLL_SECONDS,
    }


@require_GET
def competition_compare(request: HttpRequest, competition_id: int) -> HttpResponse:
    competition = _competition_or_404(competition_id)
    participants = list(competition.participants.order_by("id"))
    known = {p.pk for p in participants}
    chosen_ids: list[int] = []
    for raw in request.GET.getlist("p"):
        if raw.isdigit() and int(raw) in known and int(raw) not in chosen_ids:
            chosen_ids.append(int(raw))
    if len(chosen_ids) < 2:
        chosen_ids = [p.pk for p in participants[:2]] if not chosen_ids else chosen_ids
    statistic = request.GET.get("statistic", "sharpe")
    if statistic not in ("sharpe", "total_return"):
        statistic = "sharpe"
    page_context = {"participants": participants, "chosen_ids": chosen_ids, "statistic": statistic}
    return _live_response(
        request, "web/compare.html", competition, (tuple(chosen_ids), statistic),
        lambda: _compare_context(competition, known, chosen_ids, statistic) | page_context, page_context,
    )  # fmt: skip


def _compare_context(
    competition: Competition, known: set[int], chosen_ids: list[int], statistic: str
) -> dict:
    comparison = page_queries.compare_get(competition, participant_ids=chosen_ids, statistic=statistic)
    colors = _colors(known)
    in_sample = selectors.in_sample_map(competition)  # results a model may answer from memory
    return {
        "in_sample": in_sample,
        "in_sample_any": any(in_sample.get(row.participant_id) for row in comparison.rows),
        "competition": competition,
        "comparison": comparison,
        "columns": COMPARE_COLUMNS,
        "equity_figure": figures.equity_figure(
            [
                figures.Line(
                    row.name,
                    analytics.downsample(comparison.histories[row.participant_id], CHART_POINTS),
                    colors[row.participant_id],
                    "baseline" if row.is_baseline else "model",
                )
                for row in comparison.rows
            ],
            initial_capital=competition.initial_capital,
            uirevision=f"compare-{competition.pk}",
        ),
        "live": not competition.is_finished,
        "poll_seconds": POLL_SECONDS * 5,
    }


@require_GET
def invocation_detail(request: HttpRequest, invocation_id: int) -> HttpResponse:
    try:
        invocation = page_queries.invocation_get(invocation_id=invocation_id)
    except page_queries.Invocation.DoesNotExist as exc:
        raise Http404("no such invocation") from exc
    context = {
        "invocation": invocation,
        "participant": invocation.participant,
        "competition": invocation.participant.competition,
        "orders": page_queries.invocation_orders(invocation),
    }
    if request.htmx:
        return render(request, "web/invocation.html#invocation-body", context)
    return render(request, "web/invocation.html", context)


# --- the participant page's logs, a page at a time ---------------------------------------------

# log -> (context name of its rows, partial that renders a page of them, the selector)
LOGS = {
    "closed": (
        "closed_positions",
        "web/participant.html#closed-rows",
        lambda participant_id, before: selectors.participant_positions(
            participant_id=participant_id, status="closed", limit=PAGE_SIZE + 1, before=before
        ),
    ),
    "fills": (
        "fills",
        "web/_fills.html#fill-rows",
        lambda participant_id, before: selectors.participant_fills(
            participant_id=participant_id, limit=PAGE_SIZE + 1, before=before
        ),
    ),
    "invocations": (
        "invocations",
        "web/participant.html#invocation-items",
        lambda participant_id, before: selectors.participant_invocations(
            participant_id=participant_id, limit=PAGE_SIZE + 1, before=before
        ),
    ),
}
LOG_URL_NAMES = {
    "closed": "participant-closed",
    "fills": "participant-fills",
    "invocations": "participant-invocations",
}


def _log_page(log: str, competition_id: int, participant_id: int, before: int | None = None) -> dict:
    """One page of a log: its rows (PAGE_SIZE at most) and `<rows>_more_url`, the URL of the
    next page ("" on the last). The selector is asked for one row more than a page to know."""
    name, _, load = LOGS[log]
    rows = load(participant_id, before)
    more_url = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        url = reverse(LOG_URL_NAMES[log], args=[competition_id, participant_id])
        more_url = f"{url}?before={rows[-1].id}"
    return {name: rows, f"{name}_more_url": more_url}


def _log_pages(competition_id: int, participant_id: int) -> dict:
    pages: dict = {}
    for log in LOGS:
        pages.update(_log_page(log, competition_id, participant_id))
    return pages


@require_GET
def participant_log(request: HttpRequest, competition_id: int, participant_id: int, log: str) -> HttpResponse:
    """The next page of a participant's closed positions, fills or invocations, after the row
    whose id is `before`, as the rows to append (with the next "load more", if any)."""
    participant = get_object_or_404(
        Participant.objects.select_related("competition"), pk=participant_id, competition_id=competition_id
    )
    raw = request.GET.get("before", "")
    before = int(raw) if raw.isdigit() else None
    name, partial, _ = LOGS[log]
    page = _log_page(log, competition_id, participant.pk, before)
    context = {
        "competition": participant.competition,
        "participant": participant,
        # the fills partial reads its rows as `fills` and its next page as `more_url`
        "more_url": page[f"{name}_more_url"],
        "detailed": True,
        # loaded rows pause the page's refresh, which would replace them with the first page
        "more_loaded": True,
        **page,
    }
    return render(request, partial, context)
