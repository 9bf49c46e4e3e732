"""Competition lifecycle and participant registration through the services."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from competitions import services
from competitions.models import Competition, Participant
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory
from gauntlet.errors import ConflictError, DomainError

pytestmark = pytest.mark.django_db


def _rules(**overrides):
    rules = {
        "name": "Cup",
        "start_time": START,
        "end_time": START + timedelta(days=1),
        "initial_capital": "10000",
        "max_leverage": "10",
        "margin_requirement_pct": "10",
        "maintenance_margin_pct": "5",
        "allowed_asset_classes": ["crypto"],
        "symbols": ["BTC/USDT"],
    }
    rules.update(overrides)
    return rules


def test_create_stores_decimals_exactly():
    competition = services.competition_create(**_rules(fee_pct="0.045"))
    competition.refresh_from_db()
    assert competition.initial_capital == Decimal("10000")
    assert competition.fee_pct == Decimal("0.045")
    assert competition.status == "draft"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"end_time": START}, "end_time"),
        ({"max_leverage": "11"}, "max_leverage"),
        ({"maintenance_margin_pct": "10"}, "maintenance_margin_pct"),
        ({"allowed_asset_classes": ["crypto", "beanie_babies"]}, "allowed_asset_classes"),
        ({"allowed_asset_classes": []}, "allowed_asset_classes"),
        ({"symbols": "BTC/USDT"}, "symbols"),
        ({"initial_capital": "lots"}, "initial_capital"),
        ({"start_time": datetime(2025, 1, 1)}, "start_time"),
    ],
)
def test_create_refuses_bad_rules_with_the_field_named(overrides, field):
    with pytest.raises(DomainError) as caught:
        services.competition_create(**_rules(**overrides))
    assert caught.value.field == field
    assert Competition.objects.count() == 0


def test_create_refuses_unknown_fields():
    with pytest.raises(DomainError, match="unknown competition field"):
        services.competition_create(**_rules(owner="me"))


def test_full_lifecycle_draft_active_paused_active_completed():
    participant = ParticipantFactory()
    competition_id = participant.competition_id
    assert services.competition_start(competition_id=competition_id).status == "active"
    assert services.competition_pause(competition_id=competition_id).status == "paused"
    assert services.competition_resume(competition_id=competition_id).status == "active"
    stopped = services.competition_stop(competition_id=competition_id)
    assert stopped.status == "completed"
    assert stopped.started_at is not None and stopped.completed_at is not None


@pytest.mark.parametrize(
    ("status", "service"),
    [
        ("draft", services.competition_pause),
        ("draft", services.competition_resume),
        ("draft", services.competition_stop),
        ("active", services.competition_start),
        ("active", services.competition_resume),
        ("paused", services.competition_start),
        ("paused", services.competition_pause),
        ("completed", services.competition_start),
        ("completed", services.competition_resume),
        ("completed", services.competition_cancel),
        ("cancelled", services.competition_start),
        ("cancelled", services.competition_stop),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(status, service):
    competition = ParticipantFactory(competition__status=status).competition
    with pytest.raises(ConflictError):
        service(competition_id=competition.pk)
    competition.refresh_from_db()
    assert competition.status == status


def test_a_competition_without_participants_cannot_start():
    competition = CompetitionFactory()
    with pytest.raises(ConflictError, match="at least one participant"):
        services.competition_start(competition_id=competition.pk)


def test_cancel_is_allowed_from_draft_active_and_paused():
    for status in ("draft", "active", "paused"):
        competition = CompetitionFactory(status=status)
        assert services.competition_cancel(competition_id=competition.pk).status == "cancelled"


def test_only_drafts_can_be_deleted():
    draft, active = CompetitionFactory(), CompetitionFactory(status="active")
    services.competition_delete(competition_id=draft.pk)
    with pytest.raises(ConflictError):
        services.competition_delete(competition_id=active.pk)
    assert list(Competition.objects.values_list("pk", flat=True)) == [active.pk]


def test_rules_are_locked_once_started_but_the_description_is_not():
    competition = CompetitionFactory(status="active")
    with pytest.raises(ConflictError, match="max_leverage"):
        services.competition_update(competition_id=competition.pk, max_leverage="5")
    updated = services.competition_update(competition_id=competition.pk, description="Now with notes")
    assert updated.description == "Now with notes" and updated.max_leverage == Decimal("10")


def test_live_competition_starts_and_completes_by_the_clock():
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    competition = ParticipantFactory(
        competition__mode="live", competition__dataset="", competition__start_time=start,
        competition__end_time=start + timedelta(hours=2),
    ).competition
    with time_machine.travel(start - timedelta(minutes=1), tick=False):
        assert services.competitions_tick() == {"started": [], "completed": []}
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        assert services.competitions_tick() == {"started": [competition.pk], "completed": []}
        competition.refresh_from_db()
        assert competition.status == "active" and competition.started_at == start + timedelta(seconds=1)
    with time_machine.travel(start + timedelta(hours=2), tick=False):
        assert services.competitions_tick() == {"started": [], "completed": [competition.pk]}
    competition.refresh_from_db()
    assert competition.status == "completed"


def test_replay_competitions_are_not_started_by_the_wall_clock():
    competition = ParticipantFactory(competition__mode="replay").competition
    with time_machine.travel(START + timedelta(hours=1), tick=False):
        services.competitions_tick()
    competition.refresh_from_db()
    assert competition.status == "draft"


def test_registration_is_refused_once_full():
    competition = CompetitionFactory(max_participants=2)
    for name in ("A", "B"):
        services.participant_register(
            competition_id=competition.pk, name=name, llm_provider="baseline", llm_model="flat"
        )
    with pytest.raises(ConflictError, match="full"):
        services.participant_register(
            competition_id=competition.pk, name="C", llm_provider="baseline", llm_model="flat"
        )
    assert competition.participants.count() == 2


@pytest.mark.parametrize("status", ["completed", "cancelled"])
def test_registration_is_refused_once_finished(status):
    competition = CompetitionFactory(status=status)
    with pytest.raises(ConflictError, match="registration is closed"):
        services.participant_register(
            competition_id=competition.pk, name="Late", llm_provider="baseline", llm_model="flat"
        )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "  "}, "name"),
        ({"llm_provider": "skynet"}, "llm_provider"),
        ({"llm_model": ""}, "llm_model"),
        ({"llm_config": ["not", "a", "dict"]}, "llm_config"),
    ],
)
def test_registration_refuses_bad_input(fields, field):
    competition = CompetitionFactory()
    arguments = {"name": "A", "llm_provider": "openai", "llm_model": "gpt-4o", **fields}
    with pytest.raises(DomainError) as caught:
        services.participant_register(competition_id=competition.pk, **arguments)
    assert caught.value.field == field
    assert not Participant.objects.exists()


def test_duplicate_names_are_refused_clearly():
    competition = CompetitionFactory()
    services.participant_register(competition_id=competition.pk, name="A", llm_provider="baseline", llm_model="flat")
    with pytest.raises(DomainError, match="already registered"):
        services.participant_register(competition_id=competition.pk, name="A", llm_provider="baseline", llm_model="flat")


def test_api_key_is_stored_encrypted_and_readable_by_the_service():
    competition = CompetitionFactory()
    participant = services.participant_register(
        competition_id=competition.pk, name="GPT", llm_provider="openai", llm_model="gpt-4o", api_key="sk-secret-123"
    )
    participant.refresh_from_db()
    assert participant.has_api_key
    assert "sk-secret-123" not in participant.api_key_encrypted
    assert participant.api_key() == "sk-secret-123"


def test_config_cannot_change_while_active_but_participant_can_be_disqualified():
    participant = ParticipantFactory(competition__status="active")
    with pytest.raises(ConflictError):
        services.participant_update(participant_id=participant.pk, llm_model="other")
    disqualified = services.participant_disqualify(participant_id=participant.pk, reason="cheating")
    assert disqualified.status == "disqualified" and disqualified.status_reason == "cheating"


def test_symbols_default_to_the_allowed_classes_in_the_dataset(replay_market):
    competition = services.competition_create(**_rules(symbols=[], dataset=replay_market))
    assert competition.symbols == ["BTC/USDT", "ETH/USDT"]


@pytest.mark.parametrize(
    ("symbols", "complaint"),
    [
        (["MOON/USDT"], "unknown symbol"),
        (["SOL/USDT"], "has no 1h candles"),  # in the catalogue, not in the test dataset
        (["EUR/USD"], "not in the allowed asset classes"),
        (["BTC/USDT", "BTC/USDT"], "must not repeat"),
    ],
)
def test_symbols_outside_the_data_source_are_refused(replay_market, symbols, complaint):
    with pytest.raises(DomainError, match=complaint) as caught:
        services.competition_create(**_rules(symbols=symbols, dataset=replay_market))
    assert caught.value.field == "symbols"
