"""Gauntlet settings: one module, every knob read from the environment.

With nothing set it runs embedded: SQLite, the local-memory cache, DEBUG on and the
in-process round runner. DATABASE_URL and REDIS_URL switch to PostgreSQL, Redis and
Celery. `.env.example` documents every variable.
"""

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Development-only defaults; check_production_safety() refuses them with DEBUG off.
DEFAULT_SECRET_KEY = "gauntlet-insecure-development-key-change-me"
DEFAULT_API_KEY = "gauntlet-dev-key"


def env_str(name: str, default: str = "") -> str:
    """The variable's value, or the default when it is unset or empty (as in .env files)."""
    value = os.environ.get(name, "").strip()
    return value or default


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict:
    """Turn postgres://user:pass@host:port/name?sslmode=... into a DATABASES entry."""
    parsed = urlparse(url)
    if parsed.scheme not in {"postgres", "postgresql", "sqlite"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parsed.scheme!r} is not supported (use postgres:// or sqlite:///)"
        )
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path[1:] or ":memory:"}
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")),
        "USER": unquote(parsed.username or ""),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "",
        "PORT": str(parsed.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": env_str("DATABASE_TEST_NAME") or None},
    }


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY", DEFAULT_SECRET_KEY)
# Several write keys may be given, comma separated; any one of them authorises a write.
API_KEYS = env_list("API_KEY", DEFAULT_API_KEY)
API_READS_REQUIRE_KEY = env_bool("API_READS_REQUIRE_KEY", False)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "marketdata",
    "trading",
    "agents",
    "competitions",
    "web",
    "tournaments",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "gauntlet.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "gauntlet.wsgi.application"
ASGI_APPLICATION = "gauntlet.asgi.application"

DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": database_from_url(DATABASE_URL)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            # Rounds write from a background thread while pages read: wait, don't fail.
            # WAL lets pages read while the round runner writes.
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gauntlet",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Provider limits shared by every worker (agents.limits): per provider endpoint, requests and
# tokens per minute and calls in flight; None = unlimited. A participant's llm_config may
# override each (requests_per_minute, tokens_per_minute, max_concurrency). The defaults are an
# entry-tier account's order of magnitude; PROVIDER_LIMITS_JSON (a JSON object of the same
# shape) replaces entries for a deployment. Buckets live in PROVIDER_LIMITS_REDIS_URL (else
# REDIS_URL), else in each process.
PROVIDER_LIMITS = {
    "default": {"requests_per_minute": None, "tokens_per_minute": None, "max_concurrency": 64},
    "anthropic": {"requests_per_minute": 1000, "tokens_per_minute": 400_000, "max_concurrency": 50},
    "openai": {"requests_per_minute": 3000, "tokens_per_minute": 1_000_000, "max_concurrency": 100},
    "azure_openai": {"requests_per_minute": 600, "tokens_per_minute": 100_000, "max_concurrency": 50},
    "deepseek": {"requests_per_minute": None, "tokens_per_minute": None, "max_concurrency": 50},
    "qwen": {"requests_per_minute": 600, "tokens_per_minute": 1_000_000, "max_concurrency": 50},
    "openai_compatible": {"requests_per_minute": None, "tokens_per_minute": None, "max_concurrency": None},
}
PROVIDER_LIMITS.update(json.loads(env_str("PROVIDER_LIMITS_JSON", "") or "{}"))
PROVIDER_LIMITS_REDIS_URL = env_str("PROVIDER_LIMITS_REDIS_URL", REDIS_URL)

# Rounds run under Celery when a broker is configured, else on an in-process thread.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL) or None
ROUND_RUNNER = env_str("ROUND_RUNNER", "celery" if CELERY_BROKER_URL else "inprocess")
if ROUND_RUNNER not in {"celery", "inprocess"}:
    raise ImproperlyConfigured("ROUND_RUNNER must be 'celery' or 'inprocess'")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Tournament runs are long: their own queue, so they never delay competition rounds.
