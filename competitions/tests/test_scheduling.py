"""Beat entries follow the competition's status; the round task runs what the clock says is due."""

import json
from datetime import timedelta
from unittest import mock

import pytest
import time_machine
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from agents.models import Invocation
from competitions import services
from competitions.models import Round
from competitions.scheduling import ROUND_TASK, TICK_NAME, TICK_TASK, schedule_name
from competitions.tasks import competition_round_due
from competitions.tests.factories import START, CompetitionFactory
from marketdata.sources import get_source

pytestmark = pytest.mark.django_db


def _live(**fields):
    defaults = {"mode": "live", "dataset": "", "end_time": START + timedelta(days=1),
                "invocation_interval_minutes": 60}
    defaults.update(fields)
    competition = CompetitionFactory(**defaults)
    services.participant_register(
        competition_id=competition.pk, name="Holder", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": []},
    )
    return competition


def _entries(competition):
    return PeriodicTask.objects.filter(name=schedule_name(competition.pk))


@pytest.fixture
def synthetic_prices():
    """Live rounds read a seeded synthetic market instead of the exchange (no network in tests)."""
    source = get_source("synthetic", seed=7, start=START - timedelta(days=30))
    with mock.patch("competitions.rounds.run.price_source_for", return_value=source):
        yield source


def test_starting_a_live_competition_creates_one_enabled_entry_at_its_interval():
    competition = _live(invocation_interval_minutes=15)
    services.competition_start(competition_id=competition.pk)
    entry = _entries(competition).get()
    assert entry.enabled and entry.task == ROUND_TASK
    assert json.loads(entry.args) == [competition.pk]
    assert (entry.interval.every, entry.interval.period) == (15, IntervalSchedule.MINUTES)
    assert entry.start_time == competition.start_time


def test_pause_disables_and_resume_enables_the_same_entry():
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    entry_id = _entries(competition).get().pk
    services.competition_pause(competition_id=competition.pk)
    assert _entries(competition).get().enabled is False
    services.competition_resume(competition_id=competition.pk)
    entry = _entries(competition).get()
    assert entry.enabled is True and entry.pk == entry_id


def test_start_pause_resume_cycles_leave_exactly_one_entry():
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    for _ in range(3):
        services.competition_pause(competition_id=competition.pk)
        services.competition_resume(competition_id=competition.pk)
    assert _entries(competition).count() == 1
    assert PeriodicTask.objects.filter(task=ROUND_TASK).count() == 1


@pytest.mark.parametrize("end", [services.competition_stop, services.competition_cancel])
def test_stopping_or_cancelling_removes_the_entry(end):
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    services.competition_pause(competition_id=competition.pk)
    end(competition_id=competition.pk)
    assert not _entries(competition).exists()


def test_replay_competitions_get_no_entry():
    competition = CompetitionFactory(mode="replay")
    services.participant_register(
        competition_id=competition.pk, name="Flat", llm_provider="baseline", llm_model="flat"
    )
    services.competition_start(competition_id=competition.pk)
    assert not _entries(competition).exists()
    assert not PeriodicTask.objects.filter(task=ROUND_TASK).exists()


def test_the_lifecycle_tick_entry_exists_after_migrations():
    tick = PeriodicTask.objects.get(name=TICK_NAME)
    assert tick.task == TICK_TASK and tick.enabled
    assert (tick.interval.every, tick.interval.period) == (1, IntervalSchedule.MINUTES)


def test_the_round_task_runs_the_round_the_clock_says_is_due(synthetic_prices):
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    # 2 h 30 min after start with hourly rounds: round 2, at its scheduled market time start + 2 h
    with time_machine.travel(START + timedelta(hours=2, minutes=30), tick=False):
        round_id = competition_round_due.apply(args=[competition.pk]).get()
    round_ = Round.objects.get(pk=round_id)
    assert (round_.number, round_.status) == (2, "completed")
    assert round_.market_time == START + timedelta(hours=2)
    assert Invocation.objects.filter(round=round_).count() == 1


def test_beat_firing_twice_in_one_interval_runs_the_round_once(synthetic_prices):
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    with time_machine.travel(START + timedelta(minutes=5), tick=False):
        first = competition_round_due.apply(args=[competition.pk]).get()
    with time_machine.travel(START + timedelta(minutes=59), tick=False):
        second = competition_round_due.apply(args=[competition.pk]).get()
    assert first is not None and second is None
    assert Round.objects.count() == 1 and Invocation.objects.count() == 1


@pytest.mark.parametrize(
    "moment", [START - timedelta(minutes=1), START + timedelta(days=1), START + timedelta(days=1, hours=3)]
)
def test_the_round_task_does_nothing_outside_start_and_end(synthetic_prices, moment):
    competition = _live()
    services.competition_start(competition_id=competition.pk)
    with time_machine.travel(moment, tick=False):
        assert competition_round_due.apply(args=[competition.pk]).get() is None
    assert not Round.objects.exists()


def test_the_round_task_does_nothing_while_paused_or_before_start(synthetic_prices):
    draft = _live()
    paused = _live()
    services.competition_start(competition_id=paused.pk)
    services.competition_pause(competition_id=paused.pk)
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        assert competition_round_due.apply(args=[draft.pk]).get() is None
        assert competition_round_due.apply(args=[paused.pk]).get() is None
        assert competition_round_due.apply(args=[999_999]).get() is None  # deleted since beat loaded it
    assert not Round.objects.exists()


def _stock_competition():
    return _live(symbols=["AAPL"], allowed_asset_classes=["stocks"], market_hours_only=True, max_leverage=5)


def test_market_hours_only_skips_a_round_when_the_market_is_closed(synthetic_prices):
    competition = _stock_competition()
    services.competition_start(competition_id=competition.pk, now=START)
    # START is Wednesday 2025-01-01 00:00 UTC; 03:00 UTC is 22:00 in New York: NYSE closed
    with time_machine.travel(START + timedelta(hours=3, minutes=1), tick=False):
        round_id = competition_round_due.apply(args=[competition.pk]).get()
    round_ = Round.objects.get(pk=round_id)
    assert round_.status == "skipped" and "closed" in round_.detail
    assert not Invocation.objects.exists()


def test_market_hours_only_runs_the_round_while_the_market_is_open(synthetic_prices):
    competition = _stock_competition()
    services.competition_start(competition_id=competition.pk, now=START)
    # 15:00 UTC is 10:00 in New York (EST, UTC-5): inside 09:30-16:00
    with time_machine.travel(START + timedelta(hours=15, minutes=1), tick=False):
        round_id = competition_round_due.apply(args=[competition.pk]).get()
    round_ = Round.objects.get(pk=round_id)
    assert (round_.number, round_.status) == (15, "completed")
    assert Invocation.objects.filter(round=round_).count() == 1
