"""LLM providers through their official SDKs (sync clients, called from the round's threads).

- anthropic: Messages API with a forced tool `submit_decision` whose input_schema is the
  decision schema; the tool input is the structured output.
- openai, azure_openai, deepseek, qwen, openai_compatible: Chat Completions, with the decision
  schema enforced the way the server understands (`agents.providers.structured`: strict
  json_schema for OpenAI/Azure, json_object for DeepSeek and DashScope, negotiated for any
  other server). A reasoning model's thinking (`reasoning_content`, or a leading
  <think>...</think>) is kept apart from the answer.

The SDKs' own retries are disabled (max_retries=0); `call_with_retries` retries 429, 5xx,
timeouts and connection errors up to twice (waiting out Retry-After when the server says it)
and records the count. A refusal of the request's shape is never retried unchanged: the
negotiation changes the shape, or the call fails with the server's reason.

Every client gets its HTTP client from `_http_client(sdk, timeout)`, built on one process-wide
SSL context (`shared_ssl_context()`): left to themselves the SDKs load the CA bundle anew
for every client, ~25 ms of CPU under the GIL, which serialises a round's 50 agents.

Clients themselves are kept too (`sdk_client`): one per (SDK class, base URL, key hash,
timeout, Azure settings) for the life of the process, shared by every round, run and thread
of a worker. Building one costs ~0.1 s of CPU under the GIL (and a fresh connection pool
means a fresh TLS handshake per call); SDK clients and their httpx pools are thread-safe.
A forked child (run_tournament --workers, a prefork Celery worker) starts with an empty
cache: a pool's sockets and locks must never be shared across a fork.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anthropic
import httpx2
import openai

from agents import limits
from agents.context import AgentContext
from agents.decision import DECISION_SCHEMA
from agents.providers.base import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    STATUS_ERROR,
    STATUS_SUCCESS,
    AgentResponse,
    CallResult,
    PermanentError,
    RetryableError,
    ShapeRejected,
    call_with_retries,
    config_float,
    config_int,
    resolve_api_key,
    retry_after_seconds,
    setting_value,
)
from agents.providers.structured import (
    AUTO,
    TOOLS,
    capabilities,
    is_shape_rejection,
    mode_ladder,
    names_structured_output,
    rejects_temperature,
    request_with_mode,
    split_reasoning,
    structured_output_setting,
)

TOOL_NAME = "submit_decision"
DEFAULT_BASE_URLS = {
    "deepseek": "https://api.deepseek.com",
    "qwen": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
}
OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers (Ollama, vLLM, llama.cpp) need no key, but the SDK wants a string.
NO_KEY_PLACEHOLDER = "not-needed"


_ssl_context: ssl.SSLContext | None = None
_ssl_context_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The one verifying SSL context of this process, built on first use.

    Built exactly as the SDKs build their own (httpx2's default: SSL_CERT_FILE/SSL_CERT_DIR
    when set, else the system CA store), so verification is unchanged. An SSLContext is
    safe to share between threads and connections once configured.
    """
    global _ssl_context
    if _ssl_context is None:
        with _ssl_context_lock:
            if _ssl_context is None:
                _ssl_context = httpx2.create_ssl_context()
    return _ssl_context


def _http_client(sdk: Any, timeout: float | None) -> httpx2.Client:
    """The SDK's own DefaultHttpxClient (its limits, redirects, keep-alive), on the shared context."""
    return sdk.DefaultHttpxClient(verify=shared_ssl_context(), timeout=timeout)


CLIENT_CACHE_SIZE = 256  # distinct (endpoint, key, timeout) combinations kept per process
_clients: OrderedDict[tuple, Any] = OrderedDict()
_clients_lock = threading.Lock()


def _key_digest(api_key: str | None) -> str:
    """The key's place in the cache key: a digest, so no secret sits in a dict key or a repr."""
    return hashlib.sha256((api_key or "").encode()).hexdigest()


