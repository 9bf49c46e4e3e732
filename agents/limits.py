"""Provider limits shared by every worker: requests and tokens per minute, calls in flight.

One set of buckets per provider endpoint (`limit_key`: provider + base URL), however many
rounds, runs, threads and worker processes call it, so a tournament on four machines stays
inside what the account may send. Limits come from settings.PROVIDER_LIMITS (a provider's
entry over "default") and a participant's llm_config may override each one:

    requests_per_minute  token bucket of that many requests, refilled continuously
    tokens_per_minute    token bucket of that many tokens; a call reserves its prompt estimate
                         plus max_tokens (what providers count at admission) and is settled
                         with the usage the server reports
    max_concurrency      calls in flight at once (a slot is a lease: a killed worker's slot
                         frees itself after the lease)

None (or 0) means unlimited. A 429/503 with Retry-After pauses the endpoint's buckets for
every worker until then (`pause`), so one worker's refusal slows all of them instead of each
finding out on its own.

The state lives in Redis when one is configured (PROVIDER_LIMITS_REDIS_URL, else REDIS_URL;
one Lua script per step, on Redis' clock, so workers on different machines agree), else in
this process. The time an invocation spent waiting is recorded (Invocation.limit_wait_ms).
A limiter failure never fails a call: with Redis unreachable the process falls back to its
own buckets and says so in the log.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

logger = logging.getLogger(__name__)

LIMIT_NAMES = ("requests_per_minute", "tokens_per_minute", "max_concurrency")
DEFAULT_LEASE_SECONDS = 300.0  # a slot outlives any call's timeout; a dead worker's slot frees then
POLL_SECONDS = 0.05  # how often a full concurrency cap is looked at again
MAX_WAIT_SECONDS = 600.0  # beyond this a call gives up waiting (llm_config.max_limit_wait_seconds)
REDIS_PREFIX = "gauntlet:limits:"

# Injectable for tests: the in-process buckets' clock and every wait's sleep.
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


class LimitWaitExceeded(Exception):
    """Waited longer than max_limit_wait_seconds for a provider's limits."""


@dataclass(frozen=True)
class Limits:
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_concurrency: int | None = None
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    @property
    def unlimited(self) -> bool:
        return not (self.requests_per_minute or self.tokens_per_minute or self.max_concurrency)


def limit_key(provider: str, base_url: str | None) -> str:
    """One endpoint's buckets: an account's limits hold per provider and server."""
    return f"{provider}|{(base_url or '').rstrip('/')}"


