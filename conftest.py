"""Project-wide pytest fixtures."""

import importlib

import pytest

DB_FIXTURES = {"db", "transactional_db", "live_server", "admin_client", "admin_user", "django_db_reset_sequences"}


@pytest.fixture
def postgres_only(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DATABASE_URL=postgres://...)")


@pytest.fixture(autouse=True)
def instrument_catalogue(request):
    """The instrument catalogue a migration seeds is data every test may rely on; a
    transactional test's flush empties it, so it is put back before each DB test."""
    if request.node.get_closest_marker("django_db") or DB_FIXTURES & set(request.fixturenames):
        from django.apps import apps

        from marketdata.models import Instrument

        if not Instrument.objects.exists():
            importlib.import_module("marketdata.migrations.0002_seed_instruments").seed(apps, None)
    yield


@pytest.fixture(autouse=True)
def provider_limits_empty(settings):
    """Provider limit buckets and Retry-After pauses (agents.limits) are process-wide: each
    test starts with full buckets, whatever the previous one spent or was told. They are this
    process's own (a test that means Redis says so), so a pause sits on the clock tests move."""
    from agents.limits import limits_reset

    settings.PROVIDER_LIMITS_REDIS_URL = ""
    limits_reset()
    yield