def sdk_client(key: tuple, build: Callable[[], Any]) -> Any:
    """The process's client for `key`, built by `build` the first time it is asked for.

    Least recently used clients beyond CLIENT_CACHE_SIZE are dropped, not closed: another
    thread may still be using one, and its pool closes when the last reference goes.
    """
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    client = build()  # outside the lock: building is the slow part
    with _clients_lock:
        existing = _clients.get(key)
        if existing is not None:  # another thread built it meanwhile: keep one
            return existing
        _clients[key] = client
        while len(_clients) > CLIENT_CACHE_SIZE:
            _clients.popitem(last=False)
    return client


def sdk_clients_clear() -> None:
    """Forget every cached client (a forked child; tests). The clients are not closed: in a
    child their sockets belong to the parent."""
    global _clients_lock
    _clients.clear()
    # A fork may happen while another thread holds the lock: the child gets a fresh one.
    _clients_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=sdk_clients_clear)


def _missing_key_response(provider: str, config: dict) -> AgentResponse:
    from agents.providers.base import KEY_SETTINGS

    where = ["the participant's API key"]
    if config.get("api_key_env"):
        where.append(f"env {config['api_key_env']}")
    if provider in KEY_SETTINGS:
        where.append(f"setting {KEY_SETTINGS[provider]}")
    return AgentResponse(
        raw_text="", status=STATUS_ERROR, error=f"no API key for {provider}: set " + " or ".join(where)
    )


def _error_body(exc: Exception) -> str:
    try:
        return exc.response.text or ""
    except Exception:  # a streamed or closed response
        return ""


def _translate(exc: Exception) -> Exception:
    """SDK exception -> RetryableError / ShapeRejected / PermanentError (both SDKs alike).

    A 4xx/5xx whose body names the request's shape (response_format, tools, a parameter) is
    ShapeRejected: the same request would fail again. 429 and 503 carry Retry-After.
    """
    if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return RetryableError(f"timed out: {exc}", timeout=True)
    if isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return RetryableError(f"connection error: {exc}")
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        status = exc.status_code
        message = f"HTTP {status}: {str(exc)[:500]}"
        if is_shape_rejection(status, f"{exc} {_error_body(exc)}"):
            return ShapeRejected(message)
        if status == 429 or status >= 500:
            retry_after = None
            if status in (429, 503):
                retry_after = retry_after_seconds(getattr(exc.response, "headers", None))
            return RetryableError(message, retry_after=retry_after)
        return PermanentError(message)
    return exc


def _reservation(context: AgentContext, max_tokens: int) -> int:
    """Tokens a call is admitted with: the prompt (~4 characters a token) plus max_tokens,
    as providers count it; settled with the reported usage afterwards."""
    return (len(context.system_prompt) + len(context.user_prompt)) // 4 + max_tokens


def _limited(
    *,
    provider: str,
    endpoint: str,
    config: dict,
    tokens: int,
    meter: limits.Meter,
    send: Callable[[], Any],
    usage: Callable[[Any], int],
) -> Any:
    """One request inside the endpoint's provider limits (agents.limits), SDK errors translated.

    A Retry-After from the server pauses the endpoint for every worker, not only this call.
    """
    try:
        with limits.slot(provider=provider, base_url=endpoint, config=config, tokens=tokens, meter=meter) as held:
            try:
                result = send()
            except Exception as exc:
                error = _translate(exc)
                if isinstance(error, RetryableError) and error.retry_after:
                    held.pause(error.retry_after)
                raise error from exc
            held.used(usage(result))
            return result
    except limits.LimitWaitExceeded as exc:
        raise PermanentError(str(exc)) from exc


def _anthropic_usage(message: Any) -> int:
    usage = getattr(message, "usage", None)
    return int(getattr(usage, "input_tokens", 0) or 0) + int(getattr(usage, "output_tokens", 0) or 0)


def _chat_usage(completion: Any) -> int:
    usage = getattr(completion, "usage", None)
    return int(getattr(usage, "prompt_tokens", 0) or 0) + int(getattr(usage, "completion_tokens", 0) or 0)


