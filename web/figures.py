"""Plotly figures for the pages, built in Python and handed to plotly.js as JSON.

Colours of text and grid are left to the page (static/js/gauntlet.js applies the light or
dark theme); the figures carry data, hover text and behaviour. layout.uirevision keeps the
user's zoom and range-button choice when a live region brings a fresh figure.

A figure is a plain {"data": [...], "layout": {...}} dict; templates write it into the page
with Django's json_script filter, which gauntlet.js reads back.

Speed: plotly's validators walk every point of every trace (hundreds of ms for ten
1000-point lines, on every poll). The layout goes through go.Layout (validated); traces are
written as plain Plotly trace dicts. The tests load each figure back into go.Figure with
validation on, so a wrong property still fails loudly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import plotly.graph_objects as go

# One line per participant can reach 10,000+ rounds; a chart needs no more points than pixels.
MAX_POINTS = 1000

# Okabe-Ito-like palette: distinguishable for the common colour-vision deficiencies.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
    "#D55E00", "#F0E442", "#7F7F7F", "#8C564B", "#17BECF",
)  # fmt: skip

RANGE_BUTTONS = [
    {"count": 1, "label": "1d", "step": "day", "stepmode": "backward"},
    {"count": 7, "label": "1w", "step": "day", "stepmode": "backward"},
    {"count": 1, "label": "1m", "step": "month", "stepmode": "backward"},
    {"step": "all", "label": "All"},
]


def thin(times: Sequence[datetime], values: Sequence[float], limit: int = MAX_POINTS) -> tuple[list, list]:
    """At most `limit` evenly spaced points, always keeping the first and the last."""
    count = len(values)
    if count <= limit:
        return list(times), list(values)
    step = (count - 1) / (limit - 1)
    indices = sorted({round(i * step) for i in range(limit)} | {count - 1})
    return [times[i] for i in indices], [values[i] for i in indices]


def _iso(times: Sequence[datetime]) -> list[int]:
    # Epoch milliseconds: a date axis reads them as UTC instants, and they cost a tenth of strftime.
    return [int(moment.timestamp() * 1000) for moment in times]


def _base_layout(**extra) -> dict:
    layout = {
        "margin": {"l": 56, "r": 16, "t": 8, "b": 40},
        "hovermode": "closest",
        # below the two-line date labels, measured from the bottom of the whole figure
        "legend": {"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0, "x": 0},
        "xaxis": {"type": "date", "showgrid": True, "hoverformat": "%Y-%m-%d %H:%M UTC"},
        "yaxis": {"showgrid": True, "tickformat": ",.0f"},
        "template": "none",
    }
    layout.update(extra)
    return layout


def color_for(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


@dataclass(frozen=True)
class Line:
    """One equity line: a participant (kind "model" or "baseline") or the benchmark."""

    name: str
    points: Sequence[tuple[datetime, float]]
    color: str
    kind: str = "model"


def equity_figure(lines: Sequence[Line], *, initial_capital: float, uirevision: str = "equity") -> dict:
    """One line per participant, the buy-and-hold benchmark, and the initial capital line.

    Hover shows equity and return since the start. Baselines are dotted and the benchmark
    dash-dotted when models are in the race, so they read as references.
    """
    capital = float(initial_capital)
    mark_baselines = any(line.kind == "model" for line in lines)
    traces: list[dict] = []
    start = end = None
    for line in lines:
        if not line.points:
            continue
        times, equity = thin([p[0] for p in line.points], [float(p[1]) for p in line.points])
        start = times[0] if start is None else min(start, times[0])
        end = times[-1] if end is None else max(end, times[-1])
        returns = [round((value / capital - 1.0) * 100.0, 4) for value in equity] if capital else None
        dash = {"baseline": "dot" if mark_baselines else "solid", "benchmark": "dashdot"}.get(
            line.kind, "solid"
        )
        traces.append(
            {
                "type": "scatter",
                "x": _iso(times),
                "y": [round(value, 2) for value in equity],
                "customdata": returns,
                "name": line.name,
                "mode": "lines",
                "line": {"color": line.color, "width": 1.5 if line.kind == "benchmark" else 2, "dash": dash},
                "hovertemplate": (
                    "<b>%{fullData.name}</b><br>%{x}<br>Equity %{y:,.2f}<br>Return %{customdata:+.2f} %<extra></extra>"
                ),
            }
        )
    if start is not None:
        traces.append(
            {
                "type": "scatter",
                "x": _iso([start, end]),
                "y": [capital, capital],
                "name": "Initial capital",
                "mode": "lines",
                "line": {"color": "#888888", "width": 1, "dash": "dash"},
                "hovertemplate": "Initial capital %{y:,.2f}<extra></extra>",
            }
        )
    many = len(lines) > 1
    layout = _base_layout(
        uirevision=uirevision,
        showlegend=many,
        margin={"l": 56, "r": 16, "t": 8, "b": 80 if many else 40},
        xaxis={
            "type": "date",
            "showgrid": True,
            "hoverformat": "%Y-%m-%d %H:%M UTC",
            "rangeselector": {"buttons": RANGE_BUTTONS, "x": 0, "y": 1.02},
        },
    )
    return figure(traces, layout)


def drawdown_figure(points: Sequence[tuple[datetime, float]], *, uirevision: str = "drawdown") -> dict:
    """Drawdown from the running peak in percent (<= 0, from the selectors), as a filled area."""
    times, drawdowns = thin([p[0] for p in points], [round(float(p[1]), 4) for p in points])
    trace = {
        "type": "scatter",
        "x": _iso(times),
        "y": drawdowns,
        "name": "Drawdown",
        "mode": "lines",
        "fill": "tozeroy",
        "line": {"color": "#D55E00", "width": 1.5},
        "hovertemplate": "%{x}<br>Drawdown %{y:.2f} %<extra></extra>",
    }
    layout = _base_layout(
        uirevision=uirevision, showlegend=False, yaxis={"showgrid": True, "ticksuffix": " %"}
    )
    return figure([trace], layout)


def figure(traces: list[dict], layout: dict) -> dict:
    """{"data": traces, "layout": layout}; the layout is checked by go.Layout."""
    return {"data": traces, "layout": go.Layout(layout).to_plotly_json()}


# --- tournament pages (issue 15) ----------------------------------------------------------------

# losses orange-red, gains blue (colour-vision safe), zero a neutral grey
WINDOW_COLORSCALE = [[0.0, "#D55E00"], [0.5, "#F2F2F2"], [1.0, "#0072B2"]]
VERDICT_COLORS = {"better": "#009E73", "worse": "#D55E00", "not distinguishable": "#BBBBBB"}


@dataclass(frozen=True)
class ForestRow:
    """One agent's mean with its interval; open markers for agents outside the confidence set."""

    agent: str
    mean: float | None
    low: float | None
    high: float | None
    is_baseline: bool
    in_confidence_set: bool


