"""Who may call /api/v1: the API key, the read/write rule and the write throttle.

Writes need an `X-API-Key` header matching one of settings.API_KEYS (compared in constant
time); reads are public unless settings.API_READS_REQUIRE_KEY. A missing key is a 401, a wrong
one a 403. settings.REST_FRAMEWORK names these classes as the defaults of every DRF view, so
each endpoint (market data included) follows the same rules without declaring them.

DRF imports this module while it loads its views, so it must not import DRF views or
drf-spectacular; the schema side of these rules is gauntlet.api_schema.
"""

import hashlib
import hmac

from django.conf import settings
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

API_KEY_HEADER = "X-API-Key"


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


class WritesNeedApiKey(BasePermission):
    """Writes always need a key; reads only when settings.API_READS_REQUIRE_KEY is on."""

    def has_permission(self, request, view):
        if request.auth is not None:
            return True
        if request.method in SAFE_METHODS and not settings.API_READS_REQUIRE_KEY:
            return True
        what = "reads" if request.method in SAFE_METHODS else "writes"
        raise exceptions.NotAuthenticated(f"{what} need an API key in the {API_KEY_HEADER} header")


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
