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
