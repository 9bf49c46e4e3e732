"""The figures the pages hand to plotly.js: valid Plotly, right numbers, small enough."""

import json
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go

from web import figures

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def page_json(figure: dict) -> dict:
    """The figure as the page's json_script hands it to plotly.js: strict JSON (no NaN)."""
    return json.loads(json.dumps(figure, allow_nan=False))


def points(values):
    return [(T0 + timedelta(hours=i), value) for i, value in enumerate(values)]


def test_equity_figure_is_valid_plotly_with_one_line_each_plus_capital():
    lines = [
        figures.Line("Model", points([10000, 10500, 9900]), figures.color_for(0), "model"),
        figures.Line("Flat", points([10000, 10000, 10000]), figures.color_for(1), "baseline"),
        figures.Line("Buy and hold", points([10000, 10200, 10100]), "#7F7F7F", "benchmark"),
    ]
    data = page_json(figures.equity_figure(lines, initial_capital=10000))
    go.Figure(data)  # validates every property; raises ValueError on a wrong one
    names = [trace["name"] for trace in data["data"]]
    assert names == ["Model", "Flat", "Buy and hold", "Initial capital"]
    model = data["data"][0]
    assert model["y"] == [10000, 10500, 9900]
    # hover return: 10500 / 10000 - 1 = +5 %, 9900 / 10000 - 1 = -1 %
    assert model["customdata"] == [0.0, 5.0, -1.0]
    assert model["x"][1] - model["x"][0] == 3_600_000  # epoch ms, one hour apart
    assert data["data"][1]["line"]["dash"] == "dot"  # a baseline next to a model
    assert data["data"][2]["line"]["dash"] == "dashdot"
    assert data["data"][3]["y"] == [10000.0, 10000.0]
    assert [b["label"] for b in data["layout"]["xaxis"]["rangeselector"]["buttons"]] == [
        "1d",
        "1w",
        "1m",
        "All",
    ]
    assert data["layout"]["uirevision"] == "equity"


def test_baselines_are_solid_when_no_model_competes():
    lines = [figures.Line("Flat", points([10000, 10000]), figures.color_for(0), "baseline")]
    data = page_json(figures.equity_figure(lines, initial_capital=10000))
    assert data["data"][0]["line"]["dash"] == "solid"
    assert data["layout"]["showlegend"] is False  # one line: its name is the page title


def test_long_series_are_thinned_keeping_first_and_last_point():
    long = points([10000 + i for i in range(5000)])
    data = page_json(figures.equity_figure([figures.Line("Long", long, "#000000")], initial_capital=10000))
    y = data["data"][0]["y"]
    assert len(y) <= figures.MAX_POINTS
    assert y[0] == 10000 and y[-1] == 14999


def test_drawdown_figure_is_valid_and_keeps_values():
    data = page_json(figures.drawdown_figure(points([0.0, -2.5, -1.0])))
    go.Figure(data)
    assert data["data"][0]["y"] == [0.0, -2.5, -1.0]
    assert data["data"][0]["fill"] == "tozeroy"


def test_empty_history_gives_an_empty_but_valid_figure():
    data = page_json(figures.equity_figure([figures.Line("New", [], "#000000")], initial_capital=10000))
    go.Figure(data)
    assert data["data"] == []
