"""Tournament results from stored per-run results: the statistics stored when a run completes,
the results endpoint (numbers as analytics.tournament gives them on the same inputs), the
per-agent exports, the cache and the backfill."""

import csv
import io
import json
from io import StringIO

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from analytics.tournament import tournament_results
from tournaments import results, runs, services
from tournaments.models import TournamentRun
from tournaments.tests.conftest import START, tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "tournament-results-key"
THREE_WINDOWS = {"start": START.isoformat(), "count": 3, "length_minutes": 180, "step_minutes": 240}


@pytest.fixture
def api(settings):
    settings.API_KEYS = [KEY]
    settings.ROUND_RUNNER = "inprocess"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


def _played(**overrides) -> int:
    tournament = services.tournament_create(**tournament_fields(windows_spec=THREE_WINDOWS, **overrides))
    services.tournament_start(tournament_id=tournament.pk)
    while (run := runs.run_claim(tournament_id=tournament.pk, owner="t")) is not None:
        runs.run_execute(run_id=run.pk, owner="t")
    return tournament.pk


def test_a_completed_run_stores_every_agents_statistics_and_the_buy_and_hold_return(market):
    tid = _played(instances=1)
    run = TournamentRun.objects.filter(tournament_id=tid).order_by("window__index").first()
    assert run.result["statistics_version"] == results.STATISTICS_VERSION
    # both symbols move by a constant step: buy and hold of BTC (+) and ETH (-) over 3 hours
    assert run.result["benchmark_return_pct"] is not None
    by_name = {p["name"]: p for p in run.result["participants"]}
    bull = by_name["Bull"]["statistics"]
    # 3 agent rounds and a final round: 4 equity points after the capital point, 4 returns
    assert len(bull["returns"]) == 4 and bull["invocations"] == 3
    compounded = 1.0
    for value in bull["returns"]:
        compounded *= 1 + value
    assert (compounded - 1) * 100 == pytest.approx(float(by_name["Bull"]["return_pct"]), abs=1e-4)
    assert (
        by_name["Hold"]["statistics"]["is_baseline"] is True and by_name["Bull"]["statistics"]["sharpe"] > 0
    )


def test_the_results_endpoint_gives_analytics_numbers_on_the_stored_runs(api, market):
    tid = _played()
    response = api.get(f"/api/v1/tournaments/{tid}/results?metric=return_pct")
    assert response.status_code == 200, response.json()
    body = response.json()
    stored = results.stored_results(tid)
    assert len(stored.runs) == 3 * 2 * 3 and stored.baselines == ["Hold"]
    expected = tournament_results(
        stored.runs, baselines=["Hold"], reference=stored.reference, metric="return_pct"
    )
    assert body["windows"] == [0, 1, 2] and body["runs_completed"] == 6
    assert [row["agent"] for row in body["ranking"]] == [row.agent for row in expected.agents]
    for row, want in zip(body["ranking"], expected.agents, strict=True):
        summary = want.metrics["return_pct"]
        assert row["metrics"]["return_pct"]["mean"] == pytest.approx(summary.mean)
        assert row["metrics"]["return_pct"]["mean_interval"]["low"] == pytest.approx(
            summary.mean_interval.low
        )
        assert row["sharpe_confidence"]["psr"] == pytest.approx(want.sharpe_confidence.psr)
        assert row["is_baseline"] is (row["agent"] == "Hold")
        assert row["in_confidence_set"] is (row["agent"] in expected.mcs.members)
    pairs = body["pairs"]["return_pct"]
    assert len(pairs) == 3
    assert [(p["first"], p["second"], p["verdict"]) for p in pairs] == [
        (p.first, p.second, p.verdict) for p in expected.pairs["return_pct"]
    ]
    assert body["model_confidence_set"]["members"] == list(expected.mcs.members)
    assert body["power"]["windows"] == 3
    assert body["power_sentence"]["windows"] == 3 and body["power_sentence"]["unit"] == "%"
    sharpe = api.get(f"/api/v1/tournaments/{tid}/results?metric=sharpe").json()
    assert sharpe["metric"] == "sharpe" and sharpe["power_sentence"]["unit"] == ""
    assert api.get(f"/api/v1/tournaments/{tid}/results?metric=luck").status_code == 400
    assert api.get("/api/v1/tournaments/999999/results").status_code == 404


def test_results_are_refused_until_a_run_completes(api, market):
    tournament = services.tournament_create(**tournament_fields())
    response = api.get(f"/api/v1/tournaments/{tournament.pk}/results")
    assert response.status_code == 409 and response.json()["code"] == "no_results"


def test_per_agent_exports_parse_as_csv_and_json(api, market):
    tid = _played(instances=1)
    as_json = api.get(f"/api/v1/tournaments/{tid}/export?what=agent_runs").json()
    assert len(as_json) == 3 * 3 and {row["agent"] for row in as_json} == {"Bull", "Bear", "Hold"}
    assert all(row["rounds"] == 4 and row["benchmark_return_pct"] is not None for row in as_json)
    as_csv = api.get(f"/api/v1/tournaments/{tid}/export?what=agent_runs&format=csv")
    assert as_csv["Content-Type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert list(parsed[0]) == results.AGENT_RESULT_COLUMNS and len(parsed) == 9
    assert [float(row["return_pct"]) for row in parsed] == [row["return_pct"] for row in as_json]
    agents = api.get(f"/api/v1/tournaments/{tid}/export?what=agents&metric=sharpe&format=csv")
    summary = list(csv.DictReader(io.StringIO(agents.content.decode())))
    assert [row["rank"] for row in summary] == ["1", "2", "3"] and {row["metric"] for row in summary} == {
        "sharpe"
    }
    assert (
        json.loads(json.dumps(api.get(f"/api/v1/tournaments/{tid}/export?what=agents").json()))[0]["mean"]
        is not None
    )


def test_results_are_computed_once_per_state(market, monkeypatch):
    tid = _played(instances=1)
    calls = []
    original = results.tournament_results
    monkeypatch.setattr(results, "tournament_results", lambda *a, **k: calls.append(1) or original(*a, **k))
    first = results.tournament_results_get(tournament_id=tid)
    second = results.tournament_results_get(tournament_id=tid)
    assert len(calls) == 1 and first.results.agents == second.results.agents
    results.tournament_results_get(tournament_id=tid, metric="sharpe")
    assert len(calls) == 2


def test_backfill_fills_runs_completed_before_statistics_were_stored(market):
    tid = _played(instances=1)
    run = TournamentRun.objects.filter(tournament_id=tid).first()
    stored = run.result
    old = {
        "participants": [{k: v for k, v in p.items() if k != "statistics"} for p in stored["participants"]]
    }
    TournamentRun.objects.filter(tournament_id=tid).update(result=old)
    before = results.tournament_results_get(tournament_id=tid)
    assert before.results.agents[0].sharpe_confidence.rounds == 0  # no returns stored yet
    out = StringIO()
    call_command("tournament_results_backfill", str(tid), stdout=out)
    assert "3 run(s) filled" in out.getvalue()
    assert TournamentRun.objects.get(pk=run.pk).result == stored
    after = results.tournament_results_get(tournament_id=tid)
    assert after.results.agents[0].sharpe_confidence.rounds == 12
    call_command("tournament_results_backfill", stdout=out)
    assert "0 run(s) filled" in out.getvalue()