class AnthropicAgent:
    provider = "anthropic"

    def __init__(self, *, model: str, config: dict, api_key: str | None):
        self.model = model
        self.config = config or {}
        self.api_key = resolve_api_key(self.provider, self.config, api_key)

    def client(self) -> anthropic.Anthropic:
        timeout = config_float(self.config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        base_url = self.config.get("base_url") or None
        return sdk_client(
            ("anthropic", base_url, _key_digest(self.api_key), timeout),
            lambda: anthropic.Anthropic(
                api_key=self.api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=0,
                http_client=_http_client(anthropic, timeout),
            ),
        )

    def decide(self, context: AgentContext) -> AgentResponse:
        if not self.api_key:
            return _missing_key_response(self.provider, self.config)
        client = self.client()
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": config_int(self.config, "max_tokens", DEFAULT_MAX_TOKENS),
            "system": context.system_prompt,
            "messages": [{"role": "user", "content": context.user_prompt}],
            "tools": [
                {
                    "name": TOOL_NAME,
                    "description": "Submit this round's trading decision.",
                    "input_schema": DECISION_SCHEMA,
                }
            ],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
        }
        temperature = config_float(self.config, "temperature", None)
        if temperature is not None:
            request["extra_body"] = {"temperature": temperature}

        meter = limits.Meter()
        endpoint = str(client.base_url)
        reserve = _reservation(context, request["max_tokens"])

        def call() -> CallResult:
            message = _limited(
                provider=self.provider, endpoint=endpoint, config=self.config, tokens=reserve, meter=meter,
                send=lambda: client.messages.create(**request), usage=_anthropic_usage,
            )
            structured = None
            texts: list[str] = []
            thinking: list[str] = []
            for block in message.content or []:
                if getattr(block, "type", "") == "tool_use" and block.name == TOOL_NAME:
                    structured = block.input
                elif getattr(block, "type", "") == "text":
                    texts.append(block.text)
                elif getattr(block, "type", "") == "thinking":
                    thinking.append(str(getattr(block, "thinking", "") or ""))
            try:
                raw = json.dumps(structured) if structured is not None else ""
            except (TypeError, ValueError):
                raw = repr(structured)
            if texts:
                raw = "\n".join(texts) + ("\n" + raw if raw else "")
            usage = message.usage
            return CallResult(
                raw_text=raw,
                structured=structured,
                input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
                reasoning_text="\n".join(thinking),
            )

        response = call_with_retries(call, config=self.config)
        return replace(
            response, structured_output_mode=TOOLS, endpoint=endpoint, limit_wait_ms=meter.waited_ms
        )