def forest_figure(rows: Sequence[ForestRow], *, label: str, unit: str, uirevision: str = "forest") -> dict:
    """Each agent's mean (dot) and 95 % interval (whiskers), best at the top, a line at zero."""
    shown = [row for row in rows if row.mean is not None][::-1]
    suffix = f" {unit}" if unit else ""
    traces = []
    for in_set in (True, False):
        group = [row for row in shown if row.in_confidence_set is in_set]
        if not group:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "in the confidence set" if in_set else "outside the set",
                "y": [row.agent for row in group],
                "x": [round(row.mean, 6) for row in group],
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        round((row.high if row.high is not None else row.mean) - row.mean, 6) for row in group
                    ],
                    "arrayminus": [
                        round(row.mean - (row.low if row.low is not None else row.mean), 6) for row in group
                    ],
                    "thickness": 2,
                    "width": 6,
                },
                "customdata": [
                    [row.low, row.high, "baseline" if row.is_baseline else "agent"] for row in group
                ],
                "marker": {
                    "size": 11,
                    "symbol": "circle" if in_set else "circle-open",
                    "color": ["#7F7F7F" if row.is_baseline else PALETTE[0] for row in group],
                    "line": {
                        "width": 2,
                        "color": ["#7F7F7F" if row.is_baseline else PALETTE[0] for row in group],
                    },
                },
                "hovertemplate": (
                    f"<b>%{{y}}</b> (%{{customdata[2]}})<br>{label}: mean %{{x:.3f}}{suffix}<br>"
                    f"95 % interval %{{customdata[0]:.3f}} .. %{{customdata[1]:.3f}}{suffix}<extra></extra>"
                ),
            }
        )
    layout = _base_layout(
        uirevision=uirevision,
        showlegend=True,
        height=max(220, 48 + 36 * len(shown)),
        margin={"l": 140, "r": 16, "t": 8, "b": 72},
        xaxis={"showgrid": True, "zeroline": True, "zerolinewidth": 2, "ticksuffix": suffix, "title": {"text": label}},
        # best at the top whatever trace an agent is drawn in
        yaxis={"showgrid": False, "type": "category", "automargin": True, "categoryorder": "array",
               "categoryarray": [row.agent for row in shown]},
        shapes=[{"type": "line", "xref": "x", "yref": "paper", "x0": 0, "x1": 0, "y0": 0, "y1": 1,
                 "line": {"color": "#888888", "width": 1, "dash": "dash"}}],
    )  # fmt: skip
    return figure(traces, layout)


