"""GET /api/v1/health: database, cache, broker and worker heartbeat, 200 or 503."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache

from competitions.tests.test_api_fixtures import anonymous, api_settings  # noqa: F401
from gauntlet.api import WORKER_HEARTBEAT_KEY

pytestmark = pytest.mark.django_db

URL = "/api/v1/health"


def test_in_process_runner_is_healthy_without_broker_or_worker(anonymous, settings):
    settings.ROUND_RUNNER = "inprocess"
    settings.CELERY_BROKER_URL = ""
    settings.REDIS_URL = ""

    response = anonymous.get(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"
    assert body["checks"]["broker"] == {"status": "not configured", "runner": "inprocess"}
    assert body["checks"]["worker"]["status"] == "n/a"


def test_an_unreachable_broker_is_a_503(anonymous, settings):
    settings.ROUND_RUNNER = "celery"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    cache.set(WORKER_HEARTBEAT_KEY, datetime.now(UTC).isoformat())

    response = anonymous.get(URL)

    assert response.status_code == 503
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["broker"]["status"] == "down"


def test_celery_runner_without_a_heartbeat_is_a_503(anonymous, settings, monkeypatch):
    settings.ROUND_RUNNER = "celery"
    settings.CELERY_BROKER_URL = ""
    settings.REDIS_URL = ""

    response = anonymous.get(URL)

    assert response.status_code == 503
    assert response.json()["checks"]["worker"]["status"] == "down"


@pytest.mark.parametrize(("age_seconds", "expected"), [(40, "ok"), (179, "ok"), (181, "down")])
def test_the_worker_is_down_when_its_heartbeat_is_older_than_three_minutes(
    anonymous, settings, age_seconds, expected
):
    settings.ROUND_RUNNER = "celery"
    settings.CELERY_BROKER_URL = ""
    settings.REDIS_URL = ""
    cache.set(WORKER_HEARTBEAT_KEY, (datetime.now(UTC) - timedelta(seconds=age_seconds)).timestamp())

    worker = anonymous.get(URL).json()["checks"]["worker"]

    assert worker["status"] == expected
    assert age_seconds - 1 <= worker["age_seconds"] <= age_seconds + 5


def test_a_heartbeat_may_be_an_aware_datetime_or_iso_text(anonymous, settings):
    settings.ROUND_RUNNER = "celery"
    settings.CELERY_BROKER_URL = ""
    beat = datetime.now(UTC) - timedelta(seconds=30)

    cache.set(WORKER_HEARTBEAT_KEY, beat)
    as_datetime = anonymous.get(URL).json()["checks"]["worker"]
    cache.set(WORKER_HEARTBEAT_KEY, beat.isoformat())
    as_text = anonymous.get(URL).json()["checks"]["worker"]

    assert as_datetime["status"] == as_text["status"] == "ok"
    assert as_text["last_seen"].endswith("Z")


def test_a_broken_cache_is_reported_down(anonymous, settings, monkeypatch):
    settings.ROUND_RUNNER = "inprocess"
    settings.CELERY_BROKER_URL = ""

    def broken(*args, **kwargs):
        raise ConnectionError("cache gone")

    monkeypatch.setattr("gauntlet.api.cache.set", broken)

    response = anonymous.get(URL)

    assert response.status_code == 503
    assert response.json()["checks"]["cache"] == {"status": "down", "detail": "ConnectionError"}


def test_health_stays_public_when_reads_need_a_key(anonymous, api_settings):
    api_settings.API_READS_REQUIRE_KEY = True
    api_settings.ROUND_RUNNER = "inprocess"
    api_settings.CELERY_BROKER_URL = ""

    assert anonymous.get(URL).status_code == 200


@pytest.mark.skipif("not __import__('os').environ.get('REDIS_URL')", reason="needs a Redis server")
def test_a_live_redis_broker_answers(anonymous, settings):
    import os

    settings.ROUND_RUNNER = "celery"
    settings.CELERY_BROKER_URL = os.environ["REDIS_URL"]
    cache.set(WORKER_HEARTBEAT_KEY, datetime.now(UTC).timestamp())

    response = anonymous.get(URL)

    assert response.json()["checks"]["broker"]["status"] == "ok"
    assert response.status_code == 200
