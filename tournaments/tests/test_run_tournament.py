"""run_tournament executes every run exactly once, in one process or several, on SQLite
(WAL, busy timeout, immediate transactions) and on PostgreSQL, and the tournament's stored
results end at the state of the last completed run."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from analytics.tournament import METRICS
from competitions.models import Round
from tournaments import services
from tournaments.models import Tournament, TournamentResults, TournamentRun
from tournaments.results import results_state
from tournaments.tests.conftest import START, store_market, tournament_fields

BASE_DIR = Path(__file__).resolve().parents[2]
SIX_RUNS = {"windows_spec": {"start": START.isoformat(), "count": 3, "length_minutes": 180, "step_minutes": 240}}


def _runs_report(tournament_id: int) -> dict:
    runs = TournamentRun.objects.filter(tournament_id=tournament_id)
    state = results_state(tournament_id)
    return {
        # the tournament's results as the workers stored them, each against the final state
        "stored_results": sorted(
            [row.settings["metric"], row.runs_completed, row.last_finished_at == state.last_finished_at]
            for row in TournamentResults.objects.filter(tournament_id=tournament_id)
        ),
        "status": Tournament.objects.get(pk=tournament_id).status,
        "runs": [[r.status, r.attempts, r.claimed_by, r.rounds_done] for r in runs],
        "rounds_per_competition": [
            Round.objects.filter(competition_id=r.competition_id, status="completed").count() for r in runs
        ],
    }


def _assert_each_run_executed_once(report: dict, runs: int, workers: int) -> None:
    assert report["status"] == "completed"
    assert len(report["runs"]) == runs
    assert {(status, attempts) for status, attempts, _, _ in report["runs"]} == {("completed", 1)}
    # 3 agent rounds and a final round per window, each run's rounds played once
    assert report["rounds_per_competition"] == [4] * runs
    assert [rounds for *_, rounds in report["runs"]] == [4] * runs
    assert len({owner for _, _, owner, _ in report["runs"]}) == workers
    # runs completing at once in two processes: no older state stored over the last one
    assert report["stored_results"] == sorted([metric, runs, True] for metric in METRICS)


@pytest.mark.django_db(transaction=True)
def test_one_worker_runs_a_draft_to_the_end_and_prints_progress(market):
    tournament = services.tournament_create(**tournament_fields())
    out = StringIO()
    call_command("run_tournament", str(tournament.pk), "--interval", "0.05", stdout=out)
    output = out.getvalue()
    assert "tournament %s started" % tournament.pk in output
    assert "runs 4/4" in output and "rounds 20/20" in output and "cache hits 0" in output
    # the progress is shown while the one worker plays, not only at the end
    lines = [line for line in output.splitlines() if line.startswith("runs ")]
    assert len(lines) >= 2 and "ETA" in lines[0] and "/s" in lines[0] and "LLM $" in lines[0]
    assert Tournament.objects.get(pk=tournament.pk).status == "completed"
    # a second call has nothing left to do
    with pytest.raises(CommandError, match="completed"):
        call_command("run_tournament", str(tournament.pk), stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_failed_runs_are_listed_and_the_command_exits_with_an_error(market, monkeypatch):
    tournament = services.tournament_create(**tournament_fields(instances=1, max_attempts=1))

    def broken(**kwargs):
        raise RuntimeError("no candles")

    monkeypatch.setattr(services.ports, "replay_run", broken)
    out = StringIO()
    with pytest.raises(CommandError, match="2 run"):
        call_command("run_tournament", str(tournament.pk), stdout=out)
    assert "failed after 1 attempts: RuntimeError: no candles" in out.getvalue()


SETUP = """
from tournaments import services
from tournaments.tests.conftest import store_market, tournament_fields
store_market()
print(services.tournament_create(**tournament_fields(**{spec})).pk)
"""
REPORT = """
import json
from tournaments.tests.test_run_tournament import _runs_report
print(json.dumps(_runs_report({id})))
"""


@pytest.mark.slow
def test_two_processes_on_a_sqlite_file_execute_every_run_once(tmp_path):
    env = {**os.environ, "DATABASE_URL": "", "REDIS_URL": "", "CELERY_BROKER_URL": "",
           "SQLITE_PATH": str(tmp_path / "gauntlet.sqlite3"), "LOG_LEVEL": "WARNING"}

    def manage(*args) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    manage("migrate", "-v0")
    tournament_id = int(manage("shell", "-c", SETUP.format(spec=repr(SIX_RUNS))).strip().splitlines()[-1])
    output = manage("run_tournament", str(tournament_id), "--workers", "2", "--interval", "0.5")
    assert "runs 6/6" in output
    report = json.loads(manage("shell", "-c", REPORT.format(id=tournament_id)).strip().splitlines()[-1])
    _assert_each_run_executed_once(report, runs=6, workers=2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_processes_on_postgresql_execute_every_run_once(postgres_only):
    store_market()
    tournament = services.tournament_create(**tournament_fields(**SIX_RUNS))
    out = StringIO()
    call_command("run_tournament", str(tournament.pk), "--workers", "2", "--interval", "0.5", stdout=out)
    assert "runs 6/6" in out.getvalue()
    _assert_each_run_executed_once(_runs_report(tournament.pk), runs=6, workers=2)
