"""Without Celery, the in-process runner (make demo, run_rounds) plays tournament runs: a
tournament started through the API completes with nothing else running, the runner leaves
the runs' competitions to that worker instead of pacing their rounds, and stopping it hands
the run back. (The tests wait on threads and events, not by polling the database: SQLite's
shared in-memory test database answers a reader beside a writer with "table is locked".)"""

import json
import threading

import httpx
import pytest
import respx
from rest_framework.test import APIClient

from agents.tests.conftest import HTTPX2Mocker  # noqa: F401  (registers respx's httpx2 mocker)
from competitions import dispatch
from competitions.dispatch import InProcessRunner
from competitions.models import Round
from competitions.services import competition_start
from tournaments import services
from tournaments.inprocess import in_process_job
from tournaments.models import RunStatus, Tournament, TournamentRun
from tournaments.tests.conftest import tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "in-process-test-key"


def _job_finish() -> None:
    thread = in_process_job._thread
    assert thread is not None
    thread.join(120)
    assert not thread.is_alive()


def test_the_tournaments_job_is_registered_with_the_in_process_runner():
    assert in_process_job in dispatch._in_process_jobs


def test_a_tournament_started_from_the_api_is_played_in_process(market, settings):
    settings.API_KEYS = [KEY]
    settings.ROUND_RUNNER = "inprocess"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    tid = client.post("/api/v1/tournaments", tournament_fields(), format="json").json()["id"]
    assert client.post(f"/api/v1/tournaments/{tid}/start").status_code == 200

    in_process_job.step()  # what the runner does on its next tick
    _job_finish()
    runs = TournamentRun.objects.filter(tournament_id=tid)
    assert runs.count() == 4 and {run.status for run in runs} == {RunStatus.COMPLETED}
    assert {run.claimed_by.split(":")[0] for run in runs} == {"inprocess"}
    detail = client.get(f"/api/v1/tournaments/{tid}").json()
    assert detail["status"] == Tournament.Status.COMPLETED and detail["progress"]["runs_completed"] == 4
    in_process_job.step()  # nothing left: no thread
    assert not in_process_job._thread.is_alive()


def test_the_runner_steps_its_jobs_stops_them_and_leaves_their_competitions_alone(market, monkeypatch):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = TournamentRun.objects.filter(tournament=tournament).first()
    competition_start(competition_id=run.competition_id)  # as a worker does when it begins
    assert run.competition_id in in_process_job.competitions_owned()

    class Job:
        def __init__(self):
            self.steps, self.stopped = threading.Event(), False

        def step(self):
            self.steps.set()

        def competitions_owned(self):
            return in_process_job.competitions_owned()

        def stop(self):
            self.stopped = True

    job = Job()
    monkeypatch.setattr(dispatch, "_in_process_jobs", [job])
    runner = InProcessRunner(replay_pace_seconds=0, poll_seconds=0.05)
    runner.step()  # the paced replay step: the run's competition is the job's
    assert not Round.objects.filter(competition_id=run.competition_id).exists()
    runner.start()
    try:
        assert job.steps.wait(30)
    finally:
        runner.stop()
        runner.join(30)
    assert job.stopped


def test_stopping_the_job_hands_the_run_back_to_be_resumed(market):
    asked = threading.Event()

    def slow_hold(request):
        asked.set()
        threading.Event().wait(0.2)
        return httpx.Response(200, json={
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": json.dumps({"reasoning": "wait", "actions": [{"action": "hold"}]})}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        })

    model = {"name": "Slow", "llm_provider": "openai_compatible", "llm_model": "m",
             "llm_config": {"base_url": "http://model.test/v1"}, "api_key": "sk-local"}
    tournament = services.tournament_create(**tournament_fields(rules={}, entries=[model]))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    with respx.mock(using="httpx2", assert_all_called=False) as router:
        router.post("http://model.test/v1/chat/completions").mock(side_effect=slow_hold)
        in_process_job.step()
        assert asked.wait(30)
        in_process_job.stop()
    runs = TournamentRun.objects.filter(tournament=tournament)
    assert not runs.filter(status=RunStatus.RUNNING).exists()
    assert runs.filter(status=RunStatus.PENDING).count() == 4  # handed back, no attempt spent
    assert set(runs.values_list("attempts", flat=True)) == {0}
    assert Round.objects.filter(competition__tournament_run__tournament=tournament).exists()
