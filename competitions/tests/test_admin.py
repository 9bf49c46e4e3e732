"""The admin drives competitions through the services and never reveals an API key."""

import logging
from datetime import timedelta

import pytest

from competitions.models import Competition, Participant
from competitions.services import participant_register
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory

pytestmark = pytest.mark.django_db

SECRET = "sk-ant-very-secret-key-0123456789"


def _action(admin_client, action, competitions):
    return admin_client.post(
        "/admin/competitions/competition/",
        {"action": action, "_selected_action": [c.pk for c in competitions]},
        follow=True,
    )


def test_start_pause_resume_stop_actions_call_the_services(admin_client):
    competition = ParticipantFactory().competition
    for action, status in [
        ("start_competitions", "active"),
        ("pause_competitions", "paused"),
        ("resume_competitions", "active"),
        ("stop_competitions", "completed"),
    ]:
        response = _action(admin_client, action, [competition])
        assert response.status_code == 200
        competition.refresh_from_db()
        assert competition.status == status


def test_an_illegal_action_shows_the_services_reason(admin_client):
    competition = CompetitionFactory()  # draft with nobody registered
    response = _action(admin_client, "pause_competitions", [competition])
    assert "cannot move a draft competition to paused" in response.content.decode()
    competition.refresh_from_db()
    assert competition.status == "draft"


def _competition_form(**overrides):
    data = {
        "name": "Admin cup", "description": "", "mode": "replay", "dataset": "binance-1h", "timeframe": "1h",
        "start_time_0": "2025-01-01", "start_time_1": "00:00:00",
        "end_time_0": "2025-01-08", "end_time_1": "00:00:00",
        "invocation_interval_minutes": "60", "initial_capital": "10000", "max_leverage": "10",
        "max_position_size_pct": "50", "margin_requirement_pct": "10", "maintenance_margin_pct": "5",
        "allowed_asset_classes": ["crypto"], "symbols": ["BTC/USDT"], "max_participants": "10",
        "fee_pct": "0.05", "spread_bps": "2", "slippage_bps": "1", "funding_rate_pct_8h": "0.01",
        "financing_rate_pct_annual": "3", "seed": "7",
        "participants-TOTAL_FORMS": "1", "participants-INITIAL_FORMS": "0",
        "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000",
        "participants-0-name": "Claude", "participants-0-llm_provider": "anthropic",
        "participants-0-llm_model": "claude-sonnet-4-5",
        "participants-0-api_key": SECRET, "participants-0-status": "active",
    }
    data.update(overrides)
    return data


def test_a_newcomer_creates_a_competition_with_a_participant_in_admin(admin_client):
    response = admin_client.post("/admin/competitions/competition/add/", _competition_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    competition = Competition.objects.get(name="Admin cup")
    participant = competition.participants.get()
    assert participant.api_key() == SECRET


def test_admin_form_shows_rule_errors_instead_of_saving(admin_client):
    response = admin_client.post(
        "/admin/competitions/competition/add/", _competition_form(max_leverage="50", name="Bad")
    )
    assert response.status_code == 200
    assert "max_leverage must be between 1 and 100/margin_requirement_pct = 10" in response.content.decode()
    assert not Competition.objects.filter(name="Bad").exists()


def test_api_key_never_appears_in_admin_pages_or_logs(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    competition = CompetitionFactory(end_time=START + timedelta(days=1))
    participant = participant_register(
        competition_id=competition.pk, name="GPT", llm_provider="openai", llm_model="gpt-4o", api_key=SECRET
    )
    pages = [
        "/admin/competitions/competition/",
        f"/admin/competitions/competition/{competition.pk}/change/",
        "/admin/competitions/participant/",
        f"/admin/competitions/participant/{participant.pk}/change/",
    ]
    for page in pages:
        body = admin_client.get(page).content.decode()
        assert SECRET not in body, page
        assert participant.api_key_encrypted not in body, page
    assert SECRET not in caplog.text
    assert participant.api_key_encrypted not in caplog.text


def test_admin_refuses_registration_into_a_full_competition(admin_client):
    competition = ParticipantFactory(competition__max_participants=1).competition
    response = admin_client.post(
        "/admin/competitions/participant/add/",
        {"competition": competition.pk, "name": "Second", "llm_provider": "baseline", "llm_model": "flat"},
    )
    assert response.status_code == 200
    assert "the competition is full" in response.content.decode()
    assert Participant.objects.filter(competition=competition).count() == 1
