"""Tournament services: drafts are checked like competitions, start expands runs, runs are
claimed once, executed to the end, retried a bounded number of times, and counted."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from competitions.models import Competition, Participant, Round
from gauntlet.errors import ConflictError, DomainError
from tournaments import runs, selectors, services
from tournaments.models import Tournament, TournamentRun
from tournaments.tests.conftest import START, tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_generated_spec_tiles_windows_by_step_and_stops_at_the_end():
    plan = services.windows_plan({"start": START.isoformat(), "end": (START + timedelta(hours=20)).isoformat(),
                                  "length_minutes": 360, "step_minutes": 300})
    assert plan == [(START + timedelta(hours=5 * i), START + timedelta(hours=5 * i + 6)) for i in range(3)]


def test_an_explicit_window_list_is_taken_as_given_and_nonsense_is_refused():
    plan = services.windows_plan({"windows": [{"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T05:00:00Z"}]})
    assert plan == [(START, START + timedelta(hours=5))]
    with pytest.raises(DomainError, match="end after it starts"):
        services.windows_plan({"windows": [{"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]})
    with pytest.raises(DomainError, match="do not fit"):
        services.windows_plan({"start": "2025-01-01T00:00:00Z", "end": "2025-01-01T10:00:00Z", "count": 3,
                               "length_minutes": 240})
    with pytest.raises(DomainError, match="timezone-aware"):
        services.windows_plan({"start": "2025-01-01T00:00:00", "count": 1, "length_minutes": 60})
    with pytest.raises(DomainError, match="minutes from 1"):
        services.windows_plan({"start": "2025-01-01T00:00:00Z", "count": 1, "length_minutes": 10**20})
    with pytest.raises(DomainError, match="9999"):
        services.windows_plan({"start": "9999-12-01T00:00:00Z", "count": 2, "length_minutes": 10**6})
    with pytest.raises(DomainError, match="timezone-aware"):
        services.windows_plan({"windows": [{"start": "2025-13-01T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]})


def test_create_checks_the_rules_template_through_competition_validation(market):
    with pytest.raises(DomainError, match="maintenance_margin_pct") as caught:
        services.tournament_create(**tournament_fields(rules={"margin_requirement_pct": "5",
                                                              "maintenance_margin_pct": "6"}))
    assert caught.value.field == "rules"
    with pytest.raises(DomainError, match="run-owned"):
        services.tournament_create(**tournament_fields(rules={"seed": 3}))
    with pytest.raises(DomainError, match="outside the dataset"):
        services.tournament_create(**tournament_fields(windows_spec={"start": "2030-01-01T00:00:00Z", "count": 1,
                                                                     "length_minutes": 60}))
    assert not Tournament.objects.exists() and not Competition.objects.exists()


def test_start_makes_one_seeded_competition_per_window_and_instance_with_the_whole_lineup(market):
    entries = tournament_fields()["entries"] + [
        {"name": "Model", "llm_provider": "openai_compatible", "llm_model": "m",
         "llm_config": {"base_url": "http://model.test/v1"}, "api_key": "sk-secret"},
    ]
    tournament = services.tournament_create(**tournament_fields(entries=entries))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)

    runs = list(TournamentRun.objects.filter(tournament=tournament).select_related("window", "competition"))
    assert [(r.window.index, r.instance, r.seed) for r in runs] == [(0, 0, 7), (0, 1, 8), (1, 0, 7), (1, 1, 8)]
    for run in runs:
        competition = run.competition
        assert (competition.seed, competition.start_time, competition.mode) == (run.seed, run.window.start_time, "replay")
        assert competition.end_time - competition.start_time == timedelta(hours=4)
        assert competition.fee_pct == 0
        participants = {p.name: p for p in Participant.objects.filter(competition=competition)}
        assert sorted(participants) == ["Bear", "Bull", "Hold", "Model"]
        model = participants["Model"]
        # the instance seed reaches the model's sampling; the key is kept, encrypted
        assert model.llm_config["seed"] == run.seed and model.llm_config["decision_cache"] == "read_write"
        assert model.api_key() == "sk-secret"
        assert "decision_cache" not in participants["Bull"].llm_config
    assert Tournament.objects.get(pk=tournament.pk).status == "running"
    with pytest.raises(ConflictError):
        services.tournament_update(tournament_id=tournament.pk, instances=3)


def test_a_run_is_claimed_by_one_owner_until_its_lease_expires(market):
    tournament = services.tournament_create(**tournament_fields(instances=1, windows_spec={
        "start": START.isoformat(), "count": 1, "length_minutes": 120}))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)

    first = runs.run_claim(tournament_id=tournament.pk, owner="a")
    assert first is not None and first.attempts == 1
    assert runs.run_claim(tournament_id=tournament.pk, owner="b") is None
    assert runs.run_claim(run_id=first.pk, owner="b") is None

    TournamentRun.objects.filter(pk=first.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    taken = runs.run_claim(run_id=first.pk, owner="b")
    assert taken.claimed_by == "b" and taken.attempts == 2
    # the old owner lost it: its execution is refused
    with pytest.raises(ConflictError):
        runs.run_execute(run_id=first.pk, owner="a")


def test_executing_runs_completes_them_with_results_and_completes_the_tournament(market):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    while (run := runs.run_claim(tournament_id=tournament.pk, owner="w")) is not None:
        runs.run_execute(run_id=run.pk, owner="w")

    tournament.refresh_from_db()
    assert tournament.status == "completed" and tournament.completed_at is not None
    for run in TournamentRun.objects.filter(tournament=tournament).select_related("competition"):
        assert (run.status, run.attempts, run.competition.status) == ("completed", 1, "completed")
        # 4 hourly rounds and the final round at the window's end
        assert run.rounds_done == Round.objects.filter(competition=run.competition).count() == 5
        result = {p["name"]: p for p in run.result["participants"]}
        # BTC rises and ETH falls in every window: the long and the short both gain
        assert Decimal(result["Bull"]["return_pct"]) > 0 and Decimal(result["Bear"]["return_pct"]) > 0
        assert Decimal(result["Bull"]["final_equity"]) > Decimal(10000)
    progress = selectors.tournament_progress(tournament.pk)
    assert (progress.runs_total, progress.runs_completed, progress.runs_done) == (4, 4, 4)
    assert progress.rounds_done == progress.rounds_total == 20


def test_a_failing_run_is_retried_then_failed_with_its_reason(market, monkeypatch):
    tournament = services.tournament_create(**tournament_fields(instances=1, max_attempts=2, windows_spec={
        "start": START.isoformat(), "count": 1, "length_minutes": 120}))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)

    def broken(**kwargs):
        raise RuntimeError("dataset vanished")

    monkeypatch.setattr(services.ports, "replay_run", broken)
    run = runs.run_claim(tournament_id=tournament.pk, owner="w")
    run = runs.run_execute(run_id=run.pk, owner="w")
    assert (run.status, run.attempts, run.error) == ("pending", 1, "RuntimeError: dataset vanished")
    run = runs.run_execute(run_id=runs.run_claim(tournament_id=tournament.pk, owner="w").pk, owner="w")
    assert (run.status, run.attempts) == ("failed", 2)
    assert runs.run_claim(tournament_id=tournament.pk, owner="w") is None
    progress = selectors.tournament_progress(tournament.pk)
    assert progress.runs_failed == 1 and progress.failures[0]["error"] == "RuntimeError: dataset vanished"
    assert Tournament.objects.get(pk=tournament.pk).status == "completed"


def test_cancel_stops_unfinished_runs_and_their_competitions(market):
    tournament = services.tournament_create(**tournament_fields())
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    run = runs.run_claim(tournament_id=tournament.pk, owner="w")
    runs.run_execute(run_id=run.pk, owner="w")

    services.tournament_cancel(tournament_id=tournament.pk)
    statuses = dict(TournamentRun.objects.filter(tournament=tournament).values_list("pk", "status"))
    assert statuses.pop(run.pk) == "completed"
    assert set(statuses.values()) == {"cancelled"}
    competitions = Competition.objects.filter(tournament_run__tournament=tournament)
    assert sorted(competitions.values_list("status", flat=True)) == ["cancelled"] * 3 + ["completed"]
    assert runs.run_claim(tournament_id=tournament.pk, owner="w") is None
    with pytest.raises(ConflictError):
        services.tournament_cancel(tournament_id=tournament.pk)
