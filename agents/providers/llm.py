"""LLM providers through their official SDKs (sync clients, called from the round's threads).

- anthropic: Messages API with a forced tool `submit_decision` whose input_schema is the
  decision schema; the tool input is the structured output.
- openai, azure_openai: Chat Completions with response_format json_schema (strict), or
  json_object mode when llm_config.response_format == "json_object".
- deepseek, qwen, openai_compatible: Chat Completions in json_object mode by default
  (llm_config.response_format may ask for json_schema or "none" for servers without it).

The SDKs' own retries are disabled (max_retries=0); `call_with_retries` retries 429, 5xx,
timeouts and connection errors up to twice and records the count.

Every client gets its HTTP client from `_http_client(sdk, timeout)`, built on one process-wide
SSL context (`shared_ssl_context()`): left to themselves the SDKs load the CA bundle anew
for every client, ~25 ms of CPU under the GIL, which serialises a round's 50 agents.
"""

from __future__ import annotations

import json
import ssl
import threading
from typing import Any

import anthropic
import httpx2
import openai

from agents.context import AgentContext
from agents.decision import DECISION_SCHEMA
from agents.providers.base import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECONDS,
    STATUS_ERROR,
    AgentResponse,
    CallResult,
    PermanentError,
    RetryableError,
    call_with_retries,
    config_float,
    config_int,
    resolve_api_key,
    setting_value,
)

TOOL_NAME = "submit_decision"
DEFAULT_BASE_URLS = {
    "deepseek": "https://api.deepseek.com",
    "qwen": "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
}
# response_format per provider unless llm_config.response_format says otherwise.
DEFAULT_RESPONSE_FORMATS = {
    "openai": "json_schema",
    "azure_openai": "json_schema",
    "deepseek": "json_object",
    "qwen": "json_object",
    "openai_compatible": "json_object",
}
RESPONSE_FORMATS = ("json_schema", "json_object", "none")
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


def _translate(exc: Exception) -> Exception:
    """SDK exception -> RetryableError / PermanentError (both SDKs share the shape)."""
    if isinstance(exc, (openai.APITimeoutError, anthropic.APITimeoutError)):
        return RetryableError(f"timed out: {exc}", timeout=True)
    if isinstance(exc, (openai.APIConnectionError, anthropic.APIConnectionError)):
        return RetryableError(f"connection error: {exc}")
    if isinstance(exc, (openai.APIStatusError, anthropic.APIStatusError)):
        status = exc.status_code
        message = f"HTTP {status}: {str(exc)[:500]}"
        if status == 429 or status >= 500:
            return RetryableError(message)
        return PermanentError(message)
    return exc


class AnthropicAgent:
    provider = "anthropic"

    def __init__(self, *, model: str, config: dict, api_key: str | None):
        self.model = model
        self.config = config or {}
        self.api_key = resolve_api_key(self.provider, self.config, api_key)

    def client(self) -> anthropic.Anthropic:
        timeout = config_float(self.config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        return anthropic.Anthropic(
            api_key=self.api_key,
            base_url=self.config.get("base_url") or None,
            timeout=timeout,
            max_retries=0,
            http_client=_http_client(anthropic, timeout),
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

        def call() -> CallResult:
            try:
                message = client.messages.create(**request)
            except Exception as exc:
                raise _translate(exc) from exc
            structured = None
            texts = []
            for block in message.content or []:
                if getattr(block, "type", "") == "tool_use" and block.name == TOOL_NAME:
                    structured = block.input
                elif getattr(block, "type", "") == "text":
                    texts.append(block.text)
            raw = json.dumps(structured) if structured is not None else ""
            if texts:
                raw = "\n".join(texts) + ("\n" + raw if raw else "")
            usage = message.usage
            return CallResult(
                raw_text=raw,
                structured=structured,
                input_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                output_tokens=int(getattr(usage, "output_tokens", 0) or 0),
            )

        try:
            return call_with_retries(call, config=self.config)
        finally:
            client.close()  # its own connection pool; the SSL context stays shared


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
    def response_format(self) -> str:
        chosen = self.config.get("response_format") or DEFAULT_RESPONSE_FORMATS[self.provider]
        return chosen if chosen in RESPONSE_FORMATS else DEFAULT_RESPONSE_FORMATS[self.provider]

    def client(self) -> openai.OpenAI:
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

    def request(self, context: AgentContext) -> dict[str, Any]:
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
        if temperature is not None:
            request["temperature"] = temperature
        seed = self.config.get("seed")  # sampling seed (tournaments pass each instance's seed)
        if isinstance(seed, int) and not isinstance(seed, bool):
            request["seed"] = seed
        if self.response_format == "json_schema":
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "decision", "schema": DECISION_SCHEMA, "strict": True},
            }
        elif self.response_format == "json_object":
            request["response_format"] = {"type": "json_object"}
        return request

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
        request = self.request(context)

        def call() -> CallResult:
            try:
                completion = client.chat.completions.create(**request)
            except Exception as exc:
                raise _translate(exc) from exc
            choices = completion.choices or []
            if not choices:
                raise PermanentError("the response has no choices")
            message = choices[0].message
            raw = message.content or ""
            if not raw and getattr(message, "refusal", None):
                raw = f"refusal: {message.refusal}"
            usage = completion.usage
            return CallResult(
                raw_text=raw,
                structured=None,  # JSON mode output is text: the parser reads it
                input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0,
                output_tokens=int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0,
            )

        try:
            return call_with_retries(call, config=self.config)
        finally:
            client.close()  # its own connection pool; the SSL context stays shared
