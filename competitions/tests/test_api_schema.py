"""The OpenAPI schema documents every endpoint of the issue with examples; Swagger UI is served
from local static files, never a CDN."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

import json
import re

import pytest
from django.contrib.staticfiles import finders
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from competitions.tests.test_api_fixtures import anonymous, api_settings  # noqa: F401

PUBLISHED_OPERATIONS = [
    ("post", "/api/v1/competitions"),
    ("get", "/api/v1/competitions"),
    ("get", "/api/v1/competitions/{id}"),
    ("patch", "/api/v1/competitions/{id}"),
    ("delete", "/api/v1/competitions/{id}"),
    ("post", "/api/v1/competitions/{id}/start"),
    ("post", "/api/v1/competitions/{id}/pause"),
    ("post", "/api/v1/competitions/{id}/resume"),
    ("post", "/api/v1/competitions/{id}/stop"),
    ("get", "/api/v1/competitions/{id}/history"),
    ("post", "/api/v1/competitions/{id}/rounds"),
    ("get", "/api/v1/competitions/{id}/rounds"),
    ("get", "/api/v1/competitions/{id}/export"),
    ("post", "/api/v1/participants/competitions/{competition_id}/participants"),
    ("get", "/api/v1/participants/competitions/{competition_id}/all"),
    ("get", "/api/v1/participants/{id}"),
    ("patch", "/api/v1/participants/{id}"),
    ("get", "/api/v1/participants/{id}/portfolio"),
    ("get", "/api/v1/participants/{id}/positions"),
    ("get", "/api/v1/participants/{id}/trades"),
    ("get", "/api/v1/participants/{id}/performance"),
    ("get", "/api/v1/participants/{id}/history"),
    ("get", "/api/v1/participants/{id}/invocations"),
    ("get", "/api/v1/leaderboard/competitions/{competition_id}/leaderboard"),
    ("get", "/api/v1/health"),
]


@pytest.fixture(scope="module")
def openapi():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_is_valid_openapi_3(openapi):
    validate_schema(openapi)
    assert openapi["openapi"].startswith("3.")


@pytest.mark.parametrize(("method", "path"), PUBLISHED_OPERATIONS)
def test_every_published_operation_is_documented_with_a_response_example(openapi, method, path):
    operation = openapi["paths"][path][method]

    success = [code for code in operation["responses"] if code.startswith("2")]
    assert success, "no success response documented"
    examples = [
        example
        for code in success
        for content in operation["responses"][code].get("content", {}).values()
        for example in content.get("examples", {}).values()
    ]
    assert examples or success == ["204"], "no response example"
    if method in {"post", "patch", "put"}:
        # every write documents its refusals, and asks for the key
        assert {"401", "403", "429"} <= set(operation["responses"])
        assert {"ApiKeyAuth": []} in operation["security"] and {} not in operation["security"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/competitions"),
        ("post", "/api/v1/participants/competitions/{competition_id}/participants"),
    ],
)
def test_creations_document_a_request_example(openapi, method, path):
    body = openapi["paths"][path][method]["requestBody"]["content"]["application/json"]

    assert body["examples"]


def test_the_api_key_is_write_only_in_the_schema(openapi):
    schemas = openapi["components"]["schemas"]

    assert "api_key" in schemas["ParticipantRegisterRequest"]["properties"]
    assert "api_key" not in schemas["Participant"]["properties"]
    assert "api_key" not in schemas["ParticipantRegistered"]["properties"]
    assert "has_api_key" in schemas["Participant"]["properties"]


def test_decimals_are_strings_in_the_schema(openapi):
    competition = openapi["components"]["schemas"]["Competition"]["properties"]

    assert competition["initial_capital"]["type"] == "string"
    assert competition["initial_capital"]["format"] == "decimal"


@pytest.mark.django_db
def test_the_schema_is_served_as_json_and_yaml(anonymous):
    as_json = anonymous.get("/api/schema?format=json")
    as_yaml = anonymous.get("/api/schema")

    assert as_json.status_code == as_yaml.status_code == 200
    assert "/api/v1/competitions" in json.loads(as_json.content)["paths"]
    assert b"openapi: 3" in as_yaml.content


@pytest.mark.django_db
def test_swagger_ui_loads_only_local_static_assets(anonymous):
    page = anonymous.get("/api/docs").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    assert not [url for url in assets if re.match(r"(https?:)?//", url)], assets
    for url in assets:
        assert url.startswith("/static/"), url
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a static file"
    # no address of another host anywhere in the page (the inline script included); a bare
    # "cdn" may turn up by chance in the page's random CSRF token, so hosts are what is checked
    assert re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page.lower()) == []
    assert not re.search(r"jsdelivr|unpkg|cdnjs|//cdn\.", page.lower())


def test_the_api_views_generate_their_schema_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS

    GENERATOR_STATS.reset()
    GENERATOR_STATS.enable_trace_lineno()
    SchemaGenerator().get_schema(request=None, public=True)
    messages = list(GENERATOR_STATS._warn_cache) + list(GENERATOR_STATS._error_cache)
    GENERATOR_STATS.reset()

    ours = [m for m in messages if "competitions/" in m or "gauntlet/" in m]
    assert ours == []
