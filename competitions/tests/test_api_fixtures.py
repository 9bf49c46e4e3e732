"""Fixtures shared by the API tests (imported by the test_api_* modules)."""

import importlib

import pytest
from django.apps import apps
from django.core.cache import cache
from rest_framework.test import APIClient

WRITE_KEY = "test-write-key-1"
OTHER_KEY = "test-write-key-2"

COMPETITION_BODY = {
    "name": "BTC/ETH January replay",
    "description": "Hourly decisions on two coins",
    "start_time": "2025-01-01T00:00:00Z",
    "end_time": "2025-01-08T00:00:00Z",
    "invocation_interval_minutes": 60,
    "initial_capital": "10000",
    "max_leverage": "10",
    "max_position_size_pct": "50",
    "allowed_asset_classes": ["crypto"],
    "margin_requirement_pct": "10",
    "maintenance_margin_pct": "5",
    "max_participants": 3,
    "market_hours_only": False,
    "symbols": ["BTC/USDT", "ETH/USDT"],
}


@pytest.fixture(autouse=True)
def api_settings(settings):
    settings.API_KEYS = [WRITE_KEY, OTHER_KEY]
    settings.API_READS_REQUIRE_KEY = False
    # Throttle buckets live in the cache: every test starts with a full allowance.
    cache.clear()
    yield settings
    cache.clear()


@pytest.fixture
def anonymous():
    return APIClient()


@pytest.fixture
def client_with_key():
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=WRITE_KEY)
    return client


@pytest.fixture
def instruments():
    """The instrument catalogue the marketdata migration seeds: a transactional test's
    flush empties it, and competitions check their symbols against it."""
    importlib.import_module("marketdata.migrations.0002_seed_instruments").seed(apps, None)
