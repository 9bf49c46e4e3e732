"""The Agent protocol, the response every provider returns, key resolution and retries."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from agents.context import AgentContext

STATUS_SUCCESS = "success"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"

DEFAULT_TIMEOUT_SECONDS = 60.0
# What a provider's agents get unless llm_config says otherwise. A local OpenAI-compatible
# server (llama.cpp, Ollama, vLLM on a CPU) reads a long prompt slowly, and keeps working on a
# request whose caller gave up: wait longer for it, and never queue a second copy behind the
# first by retrying a timeout.
PROVIDER_CONFIG_DEFAULTS: dict[str, dict] = {
    "openai_compatible": {"timeout_seconds": 300.0, "retry_on_timeout": False},
}


def config_with_defaults(provider: str, config: dict | None) -> dict:
    """The participant's llm_config over its provider's defaults (a fresh dict)."""
    return {**PROVIDER_CONFIG_DEFAULTS.get(provider, {}), **(config or {})}
DEFAULT_MAX_TOKENS = 2048
MAX_RETRIES = 2
DEFAULT_BACKOFF_SECONDS = 1.0

# Provider -> settings attribute holding its default API key.
KEY_SETTINGS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "azure_openai": "AZURE_OPENAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "qwen": "QWEN_API_KEY",
}


@dataclass(frozen=True)
class AgentResponse:
    """What one provider call produced, before parsing."""

    raw_text: str
    structured: Any = None  # native structured output (tool input / parsed JSON), if any
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int = 0
    retries: int = 0
    status: str = STATUS_SUCCESS  # success | error | timeout
    error: str = ""
    # A reasoning model's thinking (reasoning_content, <think>...</think>), kept apart from
    # the answer so the parser never takes a draft in it for the decision.
    reasoning_text: str = ""
    # Characters agents.boundary escaped so the row can be stored (NUL, lone surrogates).
    escaped_characters: int = 0
    # How the decision schema was enforced on this call (agents.providers.structured).
    structured_output_mode: str = ""
    # The server's base URL, and whether this call taught us what it accepts (auto mode):
    # the recording service then remembers the mode for (endpoint, model).
    endpoint: str = ""
    capability_learned: bool = False
    notes: tuple[str, ...] = ()
    # Decision cache (agents.cache): answered from the cache, and the key it was asked under.
    cached: bool = False
    cache_key: str = ""
    # Time spent waiting for the endpoint's provider limits (agents.limits), over all attempts.
    limit_wait_ms: int = 0


class Agent(Protocol):
    provider: str
    model: str

    def decide(self, context: AgentContext) -> AgentResponse: ...


class RetryableError(Exception):
    """A transient failure (429, 5xx, timeout, connection): worth another attempt.

    `retry_after`: seconds the server asked us to wait (its Retry-After header), if any.
    """

    def __init__(self, message: str, *, timeout: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.timeout = timeout
        self.retry_after = retry_after


class PermanentError(Exception):
    """A failure that will not change on retry (4xx other than 429, bad config)."""


class ShapeRejected(PermanentError):
    """The server refused the request's shape (its structured output, a parameter): sending
    it unchanged would fail again, a different shape may not. Negotiation handles it."""


def retry_after_seconds(headers, *, now: datetime | None = None) -> float | None:
    """The wait a 429/503 asks for: `retry-after-ms` (OpenAI's), else `Retry-After` as
    seconds or as an HTTP date (RFC 9110 10.2.3). None when absent or unreadable."""
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
            return value if math.isfinite(value) and value >= 0 else None
        except ValueError:
            pass
    text = (headers.get("retry-after") or "").strip()
    if not text:
        return None
    try:
        value = float(text)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _setting(name: str) -> str:
    try:
        from django.conf import settings

        return str(getattr(settings, name, "") or "")
    except Exception:  # settings not configured (pure use outside Django)
        return os.environ.get(name, "")


def setting_value(name: str, default: str = "") -> str:
    return _setting(name) or default


def resolve_api_key(provider: str, config: dict, api_key: str | None) -> str | None:
    """The participant's own key, else the env variable named by llm_config.api_key_env,
    else the provider's settings key (ANTHROPIC_API_KEY, ...)."""
    if api_key:
        return api_key
    env_name = (config or {}).get("api_key_env")
    if env_name and os.environ.get(str(env_name)):
        return os.environ[str(env_name)]
    setting = KEY_SETTINGS.get(provider)
    if setting:
        return _setting(setting) or None
    return None


def config_float(config: dict, name: str, default: float | None) -> float | None:
    value = (config or {}).get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def config_int(config: dict, name: str, default: int) -> int:
    value = (config or {}).get(name)
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


# Patched in tests so backoff does not slow them down.
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class CallResult:
    raw_text: str
    structured: Any
    input_tokens: int
    output_tokens: int
    reasoning_text: str = ""


def call_with_retries(call: Callable[[], CallResult], *, config: dict) -> AgentResponse:
    """Run `call` with up to MAX_RETRIES retries (exponential backoff: b, 2b) on RetryableError.

    A 429/503 that says Retry-After is waited out as asked instead, capped by the agent's
    timeout (a server asking for an hour does not hold the round for an hour). The SDKs'
    own retries are off (max_retries=0) so the count here is the true one.
    Never raises: every failure is an AgentResponse with status error or timeout.
    """
    backoff = config_float(config, "retry_backoff_seconds", DEFAULT_BACKOFF_SECONDS) or 0.0
    timeout = config_float(config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS) or DEFAULT_TIMEOUT_SECONDS
    max_retries = min(MAX_RETRIES, max(0, config_int(config, "max_retries", MAX_RETRIES)))
    started = time.monotonic()
    retries = 0
    while True:
        try:
            result = call()
        except RetryableError as exc:
            if retries < max_retries and not (exc.timeout and config.get("retry_on_timeout") is False):
                if exc.retry_after is not None:
                    sleep(min(exc.retry_after, timeout))
                else:
                    sleep(backoff * (2**retries))
                retries += 1
                continue
            return AgentResponse(
                raw_text="",
                latency_ms=_elapsed_ms(started),
                retries=retries,
                status=STATUS_TIMEOUT if exc.timeout else STATUS_ERROR,
                error=f"{exc} (after {retries + 1} attempts)",
            )
        except PermanentError as exc:
            return AgentResponse(
                raw_text="",
                latency_ms=_elapsed_ms(started),
                retries=retries,
                status=STATUS_ERROR,
                error=str(exc),
            )
        except Exception as exc:  # a provider bug must not crash the round
            return AgentResponse(
                raw_text="",
                latency_ms=_elapsed_ms(started),
                retries=retries,
                status=STATUS_ERROR,
                error=f"{type(exc).__name__}: {exc}",
            )
        return AgentResponse(
            raw_text=result.raw_text,
            reasoning_text=result.reasoning_text,
            structured=result.structured,
            input_tokens=result.input_tokens,
            output_tokens=result.output_tokens,
            latency_ms=_elapsed_ms(started),
            retries=retries,
        )


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