@dataclass(frozen=True)
class PairCell:
    """Row agent versus column agent on one metric, after Holm."""

    verdict: str  # better / worse / not distinguishable, for the row agent
    difference: float | None
    low: float | None
    high: float | None
    p_adjusted: float | None


def pairwise_figure(
    agents: Sequence[str],
    cells: dict[tuple[str, str], PairCell],
    *,
    unit: str,
    uirevision: str = "pairs",
    links: dict[tuple[str, str], str | None] | None = None,
) -> dict:
    """Matrix of verdicts (row agent against column agent); the difference and p on hover; a
    cell's customdata is the link to the pair's compare page (the page opens it on click)."""
    codes = {"worse": -1, "not distinguishable": 0, "better": 1}
    suffix = f" {unit}" if unit else ""
    links = links or {}
    z, text, urls = [], [], []
    for row in agents:
        z_row, text_row = [], []
        urls.append([links.get((row, column)) or "" for column in agents])
        for column in agents:
            cell = cells.get((row, column))
            if cell is None:
                z_row.append(None)
                text_row.append("")
                continue
            z_row.append(codes[cell.verdict])
            difference = "n/a" if cell.difference is None else f"{cell.difference:+.3f}{suffix}"
            interval = "" if cell.low is None else f" [{cell.low:+.3f}, {cell.high:+.3f}]"
            p_value = "n/a" if cell.p_adjusted is None else f"{cell.p_adjusted:.3g}"
            text_row.append(
                f"{row} vs {column}: {cell.verdict}<br>difference {difference}{interval}<br>Holm p {p_value}"
                + ("<br>click: compare" if links.get((row, column)) else "")
            )
        z.append(z_row)
        text.append(text_row)
    trace = {
        "type": "heatmap", "x": list(agents), "y": list(agents), "z": z, "text": text, "customdata": urls,
        "zmin": -1, "zmax": 1,
        "colorscale": [[0, VERDICT_COLORS["worse"]], [0.5, VERDICT_COLORS["not distinguishable"]],
                       [1, VERDICT_COLORS["better"]]],
        "showscale": False, "xgap": 2, "ygap": 2, "hovertemplate": "%{text}<extra></extra>",
    }  # fmt: skip
    layout = _base_layout(
        uirevision=uirevision, showlegend=False, height=max(260, 80 + 34 * len(agents)),
        margin={"l": 140, "r": 16, "t": 8, "b": 110},
        xaxis={"type": "category", "showgrid": False, "tickangle": -30, "title": {"text": "column agent"}},
        yaxis={"type": "category", "showgrid": False, "autorange": "reversed", "automargin": True},
    )  # fmt: skip
    return figure([trace], layout)


