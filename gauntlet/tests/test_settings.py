"""Settings come from the environment and refuse an unsafe production configuration."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from gauntlet.settings import (
    DEFAULT_API_KEY,
    DEFAULT_SECRET_KEY,
    check_production_safety,
    database_from_url,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("secret_key", "api_keys", "complaint"),
    [
        (DEFAULT_SECRET_KEY, ["real-key"], "SECRET_KEY"),
        ("", ["real-key"], "SECRET_KEY"),
        ("a-real-secret", [DEFAULT_API_KEY], "API_KEY"),
        ("a-real-secret", [], "API_KEY"),
    ],
)
def test_production_refuses_default_secrets(secret_key, api_keys, complaint):
    with pytest.raises(ImproperlyConfigured, match=complaint):
        check_production_safety(debug=False, secret_key=secret_key, api_keys=api_keys)


def test_production_accepts_real_secrets_and_debug_accepts_defaults():
    check_production_safety(debug=False, secret_key="a-real-secret", api_keys=["k1", "k2"])
    check_production_safety(debug=True, secret_key=DEFAULT_SECRET_KEY, api_keys=[DEFAULT_API_KEY])


def _django_check(**env):
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "API_KEY"}}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=120
    )


def test_the_process_will_not_start_with_debug_off_and_default_keys():
    result = _django_check(DEBUG="false")
    assert result.returncode != 0
    assert "Refusing to start with DEBUG off" in result.stderr


def test_the_process_starts_with_debug_off_and_real_keys():
    result = _django_check(DEBUG="false", SECRET_KEY="s3cr3t-for-test", API_KEY="key-a,key-b")
    assert result.returncode == 0, result.stderr


def test_database_url_is_parsed_into_postgres_settings():
    db = database_from_url("postgres://bob:p%40ss@db.example:6543/gauntlet?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "bob", "p@ss", "db.example", "6543", "gauntlet",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}


def test_unsupported_database_urls_are_refused():
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        database_from_url("mysql://root@localhost/db")


def test_time_is_utc():
    from django.conf import settings

    assert settings.USE_TZ is True and settings.TIME_ZONE == "UTC"
