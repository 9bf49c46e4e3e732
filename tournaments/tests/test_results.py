"""Tournament results from stored per-run results: the statistics stored when a run completes,
the results endpoint (numbers as analytics.tournament gives them on the same inputs), the
per-agent exports, the cache and the backfill."""

import csv
import io
import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from analytics.tournament import METRICS, tournament_results
from tournaments import bundle, in_sample, results, runs, services
from tournaments.models import TournamentResults, TournamentRun
from tournaments.tests.conftest import START, played_tournament, tournament_fields

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


def _played_partly(**overrides) -> int:
    tournament = services.tournament_create(**tournament_fields(windows_spec=THREE_WINDOWS, **overrides))
    services.tournament_start(tournament_id=tournament.pk)
    return tournament.pk


def _played(**overrides) -> int:
    return played_tournament(windows_spec=THREE_WINDOWS, **overrides).pk


def _report(tid: int):
    return in_sample.in_sample_report(tournament_id=tid)


def _key(tid: int, settings) -> str:
    """The stored row's key: the settings with the lineup's in-sample selection."""
    return settings.key(_report(tid).digest)


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
    stored = results.ranking_input(results.completed_runs(tid), results.ResultsSettings(), _report(tid))
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
    # every statistic of the issue, per agent: win rates against the baseline and buy and hold,
    # Lo's SE with PSR and DSR, the pooled usage, and the value per window the intervals start from
    bull = next(row for row in body["ranking"] if row["agent"] == "Bull")
    assert [rate["opponent"] for rate in bull["win_rates"]] == ["Hold", "buy and hold"]
    assert set(bull["sharpe_confidence"]) == {"rounds", "sharpe_per_round", "lo_standard_error", "psr", "dsr"}
    assert {"invalid_response_rate_pct", "rejected_action_rate_pct", "cost_usd", "input_tokens", "output_tokens",
            "tokens_per_run", "mean_latency_seconds"} <= set(bull["usage"])
    assert set(bull["metrics"]) == set(METRICS)
    assert len(body["window_values"]["return_pct"]["Bull"]) == 3
    assert body["pairs"]["sharpe"] and body["power_sentence"]["minimum_detectable_difference"] is not None
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
    assert list(parsed[0]) == bundle.AGENT_RESULT_COLUMNS and len(parsed) == 9
    assert [float(row["return_pct"]) for row in parsed] == [row["return_pct"] for row in as_json]
    agents = api.get(f"/api/v1/tournaments/{tid}/export?what=agents&metric=sharpe&format=csv")
    summary = list(csv.DictReader(io.StringIO(agents.content.decode())))
    assert [row["rank"] for row in summary] == ["1", "2", "3"] and {row["metric"] for row in summary} == {
        "sharpe"
    }
    assert list(summary[0]) == bundle.AGENT_SUMMARY_COLUMNS
    ranking = api.get(f"/api/v1/tournaments/{tid}/results?metric=sharpe").json()["ranking"]
    for row, want in zip(summary, ranking, strict=True):
        assert row["agent"] == want["agent"]
        assert float(row["sharpe_lo_standard_error"]) == pytest.approx(want["sharpe_confidence"]["lo_standard_error"])
        assert row["rejected_action_rate_pct"] == (
            "" if want["usage"]["rejected_action_rate_pct"] is None else str(want["usage"]["rejected_action_rate_pct"])
        )
    assert (
        json.loads(json.dumps(api.get(f"/api/v1/tournaments/{tid}/export?what=agents").json()))[0]["mean"]
        is not None
    )


def test_completing_a_run_stores_the_results_of_every_metric_with_the_state_they_count(market, monkeypatch):
    tid = _played(instances=1)
    rows = {row.settings["metric"]: row for row in TournamentResults.objects.filter(tournament_id=tid)}
    assert set(rows) == set(METRICS)
    state = results.results_state(tid)
    runs_now = results.completed_runs(tid)
    for metric, row in rows.items():
        assert (row.runs_completed, row.last_finished_at) == (3, state.last_finished_at)
        assert row.settings["in_sample"] == "exclude"  # the tournament's own mode
        fresh = results.results_compute(
            tournament_id=tid, runs=runs_now, settings=results.ResultsSettings(metric=metric), report=_report(tid)
        )
        assert json.loads(json.dumps(row.data)) == json.loads(json.dumps(fresh))
    # read back as stored: nothing computed; the tournament's mode, the state, the lineup's
    # cutoffs, the row; only the row for a caller that holds the rest (as the page does)
    monkeypatch.setattr(results, "tournament_results", lambda *a, **k: pytest.fail("recomputed"))
    with CaptureQueriesContext(connection) as captured:
        data = results.tournament_results_get(tournament_id=tid, metric="sharpe")
    assert len(captured.captured_queries) == 4 and data == rows["sharpe"].data
    selection = _report(tid).digest
    with CaptureQueriesContext(connection) as captured:
        data = results.tournament_results_get(
            tournament_id=tid, settings=results.ResultsSettings(metric="sharpe"), state=state, selection=selection
        )
    assert len(captured.captured_queries) == 1 and data == rows["sharpe"].data


