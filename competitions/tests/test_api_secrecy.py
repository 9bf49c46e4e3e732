"""A participant's provider key never leaves the server: not in any response, list, export or the schema."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import re

import pytest
from django.urls import URLPattern

from competitions.models import Participant
from competitions.tests.test_api_fixtures import (  # noqa: F401 -- fixtures
    anonymous,
    api_settings,
    client_with_key,
    instruments,
)
from competitions.tests.test_api_rounds import (  # noqa: F401 -- in_process_runner is a fixture
    OPEN_BTC,
    create_competition,
    in_process_runner,
    run_round,
)
from gauntlet import api_urls

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "sk-live-THIS-MUST-NEVER-LEAK-42"


def read_routes():
    return [
        str(p.pattern)
        for p in api_urls.urlpatterns
        if isinstance(p, URLPattern)
        and hasattr(p.callback, "view_class")
        and hasattr(p.callback.view_class, "get")
    ]


def test_no_response_carries_the_key_or_its_ciphertext(client_with_key, anonymous, replay_market):
    competition = create_competition(client_with_key, replay_market)
    registered = client_with_key.post(
        f"/api/v1/participants/competitions/{competition}/participants",
        {
            "name": "Keyed",
            "llm_provider": "scripted",
            "llm_model": "script",
            "llm_config": {"decisions": [OPEN_BTC]},
            "api_key": SECRET,
        },
        format="json",
    )
    participant = registered.json()["id"]
    updated = client_with_key.patch(
        f"/api/v1/participants/{participant}", {"api_key": SECRET + "-2"}, format="json"
    )
    client_with_key.post(f"/api/v1/competitions/{competition}/start")
    run_round(client_with_key, competition)
    ciphertext = Participant.objects.get(pk=participant).api_key_encrypted

    bodies = {"register": registered.content.decode(), "update": updated.content.decode()}
    for route in read_routes():
        url = "/api/v1/" + re.sub(
            r"<\w+:(\w+)>",
            lambda m, route=route: str(
                participant if route.startswith("participants/") and m.group(1) == "id" else competition
            ),
            route,
        )
        response = anonymous.get(url)
        assert response.status_code == 200, url
        bodies[url] = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
    for what in ("trades", "equity", "invocations"):
        for fmt in ("csv", "json"):
            response = anonymous.get(
                f"/api/v1/competitions/{competition}/export", {"what": what, "format": fmt}
            )
            bodies[f"export {what} {fmt}"] = b"".join(response.streaming_content).decode()
    bodies["schema"] = anonymous.get("/api/schema").content.decode()

    assert registered.json()["has_api_key"] is True
    assert len(bodies) > 20
    for name, body in bodies.items():
        assert SECRET not in body, name
        assert ciphertext not in body, name
        assert '"api_key":' not in body, name