class OpenAIChatAgent:
    """OpenAI and every OpenAI-compatible endpoint (Azure, DeepSeek, Qwen, local servers)."""

    def __init__(self, *, provider: str, model: str, config: dict, api_key: str | None):
        self.provider = provider
        self.model = model
        self.config = config or {}
        self.api_key = resolve_api_key(provider, self.config, api_key)
        if not self.api_key and provider == "openai_compatible":
            self.api_key = NO_KEY_PLACEHOLDER

    @property
    def structured_output(self) -> str:
        """auto or one fixed mode (agents.providers.structured)."""
        return structured_output_setting(self.provider, self.config)

    def client(self) -> openai.OpenAI:
        timeout = config_float(self.config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        base_url = self.config.get("base_url") or None
        key = (self.provider, base_url, _key_digest(self.api_key), timeout)
        if self.provider == "azure_openai":
            key += (
                self.config.get("api_version") or setting_value("AZURE_OPENAI_API_VERSION", "2024-10-21"),
                self.config.get("endpoint") or setting_value("AZURE_OPENAI_ENDPOINT"),
                self.deployment,
            )
        return sdk_client(key, self._build_client)

    def _build_client(self) -> openai.OpenAI:
        timeout = config_float(self.config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        base_url = self.config.get("base_url") or None
        if self.provider == "azure_openai":
            api_version = self.config.get("api_version") or setting_value(
                "AZURE_OPENAI_API_VERSION", "2024-10-21"
            )
            if base_url:
                return openai.AzureOpenAI(
                    api_key=self.api_key,
                    base_url=base_url,
                    api_version=api_version,
                    timeout=timeout,
                    max_retries=0,
                    http_client=_http_client(openai, timeout),
                )
            return openai.AzureOpenAI(
                api_key=self.api_key,
                azure_endpoint=self.config.get("endpoint") or setting_value("AZURE_OPENAI_ENDPOINT"),
                azure_deployment=self.deployment,
                api_version=api_version,
                timeout=timeout,
                max_retries=0,
                http_client=_http_client(openai, timeout),
            )
        return openai.OpenAI(
            api_key=self.api_key,
            base_url=base_url or DEFAULT_BASE_URLS.get(self.provider),
            timeout=timeout,
            max_retries=0,
            http_client=_http_client(openai, timeout),
        )

    @property
    def deployment(self) -> str:
        return self.config.get("deployment") or self.model

    def request(self, context: AgentContext, mode: str | None = None) -> dict[str, Any]:
        """The chat.completions.create kwargs, with `mode`'s structured output (default: the
        first mode this agent would try)."""
        request: dict[str, Any] = {
            "model": self.deployment if self.provider == "azure_openai" else self.model,
            "messages": [
                {"role": "system", "content": context.system_prompt},
                {"role": "user", "content": context.user_prompt},
            ],
        }
        max_tokens = config_int(self.config, "max_tokens", DEFAULT_MAX_TOKENS)
        # OpenAI's reasoning models refuse max_tokens; compatible servers mostly only know it.
        token_param = self.config.get("max_tokens_param") or (
            "max_completion_tokens" if self.provider in ("openai", "azure_openai") else "max_tokens"
        )
        request[token_param] = max_tokens
        temperature = config_float(self.config, "temperature", None)
        if temperature is not None and not rejects_temperature(self.model):
            request["temperature"] = temperature
        seed = self.config.get("seed")  # sampling seed (tournaments pass each instance's seed)
        if isinstance(seed, int) and not isinstance(seed, bool):
            request["seed"] = seed
        if mode is None:
            mode = mode_ladder(self.structured_output, self._remembered_mode())[0]
        return request_with_mode(request, mode)

    def _remembered_mode(self) -> str | None:
        if self.structured_output != AUTO:
            return None
        return capabilities.get(self.endpoint, self.model)

    @property
    def endpoint(self) -> str:
        """The server this agent talks to: the capability memory's key."""
        base_url = self.config.get("base_url") or DEFAULT_BASE_URLS.get(self.provider)
        if self.provider == "azure_openai" and not base_url:
            endpoint = self.config.get("endpoint") or setting_value("AZURE_OPENAI_ENDPOINT")
            return f"{endpoint.rstrip('/')}/openai/deployments/{self.deployment}"
        return base_url or OPENAI_BASE_URL

    def decide(self, context: AgentContext) -> AgentResponse:
        if not self.api_key:
            return _missing_key_response(self.provider, self.config)
        if self.provider == "azure_openai" and not (
            self.config.get("base_url")
            or self.config.get("endpoint")
            or setting_value("AZURE_OPENAI_ENDPOINT")
        ):
            return AgentResponse(
                raw_text="",
                status=STATUS_ERROR,
                error="no Azure endpoint: set llm_config.endpoint or AZURE_OPENAI_ENDPOINT",
            )
        if self.provider == "openai_compatible" and not self.config.get("base_url"):
            return AgentResponse(
                raw_text="", status=STATUS_ERROR, error="openai_compatible needs llm_config.base_url"
            )
        try:
            client = self.client()
        except Exception as exc:  # e.g. the SDK refusing a config combination
            return AgentResponse(raw_text="", status=STATUS_ERROR, error=f"client setup failed: {exc}")
        setting = self.structured_output
        remembered = self._remembered_mode()
        negotiation = _Negotiation(mode_ladder(setting, remembered), self.request(context, mode="none"))
        notes = negotiation.notes
        if config_float(self.config, "temperature", None) is not None and rejects_temperature(self.model):
            notes.append(f"temperature not sent: {self.model} takes none")

        meter = limits.Meter()
        reserve = _reservation(context, config_int(self.config, "max_tokens", DEFAULT_MAX_TOKENS))

        def call() -> CallResult:
            while True:
                request = request_with_mode(negotiation.base, negotiation.mode)
                try:
                    completion = _limited(
                        provider=self.provider, endpoint=self.endpoint, config=self.config, tokens=reserve,
                        meter=meter, send=lambda: client.chat.completions.create(**request), usage=_chat_usage,
                    )
                except ShapeRejected as error:
                    if negotiation.adapt(str(error), auto=setting == AUTO):
                        continue
                    raise
                return _chat_result(completion, negotiation.mode)

        response = call_with_retries(call, config=self.config)
        learned = setting == AUTO and response.status == STATUS_SUCCESS and negotiation.mode != remembered
        if learned:
            capabilities.set(self.endpoint, self.model, negotiation.mode)
        return replace(
            response,
            structured_output_mode=negotiation.mode,
            endpoint=self.endpoint,
            capability_learned=learned,
            notes=tuple(notes),
            limit_wait_ms=meter.waited_ms,
        )


_TEMPERATURE = re.compile(r"\btemperature\b|\btop_p\b", re.IGNORECASE)
_MAX_TOKENS = re.compile(r"\bmax_tokens\b", re.IGNORECASE)
_MAX_COMPLETION_TOKENS = re.compile(r"\bmax_completion_tokens\b", re.IGNORECASE)


class _Negotiation:
    """Where one call stands: the mode being tried and the request without structured output.

    Each refusal of the shape changes one thing and the call goes on: a refused sampling or
    token parameter is dropped or renamed (once each), else (auto only) the next weaker
    structured output mode is tried. Kept across retries, so a retried 503 resumes here.
    """

    def __init__(self, ladder: tuple[str, ...], base: dict[str, Any]):
        self.ladder = ladder
        self.index = 0
        self.base = base
        self.notes: list[str] = []
        self.renamed_tokens = False

    @property
    def mode(self) -> str:
        return self.ladder[self.index]

    def adapt(self, error: str, *, auto: bool) -> bool:
        """Change the request after `error` refused it; False when nothing is left to change."""
        base = self.base
        if "temperature" in base and _TEMPERATURE.search(error):
            self.base = {k: v for k, v in base.items() if k != "temperature"}
            self.notes.append(f"temperature refused, sent without it ({error[:200]})")
            return True
        for sent, instead, named in (
            ("max_tokens", "max_completion_tokens", _MAX_TOKENS),
            ("max_completion_tokens", "max_tokens", _MAX_COMPLETION_TOKENS),
        ):
            if sent in base and named.search(error) and not self.renamed_tokens:
                self.base = {k: v for k, v in base.items() if k != sent} | {instead: base[sent]}
                self.renamed_tokens = True
                self.notes.append(f"{sent} refused, sent {instead} ({error[:200]})")
                return True
        if auto and self.index + 1 < len(self.ladder) and names_structured_output(error):
            refused = self.mode
            self.index += 1
            self.notes.append(f"structured output {refused} refused, trying {self.mode} ({error[:200]})")
            return True
        return False


def _chat_result(completion: Any, mode: str) -> CallResult:
    """A chat completion -> the answer, the reasoning apart, the tool input when forced."""
    choices = completion.choices or []
    if not choices:
        raise PermanentError("the response has no choices")
    message = choices[0].message
    content = message.content if isinstance(message.content, str) else ""
    # DeepSeek, llama.cpp (--reasoning-format deepseek) and vLLM's reasoning parsers put the
    # thinking in reasoning_content; some gateways call it reasoning.
    reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None) or ""
    if not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning, default=str) if reasoning else ""
    content, thinking = split_reasoning(content)
    reasoning = "\n".join(part for part in (reasoning, thinking) if part)
    structured = None
    tool_calls = getattr(message, "tool_calls", None) or []
    if mode == TOOLS and tool_calls:
        function = getattr(tool_calls[0], "function", None)
        arguments = getattr(function, "arguments", None)
        if isinstance(arguments, str) and arguments:
            structured = arguments  # the parser decodes it and falls back to the text
            content = f"{content}\n{arguments}" if content.strip() else arguments
    if not content and getattr(message, "refusal", None):
        content = f"refusal: {message.refusal}"
    usage = completion.usage
    return CallResult(
        raw_text=content,
        structured=structured,  # JSON mode output is text: the parser reads it
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0,
        output_tokens=int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0,
        reasoning_text=reasoning,
    )