def test_stale_or_missing_results_are_computed_once_and_stored(market, monkeypatch):
    tid = _played(instances=1)
    calls = []
    original = results.tournament_results
    monkeypatch.setattr(results, "tournament_results", lambda *a, **k: calls.append(1) or original(*a, **k))
    # a run completed in a process that died before storing: the stored state is behind
    TournamentResults.objects.filter(tournament_id=tid).update(runs_completed=2)
    first = results.tournament_results_get(tournament_id=tid)
    second = results.tournament_results_get(tournament_id=tid)
    assert len(calls) == 1 and first == second and first["runs_completed"] == 3
    # other settings: their own row
    other = results.ResultsSettings(metric="sharpe", resamples=500)
    assert results.tournament_results_get(tournament_id=tid, settings=other)["resamples"] == 500
    assert results.tournament_results_get(tournament_id=tid, settings=other)["resamples"] == 500
    assert len(calls) == 2 and TournamentResults.objects.filter(tournament_id=tid).count() == len(METRICS) + 1


def test_an_older_state_never_replaces_a_newer_one(market):
    tid = _played(instances=1)
    settings = results.ResultsSettings()
    selection = _report(tid).digest
    row = TournamentResults.objects.get(tournament_id=tid, settings_key=settings.key(selection))
    current = results.ResultsState(row.runs_completed, row.last_finished_at)
    older = [
        results.ResultsState(current.runs_completed - 1, current.last_finished_at + timedelta(hours=1)),
        results.ResultsState(current.runs_completed, current.last_finished_at - timedelta(seconds=1)),
        current,  # the same state: kept as it is
    ]
    for state in older:
        assert not results._store(
            tournament_id=tid, settings=settings, selection=selection, data={"old": True}, state=state, seconds=0
        )
    assert TournamentResults.objects.get(pk=row.pk).data == row.data
    newer = results.ResultsState(current.runs_completed, current.last_finished_at + timedelta(seconds=1))
    assert results._store(
        tournament_id=tid, settings=settings, selection=selection, data={"new": True}, state=newer, seconds=0
    )
    assert TournamentResults.objects.get(pk=row.pk).data == {"new": True}


def test_two_runs_finishing_at_once_leave_the_results_of_both(market, monkeypatch):
    """The second run completes while the first worker computes its results: the first worker's
    results (without the second run) are not stored as current; it computes again after commit."""
    tid = _played_partly(instances=1)  # 3 windows, none played yet
    first = runs.run_claim(tournament_id=tid, owner="one")
    original = results.results_prepare
    nested = []

    def prepare_while_another_run_completes(**kwargs):
        prepared = original(**kwargs)
        if not nested:
            nested.append(1)
            other = runs.run_claim(tournament_id=tid, owner="two")
            runs.run_execute(run_id=other.pk, owner="two")  # it commits its results first
        return prepared

    monkeypatch.setattr(results, "results_prepare", prepare_while_another_run_completes)
    runs.run_execute(run_id=first.pk, owner="one")
    row = TournamentResults.objects.get(tournament_id=tid, settings_key=_key(tid, results.ResultsSettings()))
    assert row.runs_completed == 2 and row.data["runs_completed"] == 2
    assert (row.runs_completed, row.last_finished_at) == tuple(vars(results.results_state(tid)).values())


def test_a_failure_computing_results_does_not_fail_the_run(market, monkeypatch):
    tid = _played_partly(instances=1)
    monkeypatch.setattr(results, "tournament_results", lambda *a, **k: 1 / 0)
    run = runs.run_claim(tournament_id=tid, owner="t")
    assert runs.run_execute(run_id=run.pk, owner="t").status == "completed"
    assert not TournamentResults.objects.filter(tournament_id=tid).exists()
    monkeypatch.undo()
    assert results.tournament_results_get(tournament_id=tid)["runs_completed"] == 1  # computed when asked


def test_the_confidence_set_loss_follows_the_metric(market):
    tid = _played()
    stored = results.ranking_input(results.completed_runs(tid), results.ResultsSettings(), _report(tid))
    for metric in ("return_pct", "sharpe"):
        data = results.tournament_results_get(tournament_id=tid, metric=metric)
        expected = tournament_results(stored.runs, baselines=stored.baselines, reference=stored.reference, metric=metric)
        assert data["model_confidence_set"]["members"] == list(expected.mcs.members)
        assert data["model_confidence_set"]["p_values"] == pytest.approx(expected.mcs.p_values)
        assert data["power"]["metric"] == metric


def test_backfill_fills_runs_completed_before_statistics_were_stored(market):
    tid = _played(instances=1)
    run = TournamentRun.objects.filter(tournament_id=tid).first()
    stored = run.result
    old = {
        "participants": [{k: v for k, v in p.items() if k != "statistics"} for p in stored["participants"]]
    }
    TournamentRun.objects.filter(tournament_id=tid).update(result=old)
    TournamentResults.objects.filter(tournament_id=tid).delete()
    before = results.tournament_results_get(tournament_id=tid)
    assert before["ranking"][0]["sharpe_confidence"]["rounds"] == 0  # no returns stored yet
    out = StringIO()
    call_command("tournament_results_backfill", str(tid), stdout=out)
    assert "3 run(s) filled" in out.getvalue()
    assert TournamentRun.objects.get(pk=run.pk).result == stored
    after = results.tournament_results_get(tournament_id=tid)
    assert after["ranking"][0]["sharpe_confidence"]["rounds"] == 12  # the stored results were computed again
    call_command("tournament_results_backfill", stdout=out)
    assert "0 run(s) filled" in out.getvalue()