def _positive(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and math.isfinite(number) else None


def limits_for(provider: str, config: dict | None) -> Limits:
    """settings.PROVIDER_LIMITS["default"], then the provider's entry, then llm_config."""
    from django.conf import settings

    table = getattr(settings, "PROVIDER_LIMITS", {}) or {}
    merged: dict = {}
    for layer in (table.get("default") or {}, table.get(provider) or {}, config or {}):
        for name in (*LIMIT_NAMES, "lease_seconds"):
            if name in layer:
                merged[name] = layer[name]
    concurrency = _positive(merged.get("max_concurrency"))
    return Limits(
        requests_per_minute=_positive(merged.get("requests_per_minute")),
        tokens_per_minute=_positive(merged.get("tokens_per_minute")),
        max_concurrency=int(concurrency) if concurrency else None,
        lease_seconds=_positive(merged.get("lease_seconds")) or DEFAULT_LEASE_SECONDS,
    )


class Backend(Protocol):
    def try_acquire(self, key: str, limits: Limits, tokens: int, holder: str) -> float:
        """Take one request, `tokens` tokens and a slot: 0.0, or the seconds to wait first."""

    def settle(self, key: str, limits: Limits, tokens: int) -> None:
        """Give back `tokens` (negative: take more) once the server said what was used."""

    def release(self, key: str, holder: str) -> None: ...

    def pause(self, key: str, seconds: float) -> None: ...

    def reset(self) -> None: ...


def _refilled(level: float, since: float, now: float, per_minute: float) -> float:
    return min(per_minute, level + max(0.0, now - since) * per_minute / 60.0)


class InProcessBackend:
    """The buckets of one process (no Redis): the same arithmetic as the Redis script."""

    def __init__(self, now: Callable[[], float] | None = None):
        self._now = now
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # (key, kind) -> (level, at)
        self._paused: dict[str, float] = {}
        self._holders: dict[str, dict[str, float]] = {}

    def now(self) -> float:
        return (self._now or clock)()

    def _level(self, key: str, kind: str, per_minute: float, now: float) -> float:
        level, at = self._buckets.get((key, kind), (per_minute, now))
        return _refilled(level, at, now, per_minute)

    def try_acquire(self, key: str, limits: Limits, tokens: int, holder: str) -> float:
        with self._lock:
            now = self.now()
            wait = self._paused.get(key, 0.0) - now
            if wait > 0:
                return wait
            wait = 0.0
            rpm, tpm, cap = limits.requests_per_minute, limits.tokens_per_minute, limits.max_concurrency
            requests = self._level(key, "requests", rpm, now) if rpm else 0.0
            if rpm and requests < 1:
                wait = max(wait, (1 - requests) * 60.0 / rpm)
            want = min(float(tokens), tpm) if tpm else 0.0
            token_level = self._level(key, "tokens", tpm, now) if tpm else 0.0
            if tpm and token_level < want:
                wait = max(wait, (want - token_level) * 60.0 / tpm)
            holders = self._holders.setdefault(key, {})
            for name, expiry in list(holders.items()):
                if expiry <= now:
                    del holders[name]
            if cap and len(holders) >= cap:
                wait = max(wait, POLL_SECONDS)
            if wait > 0:
                return wait
            if rpm:
                self._buckets[(key, "requests")] = (requests - 1, now)
            if tpm:
                self._buckets[(key, "tokens")] = (token_level - want, now)
            if cap:
                holders[holder] = now + limits.lease_seconds
            return 0.0

    def settle(self, key: str, limits: Limits, tokens: int) -> None:
        if not limits.tokens_per_minute or not tokens:
            return
        with self._lock:
            now = self.now()
            level = self._level(key, "tokens", limits.tokens_per_minute, now)
            self._buckets[(key, "tokens")] = (min(limits.tokens_per_minute, level + tokens), now)

    def release(self, key: str, holder: str) -> None:
        with self._lock:
            self._holders.get(key, {}).pop(holder, None)

    def pause(self, key: str, seconds: float) -> None:
        with self._lock:
            self._paused[key] = max(self._paused.get(key, 0.0), self.now() + seconds)

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._paused.clear()
            self._holders.clear()


# One script per step, run atomically by Redis on its own clock (TIME), so every worker on
# every machine sees the same buckets. Numbers come back as strings: Lua numbers returned to
# Redis lose their fraction.
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
_LEVEL = """
local function level(name, per_minute)
  local v = tonumber(redis.call('HGET', KEYS[1], name) or per_minute)
  local at = tonumber(redis.call('HGET', KEYS[1], name .. '_at') or now)
  return math.min(per_minute, v + math.max(0, now - at) * per_minute / 60)
end
"""
ACQUIRE = _NOW + _LEVEL + """
local rpm, tpm, cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, holder, lease = tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or 0)
if paused > now then return tostring(paused - now) end
local wait, requests, tokens = 0, 0, 0
if rpm > 0 then
  requests = level('requests', rpm)
  if requests < 1 then wait = math.max(wait, (1 - requests) * 60 / rpm) end
end
if tpm > 0 then
  want = math.min(want, tpm)
  tokens = level('tokens', tpm)
  if tokens < want then wait = math.max(wait, (want - tokens) * 60 / tpm) end
end
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) >= cap then wait = math.max(wait, tonumber(ARGV[7])) end
end
if wait > 0 then return tostring(wait) end
if rpm > 0 then redis.call('HSET', KEYS[1], 'requests', tostring(requests - 1), 'requests_at', tostring(now)) end
if tpm > 0 then redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - want), 'tokens_at', tostring(now)) end
if cap > 0 then
  redis.call('ZADD', KEYS[2], now + lease, holder)
  redis.call('EXPIRE', KEYS[2], math.ceil(lease) + 60)
end
redis.call('EXPIRE', KEYS[1], 3600)
return '0'
"""
SETTLE = _NOW + _LEVEL + """
local tpm, give = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = level('tokens', tpm)
redis.call('HSET', KEYS[1], 'tokens', tostring(math.min(tpm, tokens + give)), 'tokens_at', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return '0'
"""
PAUSE = _NOW + """
local deadline = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or 0)
if deadline > paused then redis.call('HSET', KEYS[1], 'paused_until', tostring(deadline)) end
redis.call('EXPIRE', KEYS[1], math.max(3600, math.ceil(deadline - now) + 60))
return '0'
"""


class RedisBackend:
    """Buckets in Redis, shared by every process and machine that uses the same Redis."""

    def __init__(self, url: str, prefix: str = REDIS_PREFIX):
        import redis

        # short timeouts: an unreachable Redis must cost a call little (it falls back, see _guarded)
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        self.prefix = prefix
        self._acquire = self.client.register_script(ACQUIRE)
        self._settle = self.client.register_script(SETTLE)
        self._pause = self.client.register_script(PAUSE)

    def _keys(self, key: str) -> list[str]:
        # hashed: a base URL may hold characters a key pattern would read as glob syntax
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        return [f"{self.prefix}{digest}:state", f"{self.prefix}{digest}:slots"]

    def try_acquire(self, key: str, limits: Limits, tokens: int, holder: str) -> float:
        args = [
            limits.requests_per_minute or 0, limits.tokens_per_minute or 0, limits.max_concurrency or 0,
            max(0, int(tokens)), holder, limits.lease_seconds, POLL_SECONDS,
        ]
        return float(self._acquire(keys=self._keys(key), args=args))

    def settle(self, key: str, limits: Limits, tokens: int) -> None:
        if limits.tokens_per_minute and tokens:
            self._settle(keys=self._keys(key), args=[limits.tokens_per_minute, int(tokens)])

    def release(self, key: str, holder: str) -> None:
        self.client.zrem(self._keys(key)[1], holder)

    def pause(self, key: str, seconds: float) -> None:
        self._pause(keys=self._keys(key), args=[max(0.0, float(seconds))])

    def reset(self) -> None:
        names = list(self.client.scan_iter(match=f"{self.prefix}*", count=500))
        if names:
            self.client.delete(*names)


_local = InProcessBackend()
_shared: RedisBackend | None = None
_shared_url: str | None = None
_backend_lock = threading.Lock()


def redis_url() -> str:
    from django.conf import settings

    return getattr(settings, "PROVIDER_LIMITS_REDIS_URL", "") or getattr(settings, "REDIS_URL", "") or ""


def backend() -> Backend:
    """Redis when configured (shared by all workers), else this process's buckets."""
    global _shared, _shared_url
    url = redis_url()
    if not url:
        return _local
    if _shared is None or _shared_url != url:
        with _backend_lock:
            if _shared is None or _shared_url != url:
                _shared, _shared_url = RedisBackend(url), url
    return _shared


def limits_reset() -> None:
    """Empty every bucket and pause (tests; an operator after changing the limits)."""
    _local.reset()
    if redis_url():
        try:
            backend().reset()
        except Exception as exc:  # a reset must not fail because Redis is down
            logger.warning("provider limits: could not reset the Redis buckets (%s)", exc)


def _guarded(step: Callable[[Backend], float | None], what: str) -> float | None:
    """Run `step` on the shared backend; with Redis unreachable, on this process's buckets."""
    shared = backend()
    try:
        return step(shared)
    except Exception as exc:
        if shared is _local:
            raise
        logger.warning("provider limits: Redis unavailable for %s (%s); using this process's buckets", what, exc)
        return step(_local)


class Meter:
    """What one invocation spent waiting on limits, over all its attempts."""

    def __init__(self) -> None:
        self.waited_seconds = 0.0

    @property
    def waited_ms(self) -> int:
        return round(self.waited_seconds * 1000)


@dataclass
class Slot:
    key: str
    limits: Limits
    reserved: int
    holder: str

    def used(self, tokens: int) -> None:
        """The server's reported usage: the reservation's difference goes back (or is taken)."""
        if tokens > 0 and self.limits.tokens_per_minute:
            reserved = min(self.reserved, int(self.limits.tokens_per_minute))
            difference = reserved - int(tokens)
            _guarded(lambda b: b.settle(self.key, self.limits, difference), "settle")
            self.reserved = int(tokens)

    def pause(self, seconds: float | None) -> None:
        """The server said Retry-After: every worker holds off this endpoint until then."""
        if seconds and seconds > 0:
            _guarded(lambda b: b.pause(self.key, seconds), "pause")


@contextmanager
def slot(*, provider: str, base_url: str | None, config: dict | None, tokens: int, meter: Meter) -> Iterator[Slot]:
    """Wait until `provider`'s endpoint may take one more call of ~`tokens` tokens, then hold
    a concurrency slot for the call. Adds the wait to `meter`; raises LimitWaitExceeded when
    the wait passes llm_config.max_limit_wait_seconds (default MAX_WAIT_SECONDS)."""
    limits = limits_for(provider, config)
    key = limit_key(provider, base_url)
    holder = uuid.uuid4().hex
    max_wait = _positive((config or {}).get("max_limit_wait_seconds")) or MAX_WAIT_SECONDS
    waited = 0.0
    while True:
        wait = _guarded(lambda b: b.try_acquire(key, limits, tokens, holder), "acquire") or 0.0
        if wait <= 0:
            break
        if waited + wait > max_wait:
            meter.waited_seconds += waited
            raise LimitWaitExceeded(
                f"provider limits of {key}: would wait {waited + wait:.1f}s, more than {max_wait:g}s"
            )
        sleep(wait)
        waited += wait
    meter.waited_seconds += waited
    held = Slot(key=key, limits=limits, reserved=int(tokens), holder=holder)
    try:
        yield held
    finally:
        if limits.max_concurrency:
            _guarded(lambda b: b.release(key, holder), "release")


__all__ = [
    "InProcessBackend",
    "LimitWaitExceeded",
    "Limits",
    "Meter",
    "RedisBackend",
    "Slot",
    "backend",
    "limit_key",
    "limits_for",
    "limits_reset",
    "slot",
]
