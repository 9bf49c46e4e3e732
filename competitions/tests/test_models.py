"""Every invariant of a competition's rules is enforced by the database itself."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from competitions.models import Competition, Participant, Round
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory

pytestmark = pytest.mark.django_db


def _rejected(**fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        CompetitionFactory(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"end_time": START},  # end must be after start
        {"end_time": START - timedelta(hours=1)},
        {"invocation_interval_minutes": 0},
        {"initial_capital": Decimal("0")},
        {"initial_capital": Decimal("-1")},
        {"margin_requirement_pct": Decimal("0"), "maintenance_margin_pct": Decimal("0")},
        {"margin_requirement_pct": Decimal("101")},
        {"maintenance_margin_pct": Decimal("10")},  # equal to the initial margin
        {"maintenance_margin_pct": Decimal("12")},  # above the initial margin
        {"maintenance_margin_pct": Decimal("0")},
        {"max_leverage": Decimal("0.5")},
        {"max_leverage": Decimal("10.01")},  # 100 / 10% margin = 10 at most
        {"max_leverage": Decimal("20"), "margin_requirement_pct": Decimal("10")},
        {"max_position_size_pct": Decimal("0")},
        {"max_position_size_pct": Decimal("100.5")},
        {"max_participants": 0},
        {"fee_pct": Decimal("-0.01")},
        {"spread_bps": Decimal("-1")},
        {"slippage_bps": Decimal("-1")},
        {"funding_rate_pct_8h": Decimal("7")},
        {"financing_rate_pct_annual": Decimal("150")},
        {"status": "running"},
        {"mode": "paper"},
        {"timeframe": "7m"},
        {"mode": "replay", "dataset": ""},
    ],
)
def test_database_rejects_invalid_rules(fields):
    _rejected(**fields)


@pytest.mark.parametrize(
    "fields",
    [
        {"max_leverage": Decimal("10"), "margin_requirement_pct": Decimal("10")},  # exactly at the cap
        {"max_leverage": Decimal("1"), "margin_requirement_pct": Decimal("100"), "maintenance_margin_pct": Decimal("50")},
        {"max_leverage": Decimal("50"), "margin_requirement_pct": Decimal("2"), "maintenance_margin_pct": Decimal("1")},
        {"funding_rate_pct_8h": Decimal("-0.01")},
        {"mode": "live", "dataset": ""},
    ],
)
def test_database_accepts_rules_at_their_limits(fields):
    competition = CompetitionFactory(**fields)
    assert Competition.objects.filter(pk=competition.pk).exists()


def test_participant_names_are_unique_within_a_competition_only():
    first = ParticipantFactory(name="Claude")
    ParticipantFactory(name="Claude")  # another competition: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        ParticipantFactory(name="Claude", competition=first.competition)


@pytest.mark.parametrize("fields", [{"status": "winning"}, {"llm_provider": "skynet"}, {"name": ""}])
def test_database_rejects_invalid_participants(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        ParticipantFactory(**fields)


def test_a_round_number_is_claimed_once_per_competition():
    competition = CompetitionFactory()
    Round.objects.create(competition=competition, number=1, market_time=START)
    with pytest.raises(IntegrityError), transaction.atomic():
        Round.objects.create(competition=competition, number=1, market_time=START)
    assert Round.objects.filter(competition=competition).count() == 1


def test_participant_repr_never_shows_the_key():
    participant = ParticipantFactory(api_key_encrypted="token-abc")
    assert "token" not in repr(participant) and "token" not in str(participant)
    assert isinstance(participant, Participant)
