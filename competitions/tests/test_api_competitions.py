"""Competition endpoints: create, read, list, change, delete and the lifecycle, with their errors."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

from datetime import timedelta
from decimal import Decimal

import pytest

from competitions.models import Competition
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory
from competitions.tests.test_api_fixtures import (  # noqa: F401 -- fixtures
    COMPETITION_BODY,
    anonymous,
    api_settings,
    client_with_key,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/competitions"


def test_create_returns_the_rules_with_decimals_as_exact_strings(client_with_key):
    response = client_with_key.post(URL, {**COMPETITION_BODY, "fee_pct": "0.045"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft"
    assert body["initial_capital"] == "10000"
    assert body["max_leverage"] == "10"
    assert body["fee_pct"] == "0.045"
    assert body["maintenance_margin_pct"] == "5"
    assert body["start_time"] == "2025-01-01T00:00:00Z"
    assert body["participant_count"] == 0
    stored = Competition.objects.get(pk=body["id"])
    assert stored.fee_pct == Decimal("0.045")
    assert stored.max_participants == 3


def test_create_reads_a_time_with_an_offset_as_the_same_instant_in_utc(client_with_key):
    body = {**COMPETITION_BODY, "start_time": "2025-01-01T02:00:00+02:00"}

    response = client_with_key.post(URL, body, format="json")

    assert response.status_code == 201
    assert response.json()["start_time"] == "2025-01-01T00:00:00Z"


def test_create_accepts_decimals_sent_as_json_numbers(client_with_key):
    response = client_with_key.post(URL, {**COMPETITION_BODY, "initial_capital": 2500.5}, format="json")

    assert response.status_code == 201
    assert response.json()["initial_capital"] == "2500.5"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end_time": "2024-12-31T00:00:00Z"}, "end_time"),
        ({"max_leverage": "11"}, "max_leverage"),  # 100 / 10% margin = 10x at most
        ({"max_leverage": "0.5"}, "max_leverage"),
        ({"maintenance_margin_pct": "10"}, "maintenance_margin_pct"),
        ({"allowed_asset_classes": ["crypto", "tulips"]}, "allowed_asset_classes"),
        ({"allowed_asset_classes": []}, "allowed_asset_classes"),
        ({"mode": "backtest"}, "mode"),
        ({"timeframe": "2h"}, "timeframe"),
        ({"initial_capital": "lots"}, "initial_capital"),
        ({"initial_capital": "-5"}, "initial_capital"),
        ({"initial_capital": "NaN"}, "initial_capital"),
        ({"initial_capital": "1.12345678901"}, "initial_capital"),  # 11 places > 10
        ({"max_participants": 0}, "max_participants"),
        ({"invocation_interval_minutes": "hourly"}, "invocation_interval_minutes"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"symbols": "BTC/USDT"}, "symbols"),
        ({"name": ""}, "name"),
        ({"colour": "red"}, "colour"),
        ({"status": "active"}, "status"),
    ],
)
def test_create_refuses_invalid_input_with_the_field_named(client_with_key, change, field):
    response = client_with_key.post(URL, {**COMPETITION_BODY, **change}, format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Competition.objects.count() == 0


def test_create_refuses_text_with_a_lone_surrogate_which_no_database_can_store(client_with_key):
    import json

    raw = json.dumps({**COMPETITION_BODY, "name": "PLACEHOLDER"}).replace("PLACEHOLDER", "bad \\ud800 text")

    response = client_with_key.generic("POST", URL, raw.encode(), content_type="application/json")

    assert response.status_code == 400
    assert "name" in response.json()


def test_create_refuses_a_missing_required_field(client_with_key):
    body = {k: v for k, v in COMPETITION_BODY.items() if k != "start_time"}

    response = client_with_key.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["start_time"] == ["This field is required."]


@pytest.mark.parametrize("payload", [b"{not json", b"[1, 2]", b'"a string"', b'{"name": NaN}', b"[" * 5000])
def test_create_answers_malformed_bodies_with_400(client_with_key, payload):
    response = client_with_key.generic("POST", URL, payload, content_type="application/json")

    assert response.status_code == 400


def test_create_refuses_a_form_encoded_body_with_415(client_with_key):
    response = client_with_key.post(URL, "name=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415


def test_get_returns_the_competition_with_its_participant_count(anonymous):
    competition = CompetitionFactory()
    ParticipantFactory.create_batch(2, competition=competition)

    response = anonymous.get(f"{URL}/{competition.pk}")

    assert response.status_code == 200
    assert response.json()["participant_count"] == 2
    assert response.json()["name"] == competition.name


@pytest.mark.parametrize("path", ["999999", "99999999999999999999999", "-1", "abc"])
def test_get_of_a_missing_competition_is_a_json_404(anonymous, path):
    response = anonymous.get(f"{URL}/{path}")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_list_is_newest_first_paginated_and_filtered_by_status(anonymous):
    older = CompetitionFactory(status="completed")
    newer = CompetitionFactory()
    newest = CompetitionFactory()

    page = anonymous.get(URL, {"limit": 2}).json()
    assert page["count"] == 3
    assert [c["id"] for c in page["results"]] == [newest.pk, newer.pk]
    assert page["next"].endswith("limit=2&offset=2")

    second = anonymous.get(URL, {"limit": 2, "offset": 2}).json()
    assert [c["id"] for c in second["results"]] == [older.pk]

    completed = anonymous.get(URL, {"status": "completed"}).json()
    assert [c["id"] for c in completed["results"]] == [older.pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "running"}, "status"),
        ({"limit": "ten"}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
    ],
)
def test_list_refuses_bad_query_parameters(anonymous, params, field):
    response = anonymous.get(URL, params)

    assert response.status_code == 400
    assert field in response.json()


def test_list_caps_the_page_size_at_500(anonymous):
    CompetitionFactory()

    response = anonymous.get(URL, {"limit": 100000})

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_list_reads_in_constant_queries_whatever_the_number_of_competitions(
    anonymous, django_assert_max_num_queries
):
    for _ in range(30):
        ParticipantFactory.create_batch(3, competition=CompetitionFactory())

    with django_assert_max_num_queries(2):  # count + page (participant counts annotated)
        response = anonymous.get(URL)

    assert len(response.json()["results"]) == 30


def test_patch_changes_the_rules_of_a_draft(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.patch(
        f"{URL}/{competition.pk}", {"max_leverage": "5", "description": "calmer"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["max_leverage"] == "5"
    competition.refresh_from_db()
    assert competition.max_leverage == Decimal(5)
    assert competition.description == "calmer"


def test_patch_of_a_rule_after_the_start_is_a_409_and_changes_nothing(client_with_key):
    competition = CompetitionFactory(status="active")

    response = client_with_key.patch(f"{URL}/{competition.pk}", {"max_leverage": "5"}, format="json")

    assert response.status_code == 409
    assert "draft" in response.json()["detail"]
    competition.refresh_from_db()
    assert competition.max_leverage == Decimal(10)


def test_patch_may_extend_a_running_competition(client_with_key):
    competition = CompetitionFactory(status="active")
    later = START + timedelta(days=30)

    response = client_with_key.patch(
        f"{URL}/{competition.pk}", {"end_time": later.isoformat()}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["end_time"] == "2025-01-31T00:00:00Z"


def test_patch_refuses_status_changes_which_go_through_the_actions(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.patch(f"{URL}/{competition.pk}", {"status": "active"}, format="json")

    assert response.status_code == 400
    assert "POST /competitions/{id}/start" in response.json()["status"][0]


def test_patch_of_an_end_before_the_start_is_a_400(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.patch(
        f"{URL}/{competition.pk}", {"end_time": "2024-01-01T00:00:00Z"}, format="json"
    )

    assert response.status_code == 400
    assert "end_time" in response.json()


def test_delete_removes_a_draft(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.delete(f"{URL}/{competition.pk}")

    assert response.status_code == 204
    assert not Competition.objects.filter(pk=competition.pk).exists()


def test_delete_of_a_started_competition_is_a_409(client_with_key):
    competition = CompetitionFactory(status="active")

    response = client_with_key.delete(f"{URL}/{competition.pk}")

    assert response.status_code == 409
    assert Competition.objects.filter(pk=competition.pk).exists()


def test_delete_of_a_missing_competition_is_a_404(client_with_key):
    assert client_with_key.delete(f"{URL}/424242").status_code == 404


def test_lifecycle_runs_start_pause_resume_stop(client_with_key):
    competition = CompetitionFactory()
    ParticipantFactory(competition=competition)

    statuses = []
    for action in ("start", "pause", "resume", "stop"):
        response = client_with_key.post(f"{URL}/{competition.pk}/{action}")
        assert response.status_code == 200, (action, response.json())
        statuses.append(response.json()["status"])

    assert statuses == ["active", "paused", "active", "completed"]
    competition.refresh_from_db()
    assert competition.started_at is not None and competition.completed_at is not None


def test_cancel_ends_a_draft_without_results(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.post(f"{URL}/{competition.pk}/cancel")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("draft", "pause"),
        ("draft", "resume"),
        ("active", "start"),
        ("active", "resume"),
        ("paused", "start"),
        ("completed", "start"),
        ("completed", "resume"),
        ("completed", "stop"),
        ("cancelled", "pause"),
    ],
)
def test_an_illegal_transition_is_a_409_and_leaves_the_status(client_with_key, status, action):
    competition = CompetitionFactory(status=status)
    ParticipantFactory(competition=competition)

    response = client_with_key.post(f"{URL}/{competition.pk}/{action}")

    assert response.status_code == 409
    assert response.json()["code"] in {"illegal_transition"}
    competition.refresh_from_db()
    assert competition.status == status


def test_start_without_participants_is_a_409(client_with_key):
    competition = CompetitionFactory()

    response = client_with_key.post(f"{URL}/{competition.pk}/start")

    assert response.status_code == 409
    assert response.json()["code"] == "no_participants"


def test_an_action_on_a_missing_competition_is_a_404(client_with_key):
    assert client_with_key.post(f"{URL}/424242/start").status_code == 404


def test_an_action_refuses_a_body_with_fields(client_with_key):
    competition = CompetitionFactory()
    ParticipantFactory(competition=competition)

    response = client_with_key.post(f"{URL}/{competition.pk}/start", {"force": True}, format="json")

    assert response.status_code == 400
    assert "force" in response.json()


@pytest.mark.parametrize("method", ["post", "patch", "delete"])
def test_a_write_to_a_path_with_no_endpoint_is_a_json_404_not_a_csrf_page(method):
    from rest_framework.test import APIClient

    from competitions.tests.test_api_fixtures import WRITE_KEY

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_X_API_KEY=WRITE_KEY)

    response = getattr(client, method)(
        f"{URL}/-6511453528", {"end_time": "2025-01-15T00:00:00Z"}, format="json"
    )

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
