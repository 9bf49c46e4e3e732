"""What every /api/v1 endpoint shares: the base view, errors, health.

Who may call (API key, write throttle) is in gauntlet.api_auth, named as the defaults in
settings.REST_FRAMEWORK; pages are in gauntlet.pagination. Services raise gauntlet.errors
exceptions; the exception handler turns them into 400/404/409 so no input a client can send
ends in a 500.
"""

import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, IntegrityError, connection
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.metadata import SimpleMetadata
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import exception_handler

from gauntlet.errors import ConflictError, DomainError, NotFoundError
from gauntlet.heartbeat import WORKER_HEARTBEAT_KEY, worker_heartbeat_get  # noqa: F401  (the key: tests)
from gauntlet.pagination import StrictLimitOffsetPagination
from gauntlet.timefmt import iso_utc

logger = logging.getLogger(__name__)

# Beat writes the heartbeat every minute; three missed ticks mean no worker is consuming.
WORKER_HEARTBEAT_MAX_AGE_SECONDS = 180


class JSONBodyParser(JSONParser):
    """JSON bodies only; a body nested too deep to parse is a 400 like any other malformed JSON."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None


class ApiMetadata(SimpleMetadata):
    """OPTIONS names the view and its media types; the OpenAPI schema documents the fields."""

    def determine_actions(self, request, view):
        return {}


class ApiView(GenericAPIView):
    """Base of every /api/v1 view: strict JSON bodies and strict pagination (key rules and the
    write throttle come from settings.REST_FRAMEWORK, as for every DRF view)."""

    parser_classes = [JSONBodyParser]
    pagination_class = StrictLimitOffsetPagination
    metadata_class = ApiMetadata

    def paginate(self, queryset, serializer_class, **serializer_kwargs):
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, self.request, view=self)
        data = serializer_class(page, many=True, **serializer_kwargs).data
        return paginator.get_paginated_response(data)


def _domain_error_body(exc: DomainError) -> dict:
    if exc.field and not isinstance(exc, ConflictError | NotFoundError):
        # The same shape as a serializer's field errors: {field: [messages]}.
        return {exc.field: [exc.message]}
    return {"detail": exc.message, "code": exc.code}


def api_exception_handler(exc, context):
    """DRF's handler plus the domain's errors: 400 refused, 404 missing, 409 wrong state."""
    if isinstance(exc, NotFoundError):
        return Response(_domain_error_body(exc), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, ConflictError):
        return Response(_domain_error_body(exc), status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DomainError):
        return Response(_domain_error_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ObjectDoesNotExist):
        what = type(exc).__qualname__.split(".")[0].lower() if "." in type(exc).__qualname__ else "object"
        return Response(
            {"detail": f"{what} not found", "code": "not_found"}, status=status.HTTP_404_NOT_FOUND
        )
    if isinstance(exc, IntegrityError):
        # A concurrent request won the race for a unique row (a name, a round number).
        logger.info("integrity error answered as a conflict: %s", exc)
        return Response(
            {"detail": "the request conflicts with the current state; retry", "code": "conflict"},
            status=status.HTTP_409_CONFLICT,
        )
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException) and "detail" in response.data:
        codes = exc.get_codes()
        if isinstance(codes, str):
            response.data["code"] = codes
    return response


# -- health -------------------------------------------------------------------------------


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return {"status": "down", "detail": type(exc).__name__}
    return {"status": "ok", "vendor": connection.vendor}


def _check_cache() -> dict:
    probe = f"gauntlet:health:{time.monotonic_ns()}"
    try:
        cache.set(probe, "1", timeout=10)
        ok = cache.get(probe) == "1"
        cache.delete(probe)
    except Exception as exc:  # noqa: BLE001 -- any cache backend failure means "down"
        return {"status": "down", "detail": type(exc).__name__}
    return {"status": "ok" if ok else "down"}


def _check_broker() -> dict:
    url = settings.CELERY_BROKER_URL or settings.REDIS_URL
    if not url:
        return {"status": "not configured", "runner": settings.ROUND_RUNNER}
    try:
        if url.startswith(("redis://", "rediss://", "unix://")):
            import redis

            redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
        else:
            from kombu import Connection

            with Connection(url, connect_timeout=2) as conn:
                conn.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 -- whatever the client raises, the broker is unreachable
        return {"status": "down", "runner": settings.ROUND_RUNNER, "detail": type(exc).__name__}
    return {"status": "ok", "runner": settings.ROUND_RUNNER}


def _heartbeat_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        try:
            return _heartbeat_time(float(value))
        except ValueError:
            pass
        try:
            return _heartbeat_time(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


def _check_worker(now: datetime) -> dict:
    if settings.ROUND_RUNNER != "celery":
        return {"status": "n/a", "runner": settings.ROUND_RUNNER}
    try:
        beat = _heartbeat_time(worker_heartbeat_get())
    except Exception:  # noqa: BLE001 -- the cache check reports the cache itself
        beat = None
    if beat is None:
        return {"status": "down", "detail": "no worker heartbeat recorded", "age_seconds": None}
    age = max(0.0, (now - beat).total_seconds())
    return {
        "status": "ok" if age <= WORKER_HEARTBEAT_MAX_AGE_SECONDS else "down",
        "last_seen": iso_utc(beat),
        "age_seconds": round(age, 1),
    }


def health_report(now: datetime | None = None) -> tuple[bool, dict]:
    now = now or datetime.now(UTC)
    checks = {
        "database": _check_database(),
        "cache": _check_cache(),
        "broker": _check_broker(),
        "worker": _check_worker(now),
    }
    healthy = all(check["status"] in {"ok", "n/a", "not configured"} for check in checks.values())
    return healthy, {
        "status": "ok" if healthy else "degraded",
        "time": iso_utc(now),
        "checks": checks,
    }


_check_schema = inline_serializer(
    "HealthCheck",
    fields={
        "status": serializers.CharField(),
        "detail": serializers.CharField(required=False),
        "runner": serializers.CharField(required=False),
        "vendor": serializers.CharField(required=False),
        "last_seen": serializers.DateTimeField(required=False),
        "age_seconds": serializers.FloatField(required=False, allow_null=True),
    },
)
HealthSerializer = inline_serializer(
    "Health",
    fields={
        "status": serializers.ChoiceField(choices=["ok", "degraded"]),
        "time": serializers.DateTimeField(),
        "checks": inline_serializer(
            "HealthChecks",
            fields={
                "database": _check_schema,
                "cache": _check_schema,
                "broker": _check_schema,
                "worker": _check_schema,
            },
        ),
    },
)

_HEALTHY_EXAMPLE = {
    "status": "ok",
    "time": "2026-01-05T12:00:00Z",
    "checks": {
        "database": {"status": "ok", "vendor": "postgresql"},
        "cache": {"status": "ok"},
        "broker": {"status": "ok", "runner": "celery"},
        "worker": {"status": "ok", "last_seen": "2026-01-05T11:59:20Z", "age_seconds": 40.0},
    },
}


class HealthView(ApiView):
    """Liveness of what rounds depend on: 200 when every configured part answers, else 503."""

    authentication_classes: list = []
    throttle_classes: list = []
    permission_classes: list = []

    @extend_schema(
        operation_id="health",
        tags=["health"],
        auth=[],
        responses={
            200: OpenApiResponse(HealthSerializer, description="Every configured part answers"),
            503: OpenApiResponse(HealthSerializer, description="A configured part is down"),
        },
        examples=[
            OpenApiExample(
                "healthy (Celery runner)", value=_HEALTHY_EXAMPLE, response_only=True, status_codes=["200"]
            ),
            OpenApiExample(
                "in-process runner",
                value={
                    **_HEALTHY_EXAMPLE,
                    "checks": {
                        "database": {"status": "ok", "vendor": "sqlite"},
                        "cache": {"status": "ok"},
                        "broker": {"status": "not configured", "runner": "inprocess"},
                        "worker": {"status": "n/a", "runner": "inprocess"},
                    },
                },
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "worker gone",
                value={
                    **_HEALTHY_EXAMPLE,
                    "status": "degraded",
                    "checks": {
                        **_HEALTHY_EXAMPLE["checks"],
                        "worker": {
                            "status": "down",
                            "detail": "no worker heartbeat recorded",
                            "age_seconds": None,
                        },
                    },
                },
                response_only=True,
                status_codes=["503"],
            ),
        ],
    )
    def get(self, request):
        healthy, body = health_report()
        return Response(body, status=status.HTTP_200_OK if healthy else status.HTTP_503_SERVICE_UNAVAILABLE)
