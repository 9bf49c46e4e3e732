"""Every write needs a valid X-API-Key; reads are public unless API_READS_REQUIRE_KEY; writes are throttled.

The endpoint lists come from the URL map itself, so an endpoint added later is checked too.
"""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import re

import pytest
from django.urls import URLPattern, URLResolver

from competitions.models import Competition
from competitions.tests.factories import CompetitionFactory, ParticipantFactory
from competitions.tests.test_api_fixtures import (  # noqa: F401 -- fixtures
    OTHER_KEY,
    WRITE_KEY,
    anonymous,
    api_settings,
    client_with_key,
)
from gauntlet import api_urls
from gauntlet.api_auth import api_key_is_valid

pytestmark = pytest.mark.django_db

WRITE_METHODS = ("post", "put", "patch", "delete")


def _endpoints(methods, patterns=None, prefix=""):
    """(method, route) for every API view in the URL map (included ones too) answering one of these methods."""
    found = []
    for pattern in api_urls.urlpatterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found.extend(_endpoints(methods, pattern.url_patterns, prefix + str(pattern.pattern)))
            continue
        if not isinstance(pattern, URLPattern) or not hasattr(pattern.callback, "view_class"):
            continue
        view = pattern.callback.view_class
        for method in methods:
            if hasattr(view, method):
                found.append((method, prefix + str(pattern.pattern)))
    return found


WRITES = _endpoints(WRITE_METHODS)
READS = [(m, r) for m, r in _endpoints(("get",)) if r != "health"]


def _path(route, competition, participant):
    def fill(match):
        name = match.group(1)
        return str(participant.pk if name == "id" and route.startswith("participants/") else competition.pk)

    route = route.replace("<str:symbol>", "BTC-USDT")
    return "/api/v1/" + re.sub(r"<\w+:(\w+)>", fill, route)


@pytest.fixture
def objects():
    competition = CompetitionFactory()
    return competition, ParticipantFactory(competition=competition)


def test_the_read_list_includes_market_data():
    assert ("get", "market-data/<str:symbol>/candles") in READS


def test_the_write_list_covers_the_known_writes():
    routes = {(m, r) for m, r in WRITES}
    assert ("post", "competitions") in routes
    assert ("patch", "participants/<id:id>") in routes
    assert ("post", "participants/competitions/<id:competition_id>/participants") in routes
    assert len(routes) >= 9


@pytest.mark.parametrize(("method", "route"), WRITES)
def test_a_write_without_a_key_is_a_401_and_changes_nothing(anonymous, objects, method, route):
    competition, participant = objects

    response = getattr(anonymous, method)(_path(route, competition, participant), {}, format="json")

    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "X-API-Key"
    assert Competition.objects.get(pk=competition.pk).status == "draft"


@pytest.mark.parametrize(("method", "route"), WRITES)
def test_a_write_with_a_wrong_key_is_a_403(anonymous, objects, method, route):
    competition, participant = objects
    anonymous.credentials(HTTP_X_API_KEY="not-the-key")

    response = getattr(anonymous, method)(_path(route, competition, participant), {}, format="json")

    assert response.status_code == 403
    assert "valid API key" in response.json()["detail"]
    assert Competition.objects.filter(pk=competition.pk).exists()


@pytest.mark.parametrize(("method", "route"), READS)
def test_reads_are_public_by_default(anonymous, objects, method, route):
    competition, participant = objects

    response = anonymous.get(_path(route, competition, participant))

    assert response.status_code not in {401, 403}


@pytest.mark.parametrize(("method", "route"), READS)
def test_reads_need_a_key_when_the_setting_says_so(anonymous, objects, api_settings, method, route):
    api_settings.API_READS_REQUIRE_KEY = True
    competition, participant = objects

    refused = anonymous.get(_path(route, competition, participant))
    anonymous.credentials(HTTP_X_API_KEY=OTHER_KEY)
    allowed = anonymous.get(_path(route, competition, participant))

    assert refused.status_code == 401
    assert allowed.status_code not in {401, 403}


def test_any_configured_key_authorises_a_write(anonymous, objects):
    competition, _ = objects
    anonymous.credentials(HTTP_X_API_KEY=OTHER_KEY)

    response = anonymous.patch(f"/api/v1/competitions/{competition.pk}", {"description": "x"}, format="json")

    assert response.status_code == 200


def test_a_key_is_valid_only_when_equal_to_a_configured_one():
    assert api_key_is_valid(WRITE_KEY)
    assert api_key_is_valid(OTHER_KEY)
    assert not api_key_is_valid(WRITE_KEY[:-1])
    assert not api_key_is_valid(WRITE_KEY + "x")
    assert not api_key_is_valid("")


def test_an_empty_key_header_is_refused(anonymous):
    anonymous.credentials(HTTP_X_API_KEY="")

    response = anonymous.post("/api/v1/competitions", {}, format="json")

    assert response.status_code == 403


def test_writes_beyond_the_rate_are_throttled_per_key(client_with_key, anonymous, api_settings):
    api_settings.REST_FRAMEWORK = {
        **api_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "3/min"},
    }
    competition = CompetitionFactory()
    url = f"/api/v1/competitions/{competition.pk}"

    codes = [client_with_key.patch(url, {"description": str(i)}, format="json").status_code for i in range(4)]
    other_key = anonymous
    other_key.credentials(HTTP_X_API_KEY=OTHER_KEY)
    other = other_key.patch(url, {"description": "other key"}, format="json")

    assert codes == [200, 200, 200, 429]
    assert other.status_code == 200
    # Reads are never throttled.
    assert all(client_with_key.get(url).status_code == 200 for _ in range(5))


def test_the_api_needs_no_csrf_token(objects):
    from rest_framework.test import APIClient

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_X_API_KEY=WRITE_KEY)
    competition, _ = objects

    response = client.patch(f"/api/v1/competitions/{competition.pk}", {"description": "x"}, format="json")

    assert response.status_code == 200