def window_heatmap_figure(
    agents: Sequence[str],
    windows: Sequence[int],
    values: dict[str, dict[int, float]],
    *,
    label: str,
    unit: str,
    uirevision: str = "windows",
) -> dict:
    """Metric per agent (rows) per window (columns), diverging around zero; a click opens the window."""
    suffix = f" {unit}" if unit else ""
    z = [
        [None if values[agent].get(w) is None else round(values[agent][w], 4) for w in windows]
        for agent in agents
    ]
    limit = max((abs(v) for row in z for v in row if v is not None), default=1.0) or 1.0
    trace = {
        "type": "heatmap", "x": [f"w{w}" for w in windows], "y": list(agents), "z": z, "customdata": [list(windows)] * len(agents),
        "zmid": 0, "zmin": -limit, "zmax": limit, "colorscale": WINDOW_COLORSCALE, "xgap": 1, "ygap": 1,
        "colorbar": {"ticksuffix": suffix, "thickness": 12},
        "hovertemplate": f"<b>%{{y}}</b><br>window %{{customdata}}<br>{label} %{{z:+.3f}}{suffix}<br>click: equity curves<extra></extra>",
    }  # fmt: skip
    layout = _base_layout(
        uirevision=uirevision, showlegend=False, height=max(220, 80 + 30 * len(agents)),
        margin={"l": 140, "r": 16, "t": 8, "b": 48},
        xaxis={"type": "category", "showgrid": False, "title": {"text": "window"}},
        yaxis={"type": "category", "showgrid": False, "autorange": "reversed", "automargin": True},
    )  # fmt: skip
    return figure([trace], layout)


@dataclass(frozen=True)
class RoundLine:
    """One agent on one instance of a window: its stored per-round returns."""

    name: str
    returns: Sequence[float]
    color: str
    dash: str = "solid"


def window_equity_figure(lines: Sequence[RoundLine], *, uirevision: str = "window-equity") -> dict:
    """Cumulative return % round by round, one line per agent and instance (instances dashed apart)."""
    traces = []
    for line in lines:
        growth, points = 1.0, [0.0]
        for value in line.returns:
            growth *= 1.0 + float(value)
            points.append(round((growth - 1.0) * 100.0, 4))
        traces.append({
            "type": "scatter", "mode": "lines", "name": line.name, "x": list(range(len(points))), "y": points,
            "line": {"color": line.color, "width": 2, "dash": line.dash},
            "hovertemplate": "<b>%{fullData.name}</b><br>round %{x}<br>return %{y:+.3f} %<extra></extra>",
        })  # fmt: skip
    layout = _base_layout(
        uirevision=uirevision, showlegend=True, margin={"l": 56, "r": 16, "t": 8, "b": 90},
        xaxis={"showgrid": True, "title": {"text": "round"}}, yaxis={"showgrid": True, "ticksuffix": " %"},
    )  # fmt: skip
    return figure(traces, layout)


@dataclass(frozen=True)
class WindowSeries:
    """One agent's value per window (instances averaged), None where it has none."""

    name: str
    values: Sequence[float | None]
    color: str


def paired_windows_figure(
    windows: Sequence[int], series: Sequence[WindowSeries], *, label: str, unit: str, uirevision: str = "paired"
) -> dict:
    """Two agents side by side in every window (bars), and first minus second (diamonds): the
    paired differences a tournament comparison tests."""
    suffix = f" {unit}" if unit else ""
    x = [f"w{window}" for window in windows]
    traces = [
        {
            "type": "bar", "name": one.name, "x": x, "y": [None if v is None else round(v, 6) for v in one.values],
            "marker": {"color": one.color}, "customdata": list(windows),
            "hovertemplate": f"<b>{one.name}</b><br>window %{{customdata}}<br>{label} %{{y:+.3f}}{suffix}<extra></extra>",
        }
        for one in series
    ]  # fmt: skip
    if len(series) == 2:
        first, second = series
        differences = [
            None if a is None or b is None else round(a - b, 6)
            for a, b in zip(first.values, second.values, strict=True)
        ]
        traces.append({
            "type": "scatter", "mode": "markers", "name": f"{first.name} − {second.name}", "x": x, "y": differences,
            "marker": {"symbol": "diamond", "size": 10, "color": "#333333", "line": {"width": 1, "color": "#FFFFFF"}},
            "customdata": list(windows),
            "hovertemplate": f"window %{{customdata}}<br>difference %{{y:+.3f}}{suffix}<extra></extra>",
        })  # fmt: skip
    layout = _base_layout(
        uirevision=uirevision, showlegend=True, barmode="group", height=320,
        margin={"l": 56, "r": 16, "t": 8, "b": 84},
        xaxis={"type": "category", "showgrid": False, "title": {"text": "window"}},
        yaxis={"showgrid": True, "zeroline": True, "ticksuffix": suffix, "title": {"text": label}},
    )  # fmt: skip
    return figure(traces, layout)