CELERY_TASK_ROUTES = {"tournaments.tasks.*": {"queue": "tournaments"}}
# Redis redelivers a task not acknowledged within this time: it must exceed the longest
# tournament run (docs/tournaments.md); a redelivery that comes early finds the run claimed.
# Workers look for such tasks every CELERY_UNACKED_RESTORE_SECONDS (kombu's default ~100 s).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT_SECONDS", 12 * 3600),
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_SECONDS", 100),
    "unacked_restore_throttle": 1,
}
# Once a minute, beat hands the runs of workers that vanished (their lease ran out) to others.
CELERY_BEAT_SCHEDULE = {
    "gauntlet: tournament runs of lost workers": {
        "task": "tournaments.tasks.tournament_runs_recover_task", "schedule": 60.0, "options": {"expires": 55},
    },
    # and every 5 minutes it sends again the tasks of waiting runs a broker lost (tournaments.tasks)
    "gauntlet: tournament runs whose task the broker lost": {
        "task": "tournaments.tasks.tournament_runs_resend_task", "schedule": 300.0, "options": {"expires": 290},
    },
}
# Seconds a worker's claim on a tournament run lasts without a round finishing (renewed
# after every round); after it, the run is another worker's to resume.
TOURNAMENT_RUN_LEASE_SECONDS = env_int("TOURNAMENT_RUN_LEASE_SECONDS", 900)
DJANGO_CELERY_BEAT_TZ_AWARE = True
# Seconds a round runner's claim on a round lasts without renewal; after it a crashed
# round may be resumed by another runner (renewed while agents are being awaited).
ROUND_LEASE_SECONDS = env_int("ROUND_LEASE_SECONDS", 120)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REST_FRAMEWORK = {
    # Every API view (market data too) authenticates by X-API-Key: writes need a key, reads only
    # when API_READS_REQUIRE_KEY. No session auth, so no CSRF on the API.
    "DEFAULT_AUTHENTICATION_CLASSES": ["gauntlet.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["gauntlet.api_auth.WritesNeedApiKey"],
    "DEFAULT_THROTTLE_CLASSES": ["gauntlet.api_auth.WriteRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "gauntlet.api_schema.ApiAutoSchema",
    # gauntlet.api.ApiView (the base of every API view) sets a stricter paginator and parser.
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "gauntlet.api.api_exception_handler",
    "DEFAULT_THROTTLE_RATES": {"writes": env_str("API_WRITE_RATE", "120/min")},
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Gauntlet API",
    "DESCRIPTION": (
        "LLM trading competitions: competitions, participants, rounds, market data, leaderboards. "
        "Writes need the X-API-Key header; decimals are strings, times ISO-8601 UTC."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components, so write-only (api_key) and read-only fields are exact.
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # The schema and its docs page stay open and ignore X-API-Key (not the API's default auth).
    "SERVE_AUTHENTICATION": [],
    "ENUM_NAME_OVERRIDES": {
        "CompetitionStatusEnum": "competitions.models.CompetitionStatus",
        "ParticipantStatusEnum": "competitions.models.ParticipantStatus",
        "RoundStatusEnum": "competitions.models.RoundStatus",
    },
}

# LLM providers. A participant's own encrypted key wins, then llm_config.api_key_env,
# then these.
ANTHROPIC_API_KEY = env_str("ANTHROPIC_API_KEY")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
AZURE_OPENAI_API_KEY = env_str("AZURE_OPENAI_API_KEY")
AZURE_OPENAI_ENDPOINT = env_str("AZURE_OPENAI_ENDPOINT")
AZURE_OPENAI_API_VERSION = env_str("AZURE_OPENAI_API_VERSION", "2024-10-21")
DEEPSEEK_API_KEY = env_str("DEEPSEEK_API_KEY")
QWEN_API_KEY = env_str("QWEN_API_KEY")

# Market data. Public Binance endpoints need no key.
BINANCE_API_KEY = env_str("BINANCE_API_KEY")
BINANCE_API_SECRET = env_str("BINANCE_API_SECRET")
LIVE_PRICE_CACHE_SECONDS = env_int("LIVE_PRICE_CACHE_SECONDS", 10)
LIVE_PRICE_MAX_AGE_SECONDS = env_int("LIVE_PRICE_MAX_AGE_SECONDS", 120)

# Demo pacing: seconds of wall time between replay rounds in `make demo`.
DEMO_ROUND_SECONDS = float(env_str("DEMO_ROUND_SECONDS", "2"))
# A local OpenAI-compatible server (Ollama, llama.cpp, vLLM) to add to the demo.
DEMO_LOCAL_BASE_URL = env_str("DEMO_LOCAL_BASE_URL")
DEMO_LOCAL_MODEL = env_str("DEMO_LOCAL_MODEL", "llama3.1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    SECURE_CONTENT_TYPE_NOSNIFF = True


def check_production_safety(*, debug: bool, secret_key: str, api_keys: list[str]) -> None:
    """Refuse to run in production with a development secret or API key."""
    if debug:
        return
    problems = []
    if not secret_key or secret_key == DEFAULT_SECRET_KEY:
        problems.append("SECRET_KEY is unset or the development default")
    if not api_keys or DEFAULT_API_KEY in api_keys:
        problems.append("API_KEY is unset or the development default")
    if problems:
        raise ImproperlyConfigured(
            "Refusing to start with DEBUG off: " + "; ".join(problems) + ". Set them in the environment."
        )


check_production_safety(debug=DEBUG, secret_key=SECRET_KEY, api_keys=API_KEYS)
