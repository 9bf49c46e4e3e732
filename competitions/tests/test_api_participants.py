"""Participant endpoints: registration (key write-only, config warnings), list, detail, changes."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import pytest

from competitions.models import Participant
from competitions.tests.factories import CompetitionFactory, ParticipantFactory
from competitions.tests.test_api_fixtures import anonymous, api_settings, client_with_key  # noqa: F401

pytestmark = pytest.mark.django_db


def register_url(competition_id):
    return f"/api/v1/participants/competitions/{competition_id}/participants"


def test_registration_stores_the_key_encrypted_and_returns_only_has_api_key(client_with_key):
    competition = CompetitionFactory()
    body = {
        "name": "Claude",
        "llm_provider": "anthropic",
        "llm_model": "claude-haiku-4-5",
        "llm_config": {"temperature": 0.2},
        "api_key": "sk-ant-secret-123",
    }

    response = client_with_key.post(register_url(competition.pk), body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["has_api_key"] is True
    assert "api_key" not in data
    assert "sk-ant-secret-123" not in response.content.decode()
    assert data["llm_config"] == {"temperature": 0.2}
    assert data["competition"] == competition.pk
    participant = Participant.objects.get(pk=data["id"])
    assert participant.api_key() == "sk-ant-secret-123"
    assert "sk-ant-secret-123" not in participant.api_key_encrypted


def test_registration_warns_about_what_would_make_calls_fail(client_with_key, settings):
    settings.ANTHROPIC_API_KEY = ""
    competition = CompetitionFactory()
    body = {"name": "Keyless", "llm_provider": "anthropic", "llm_model": "claude-haiku-4-5"}

    response = client_with_key.post(register_url(competition.pk), body, format="json")

    assert response.status_code == 201
    warnings = response.json()["warnings"]
    assert any("no API key for anthropic" in w for w in warnings)


def test_a_known_baseline_registers_without_warnings(client_with_key):
    competition = CompetitionFactory()
    body = {"name": "Momentum", "llm_provider": "baseline", "llm_model": "momentum"}

    response = client_with_key.post(register_url(competition.pk), body, format="json")

    assert response.status_code == 201
    assert response.json()["warnings"] == []
    assert response.json()["has_api_key"] is False


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"llm_provider": "skynet"}, "llm_provider"),
        ({"llm_model": ""}, "llm_model"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"llm_config": ["not", "an", "object"]}, "llm_config"),
        ({"llm_config": {"api_key": "sk-in-the-wrong-place"}}, "llm_config"),
        ({"llm_config": {"headers": {"Authorization": "Bearer x"}}}, "llm_config"),
        ({"api_key": 12345678}, None),  # a number is coerced to a string key: allowed
        ({"has_api_key": True}, "has_api_key"),
        ({"status": "active"}, "status"),
        ({"temperature": 0.5}, "temperature"),
    ],
)
def test_registration_refuses_invalid_input_with_the_field_named(client_with_key, change, field):
    competition = CompetitionFactory()
    body = {"name": "Agent", "llm_provider": "baseline", "llm_model": "flat", **change}

    response = client_with_key.post(register_url(competition.pk), body, format="json")

    if field is None:
        assert response.status_code == 201
        return
    assert response.status_code == 400, response.json()
    assert field in response.json()
    assert not Participant.objects.exists()


def test_a_duplicate_name_is_a_400_on_the_name(client_with_key):
    competition = CompetitionFactory()
    ParticipantFactory(competition=competition, name="Twin")

    response = client_with_key.post(
        register_url(competition.pk),
        {"name": "Twin", "llm_provider": "baseline", "llm_model": "flat"},
        format="json",
    )

    assert response.status_code == 400
    assert "already registered" in response.json()["name"][0]


def test_registration_in_a_full_competition_is_a_409(client_with_key):
    competition = CompetitionFactory(max_participants=1)
    ParticipantFactory(competition=competition)

    response = client_with_key.post(
        register_url(competition.pk),
        {"name": "Late", "llm_provider": "baseline", "llm_model": "flat"},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["code"] == "competition_full"


def test_registration_in_a_finished_competition_is_a_409(client_with_key):
    competition = CompetitionFactory(status="completed")

    response = client_with_key.post(
        register_url(competition.pk),
        {"name": "Late", "llm_provider": "baseline", "llm_model": "flat"},
        format="json",
    )

    assert response.status_code == 409


def test_registration_in_a_missing_competition_is_a_404(client_with_key):
    response = client_with_key.post(
        register_url(424242), {"name": "A", "llm_provider": "baseline", "llm_model": "flat"}, format="json"
    )

    assert response.status_code == 404


def test_list_returns_every_participant_in_registration_order_in_constant_queries(
    anonymous, django_assert_max_num_queries
):
    competition = CompetitionFactory(max_participants=100)
    participants = ParticipantFactory.create_batch(40, competition=competition)
    ParticipantFactory()  # another competition's

    with django_assert_max_num_queries(3):  # competition exists + count + page
        page = anonymous.get(f"/api/v1/participants/competitions/{competition.pk}/all", {"limit": 100}).json()

    assert page["count"] == 40
    assert [p["id"] for p in page["results"]] == [p.pk for p in participants]


def test_list_of_a_missing_competition_is_a_404(anonymous):
    assert anonymous.get("/api/v1/participants/competitions/424242/all").status_code == 404


def test_detail_shows_the_participant_without_its_key(anonymous):
    participant = ParticipantFactory(llm_provider="openai", llm_model="gpt-4o")
    participant.api_key_encrypted = "gAAAA-token"
    participant.save()

    response = anonymous.get(f"/api/v1/participants/{participant.pk}")

    assert response.status_code == 200
    assert response.json()["has_api_key"] is True
    assert "gAAAA-token" not in response.content.decode()
    assert "api_key" not in response.json()


def test_detail_of_a_missing_participant_is_a_404(anonymous):
    response = anonymous.get("/api/v1/participants/424242")

    assert response.status_code == 404
    assert response.json()["detail"] == "participant not found"


def test_patch_disqualifies_with_a_reason(client_with_key):
    participant = ParticipantFactory(competition=CompetitionFactory(status="active"))

    response = client_with_key.patch(
        f"/api/v1/participants/{participant.pk}",
        {"status": "disqualified", "status_reason": "spam"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["status"] == "disqualified"
    assert response.json()["status_reason"] == "spam"


def test_patch_changes_config_and_key_while_the_competition_is_a_draft(client_with_key):
    participant = ParticipantFactory(llm_provider="openai", llm_model="gpt-4o")

    response = client_with_key.patch(
        f"/api/v1/participants/{participant.pk}",
        {"llm_model": "gpt-4.1", "llm_config": {"temperature": 0}, "api_key": "sk-new"},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["llm_model"] == "gpt-4.1"
    assert response.json()["has_api_key"] is True
    participant.refresh_from_db()
    assert participant.api_key() == "sk-new"


def test_patch_with_an_empty_key_removes_the_stored_one(client_with_key):
    participant = ParticipantFactory()
    client_with_key.patch(f"/api/v1/participants/{participant.pk}", {"api_key": "sk-x"}, format="json")

    response = client_with_key.patch(f"/api/v1/participants/{participant.pk}", {"api_key": ""}, format="json")

    assert response.json()["has_api_key"] is False


def test_patch_of_config_during_a_running_competition_is_a_409_and_changes_nothing(client_with_key):
    participant = ParticipantFactory(competition=CompetitionFactory(status="active"), llm_model="flat")

    response = client_with_key.patch(
        f"/api/v1/participants/{participant.pk}",
        {"llm_model": "momentum", "status": "disqualified"},
        format="json",
    )

    assert response.status_code == 409
    participant.refresh_from_db()
    assert participant.llm_model == "flat"
    assert participant.status == "active"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "active"}, "status"),
        ({"status": "liquidated"}, "status"),
        ({"name": "Renamed"}, "name"),
        ({"status_reason": "why"}, "status_reason"),
        ({}, "non_field_errors"),
        ({"llm_config": {"password": "hunter2"}}, "llm_config"),
    ],
)
def test_patch_refuses_what_cannot_change(client_with_key, body, field):
    participant = ParticipantFactory()

    response = client_with_key.patch(f"/api/v1/participants/{participant.pk}", body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_patch_of_a_missing_participant_is_a_404(client_with_key):
    response = client_with_key.patch("/api/v1/participants/424242", {"status": "disqualified"}, format="json")

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # 33 levels of llm_config: deeper than the 32 allowed, shallower than the JSON parser's limit
        (
            '{"name":"a","llm_provider":"baseline","llm_model":"flat","llm_config":'
            + '{"a":' * 33
            + "1"
            + "}" * 34,
            {"llm_config": ["nested deeper than 32 levels"]},
        ),
        (
            '{"name":"a","llm_provider":"baseline","llm_model":"flat","llm_config":'
            + '{"a":' * 980
            + "1"
            + "}" * 981,
            {"llm_config": ["nested deeper than 32 levels"]},
        ),
        ('{"name":"a","llm_provider":"baseline","llm_model":"flat","\\ud800":1}', None),
        ('{"name":"a","llm_provider":"\\udfff","llm_model":"flat"}', {"llm_provider": None}),
    ],
    ids=["33-levels", "980-levels", "surrogate-field-name", "surrogate-value"],
)
def test_registration_answers_pathological_json_with_a_400(client_with_key, body, expected):
    competition = CompetitionFactory()

    response = client_with_key.generic(
        "POST", register_url(competition.pk), body.encode(), content_type="application/json"
    )

    assert response.status_code == 400
    for field, message in (expected or {}).items():
        assert field in response.json()
        if message:
            assert response.json()[field] == message
    assert not Participant.objects.exists()


def test_participants_show_their_training_cutoff_and_its_source(client_with_key):
    competition = CompetitionFactory()
    known = ParticipantFactory(competition=competition, llm_provider="openai", llm_model="gpt-4o-2024-08-06")
    overridden = ParticipantFactory(
        competition=competition, llm_provider="deepseek", llm_model="deepseek-chat",
        llm_config={"training_cutoff": "2024-07"},
    )
    baseline = ParticipantFactory(competition=competition)

    rows = {
        row["id"]: row
        for row in client_with_key.get(f"/api/v1/participants/competitions/{competition.pk}/all").json()[
            "results"
        ]
    }

    assert rows[known.pk]["training_cutoff"] == "2023-10-01"
    assert rows[known.pk]["training_cutoff_source"] == "https://developers.openai.com/api/docs/models/gpt-4o"
    assert rows[known.pk]["training_cutoff_verified"] is True
    assert rows[overridden.pk]["training_cutoff"] == "2024-07"
    assert rows[overridden.pk]["training_cutoff_source"] == "llm_config.training_cutoff"
    assert rows[overridden.pk]["training_cutoff_verified"] is False
    assert rows[baseline.pk]["training_cutoff"] is None
