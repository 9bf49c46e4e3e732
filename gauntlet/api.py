"""What every /api/v1 endpoint shares: the API key, write throttling, pagination, errors, health.

Writes need an `X-API-Key` header matching one of settings.API_KEYS (compared in constant
time); reads are public unless settings.API_READS_REQUIRE_KEY. A missing key is a 401, a
wrong one a 403. Services raise gauntlet.errors exceptions; the exception handler turns
them into 400/404/409 so no input a client can send ends in a 500.
"""

import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, IntegrityError, connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authentication import BaseAuthentication
from rest_framework.generics import GenericAPIView
from rest_framework.metadata import SimpleMetadata
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import exception_handler

from competitions.rounds.trigger import WORKER_HEARTBEAT_KEY  # noqa: F401  written there, read by health
from gauntlet.errors import ConflictError, DomainError, NotFoundError

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
# Beat writes the heartbeat every minute; three missed ticks mean no worker is consuming.
WORKER_HEARTBEAT_MAX_AGE_SECONDS = 180


class ApiClient:
    """The caller behind a valid API key (there are no user accounts in the API)."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key_id: str):
        self.key_id = key_id

    def __str__(self):
        return f"api-key:{self.key_id}"


def key_fingerprint(key: str) -> str:
    """A short, non-reversible name for a key: throttle buckets and logs, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def api_key_is_valid(presented: str) -> bool:
    """Constant-time comparison against every configured key (no early exit on a match)."""
    presented_bytes = presented.encode()
    matched = False
    for key in settings.API_KEYS:
        matched |= hmac.compare_digest(presented_bytes, key.encode())
    return matched


class ApiKeyAuthentication(BaseAuthentication):
    """Identify the caller by X-API-Key; no header means anonymous, a wrong key is refused."""

    def authenticate(self, request):
        presented = request.headers.get(API_KEY_HEADER)
        if presented is None:
            return None
        if not presented or not api_key_is_valid(presented):
            raise exceptions.PermissionDenied(f"the {API_KEY_HEADER} header does not hold a valid API key")
        fingerprint = key_fingerprint(presented)
        return ApiClient(fingerprint), fingerprint

    def authenticate_header(self, request):
        # Makes DRF answer 401 (not 403) when a key is missing.
        return API_KEY_HEADER


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}


class WritesNeedApiKey(BasePermission):
    """Writes always need a key; reads only when settings.API_READS_REQUIRE_KEY is on."""

    def has_permission(self, request, view):
        if request.auth is not None:
            return True
        if request.method in SAFE_METHODS and not settings.API_READS_REQUIRE_KEY:
            return True
        what = "reads" if request.method in SAFE_METHODS else "writes"
        raise exceptions.NotAuthenticated(f"{what} need an API key in the {API_KEY_HEADER} header")


class ApiAutoSchema(AutoSchema):
    """Marks reads as callable without a key (unless API_READS_REQUIRE_KEY) in the OpenAPI schema."""

    def get_auth(self):
        auths = super().get_auth()
        if auths and self.method in SAFE_METHODS and not settings.API_READS_REQUIRE_KEY and {} not in auths:
            auths.append({})
        return auths


class WriteRateThrottle(SimpleRateThrottle):
    """Rate-limit writes per API key (or per client address without one); reads are free."""

    scope = "writes"

    def get_rate(self):
        # Read at request time so the rate follows settings (and override_settings in tests).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if request.method in SAFE_METHODS:
            return None
        ident = request.auth if request.auth is not None else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class StrictLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pages; a malformed limit or offset is a 400, not silently ignored."""

    default_limit = 50
    max_limit = 500

    def _param(self, request, name: str, *, minimum: int) -> int | None:
        raw = request.query_params.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise exceptions.ValidationError({name: [f"{name} must be an integer"]}) from None
        if value < minimum:
            raise exceptions.ValidationError({name: [f"{name} must be at least {minimum}"]})
        return value

    def get_limit(self, request):
        limit = self._param(request, self.limit_query_param, minimum=1)
        if limit is None:
            return self.default_limit
        return min(limit, self.max_limit)

    def get_offset(self, request):
        return self._param(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.limit_query_param,
                "required": False,
                "in": "query",
                "description": f"Number of results per page (default {self.default_limit}, at most {self.max_limit}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_limit},
            },
            {
                "name": self.offset_query_param,
                "required": False,
                "in": "query",
                "description": "Index of the first result to return.",
                "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
            },
        ]


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
    """Base of every /api/v1 view: key authentication, write throttle, strict pagination."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [WritesNeedApiKey]
    throttle_classes = [WriteRateThrottle]
    parser_classes = [JSONBodyParser]
    pagination_class = StrictLimitOffsetPagination
    metadata_class = ApiMetadata
    schema = ApiAutoSchema()

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
        beat = _heartbeat_time(cache.get(WORKER_HEARTBEAT_KEY))
    except Exception:  # noqa: BLE001 -- the cache check reports the cache itself
        beat = None
    if beat is None:
        return {"status": "down", "detail": "no worker heartbeat recorded", "age_seconds": None}
    age = max(0.0, (now - beat).total_seconds())
    return {
        "status": "ok" if age <= WORKER_HEARTBEAT_MAX_AGE_SECONDS else "down",
        "last_seen": beat.astimezone(UTC).isoformat().replace("+00:00", "Z"),
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
        "time": now.isoformat().replace("+00:00", "Z"),
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
