"""The Celery door: one task per run, on the tournaments queue, idempotent and late-acked."""

import base64
import json
import os
from datetime import timedelta
from unittest import mock

import pytest
from django.conf import settings
from django.utils import timezone

from competitions.models import Round
from gauntlet.celery import app
from tournaments import runs, services
from tournaments.models import TournamentRun
from tournaments.tasks import (
    QUEUE,
    queue_depth,
    tournament_run_task,
    tournament_runs_recover_task,
    tournament_runs_resend_task,
)
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


def _lease_ends(run: TournamentRun) -> None:
    TournamentRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_the_run_of_a_lost_worker_is_released_and_sent_again_once_its_lease_ends(market):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    lost = runs.run_claim(tournament_id=tournament.pk, owner="celery:gone@host:1:task")
    alive = runs.run_claim(tournament_id=tournament.pk, owner="celery:busy@host:2:task")
    with mock.patch.object(tournament_run_task, "delay") as delay:
        assert tournament_runs_recover_task.apply().get() == []  # leases still running: nothing to do
        _lease_ends(lost)
        assert tournament_runs_recover_task.apply().get() == [lost.pk]
        assert tournament_runs_recover_task.apply().get() == []  # sent once, not once a minute
    assert [call.args for call in delay.call_args_list] == [(lost.pk,)]
    lost.refresh_from_db()
    assert (lost.status, lost.claimed_by, lost.attempts) == ("pending", "", 1)
    assert "worker was lost" in lost.error
    assert TournamentRun.objects.get(pk=alive.pk).status == "running"
    # the next worker resumes it: the lost attempt counts
    assert runs.run_claim(run_id=lost.pk, owner="celery:other@host:3:task").attempts == 2


def test_a_lost_run_on_its_last_attempt_fails_and_completes_the_tournament(market):
    tournament = services.tournament_create(**tournament_fields(**ONE_RUN, max_attempts=1))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = runs.run_claim(tournament_id=tournament.pk, owner="celery:gone@host:1:task")
    _lease_ends(run)
    with mock.patch.object(tournament_run_task, "delay") as delay:
        assert tournament_runs_recover_task.apply().get() == []
    assert not delay.called
    run.refresh_from_db()
    assert run.status == "failed" and "last allowed attempt" in run.error
    tournament.refresh_from_db()
    assert tournament.status == "completed"


def test_a_finished_task_recovers_the_lost_runs_of_its_tournament(market):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    lost = runs.run_claim(tournament_id=tournament.pk, owner="celery:gone@host:1:task")
    _lease_ends(lost)
    mine = TournamentRun.objects.filter(tournament=tournament, status="pending").first()
    with mock.patch.object(tournament_run_task, "delay") as delay:
        assert tournament_run_task.apply(args=[mine.pk]).get() == "completed"
    assert [call.args for call in delay.call_args_list] == [(lost.pk,)]
    mine.refresh_from_db()
    assert mine.claimed_by.startswith("celery:") and f":{os.getpid()}:" in mine.claimed_by


def test_beat_runs_the_recovery_once_a_minute_on_the_tournaments_queue():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tournament_runs_recover_task.name)
    assert entry["schedule"] <= 60
    route = app.amqp.router.route({}, tournament_runs_recover_task.name, args=(), kwargs={})
    assert route["queue"].name == "tournaments"


def test_waiting_runs_are_sent_again_only_when_the_queue_holds_no_task(market):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    taken = runs.run_claim(tournament_id=tournament.pk, owner="celery:busy@host:2:task")
    waiting = sorted(TournamentRun.objects.filter(tournament=tournament, status="pending").values_list("pk", flat=True))
    with mock.patch.object(tournament_run_task, "delay") as delay:
        for depth in (None, 3):  # no broker to ask, or tasks still in the queue: nothing to do
            with mock.patch("tournaments.tasks.queue_depth", return_value=depth):
                assert tournament_runs_resend_task.apply().get() == []
        assert not delay.called
        with mock.patch("tournaments.tasks.queue_depth", return_value=0):
            assert sorted(tournament_runs_resend_task.apply().get()) == waiting
    assert sorted(call.args[0] for call in delay.call_args_list) == waiting
    assert taken.pk not in waiting and len(waiting) == 3


def test_beat_looks_for_runs_whose_task_the_broker_lost():
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == tournament_runs_resend_task.name)
    assert entry["schedule"] <= 600


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs Redis (run with REDIS_URL=redis://...)")
def test_tasks_lost_with_the_redis_queue_are_sent_again(market, django_capture_on_commit_callbacks):
    """The real broker: the tasks of a started tournament are in Redis's tournaments list; the
    list is lost (as with a Redis restarted without persistence); the resend puts one task per
    waiting run back, and does nothing more while they wait there."""
    import redis

    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def queued() -> list[int]:  # the run ids of the task messages in the queue's lists
        messages = [json.loads(raw) for key in broker.keys(f"{QUEUE}*") for raw in broker.lrange(key, 0, -1)]
        return sorted(json.loads(base64.b64decode(message["body"]))[0][0] for message in messages)

    for key in broker.keys(f"{QUEUE}*"):  # what earlier tests of this run may have left there
        broker.delete(key)
    tournament = services.tournament_create(**tournament_fields())
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.tournament_start(tournament_id=tournament.pk, enqueue=True)
        run_ids = sorted(TournamentRun.objects.filter(tournament=tournament).values_list("pk", flat=True))
        assert queue_depth() == 4 and queued() == run_ids
        assert tournament_runs_resend_task.apply().get() == []  # their tasks are there

        broker.delete(*broker.keys(f"{QUEUE}*"))  # the broker lost its queue
        assert queue_depth() == 0
        assert sorted(tournament_runs_resend_task.apply().get()) == run_ids
        assert queued() == run_ids
        assert tournament_runs_resend_task.apply().get() == []  # once, not every time
    finally:
        for key in broker.keys(f"{QUEUE}*"):
            broker.delete(key)
