"""The Celery door: one task per run, on the tournaments queue, idempotent and late-acked."""

from unittest import mock

import pytest

from competitions.models import Round
from gauntlet.celery import app
from tournaments import runs, services
from tournaments.models import TournamentRun
from tournaments.tasks import tournament_run_task
from tournaments.tests.conftest import START, tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)
ONE_RUN = {"instances": 1, "windows_spec": {"start": START.isoformat(), "count": 1, "length_minutes": 120}}


def test_the_task_is_late_acked_requeued_when_its_worker_dies_and_routed_to_its_own_queue():
    assert tournament_run_task.acks_late is True
    assert tournament_run_task.reject_on_worker_lost is True
    route = app.amqp.router.route({}, tournament_run_task.name, args=(1,), kwargs={})
    assert route["queue"].name == "tournaments"
    assert app.conf.worker_prefetch_multiplier == 1


def test_start_enqueues_one_task_per_run_after_commit(market, django_capture_on_commit_callbacks):
    tournament = services.tournament_create(**tournament_fields())
    with mock.patch.object(tournament_run_task, "delay") as delay:
        with django_capture_on_commit_callbacks(execute=True):
            services.tournament_start(tournament_id=tournament.pk, enqueue=True)
    run_ids = sorted(TournamentRun.objects.filter(tournament=tournament).values_list("pk", flat=True))
    assert sorted(call.args[0] for call in delay.call_args_list) == run_ids


def test_a_delivered_twice_task_executes_its_run_once(market):
    tournament = services.tournament_create(**tournament_fields(**ONE_RUN))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = TournamentRun.objects.get(tournament=tournament)

    assert tournament_run_task.apply(args=[run.pk]).get() == "completed"
    rounds = list(Round.objects.filter(competition=run.competition).values_list("pk", flat=True))
    assert tournament_run_task.apply(args=[run.pk]).get() == "completed"
    run.refresh_from_db()
    assert run.attempts == 1 and list(Round.objects.filter(competition=run.competition).values_list("pk", flat=True)) == rounds


def test_a_run_held_by_another_worker_is_retried_later_not_executed(market):
    tournament = services.tournament_create(**tournament_fields(**ONE_RUN))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = runs.run_claim(tournament_id=tournament.pk, owner="another worker")
    with mock.patch.object(tournament_run_task, "retry", side_effect=RuntimeError("retry")) as retry:
        with pytest.raises(RuntimeError, match="retry"):
            tournament_run_task.apply(args=[run.pk], throw=True)
    assert retry.call_args.kwargs["countdown"] == runs.lease_seconds()
    assert not Round.objects.filter(competition=run.competition).exists()


def test_a_failed_attempt_is_retried_and_the_last_one_fails_with_its_reason(market, monkeypatch):
    tournament = services.tournament_create(**tournament_fields(**ONE_RUN, max_attempts=2))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = TournamentRun.objects.get(tournament=tournament)
    monkeypatch.setattr(services.ports, "replay_run", mock.Mock(side_effect=OSError("disk full")))
    with mock.patch.object(tournament_run_task, "retry", side_effect=RuntimeError("retry")) as retry:
        with pytest.raises(RuntimeError):
            tournament_run_task.apply(args=[run.pk], throw=True)
        assert retry.call_count == 1
        assert tournament_run_task.apply(args=[run.pk], throw=True).get() == "failed"
    run.refresh_from_db()
    assert (run.status, run.attempts, run.error) == ("failed", 2, "OSError: disk full")
