"""Structured output for OpenAI-compatible servers: which request shape enforces the decision
schema on which server, and what each server was found to accept.

Every server speaks "OpenAI-compatible" with its own accent. The modes, strongest first:

| mode | what is sent | who enforces it |
|---|---|---|
| `json_schema` | `response_format={"type": "json_schema", "json_schema": {name, schema, strict: true}}` | OpenAI, Azure, vLLM, llama.cpp server, LM Studio, Ollama >= 0.5 |
| `json_object_schema` | `response_format={"type": "json_object", "schema": <schema>}` | llama.cpp server, LM Studio |
| `vllm_guided_json` | `guided_json=<schema>` (extra body) | vLLM |
| `ollama_format` | `format=<schema>` (extra body) | Ollama's native field (its /v1 takes json_schema too) |
| `tools` | one function `submit_decision(<schema>)`, `tool_choice` forcing it | servers with tool calling |
| `json_object` | `response_format={"type": "json_object"}` | valid JSON only, no schema (DeepSeek, DashScope) |
| `none` | nothing | the parser alone |

`auto` (the openai_compatible default) tries them in that order and steps down when the
server refuses the request's shape (a 4xx/5xx whose body names response_format, json_schema,
tools, format, grammar, ...). What a server accepted is remembered per (endpoint, model):
in this process at once, and in `StructuredOutputCapability` when the round records the
invocation, so the next call starts there instead of probing again.

The in-process memory exists because agents are called on the round's worker threads,
which must not open database connections; `agents.selectors.structured_output_capabilities_load`
fills it from the table on the round's own thread.
"""

from __future__ import annotations

import re
import threading

from agents.decision import DECISION_SCHEMA

AUTO = "auto"
JSON_SCHEMA = "json_schema"
JSON_OBJECT_SCHEMA = "json_object_schema"
VLLM_GUIDED_JSON = "vllm_guided_json"
OLLAMA_FORMAT = "ollama_format"
TOOLS = "tools"
JSON_OBJECT = "json_object"
NONE = "none"
MODES = (JSON_SCHEMA, JSON_OBJECT_SCHEMA, VLLM_GUIDED_JSON, OLLAMA_FORMAT, TOOLS, JSON_OBJECT, NONE)
SETTINGS = (AUTO,) + MODES
TOOL_NAME = "submit_decision"

# Documented defaults: OpenAI and Azure enforce strict json_schema ("Structured Outputs");
# DeepSeek documents JSON Output as response_format json_object (also for deepseek-reasoner);
# DashScope's OpenAI-compatible mode documents response_format json_object. Anything else
# is negotiated.
DEFAULT_STRUCTURED_OUTPUT = {
    "openai": JSON_SCHEMA,
    "azure_openai": JSON_SCHEMA,
    "deepseek": JSON_OBJECT,
    "qwen": JSON_OBJECT,
    "openai_compatible": AUTO,
}
# The older llm_config.response_format key still chooses a fixed mode when set.
LEGACY_RESPONSE_FORMATS = (JSON_SCHEMA, JSON_OBJECT, NONE)

# A refusal of the request's shape names what it refused. Statuses: 400/415/422 are how
# servers say "bad request", and several (llama.cpp, older vLLM, LM Studio) answer 500 for a
# schema they cannot turn into a grammar.
_STRUCTURED_OUTPUT_WORDS = re.compile(
    r"response_format|json_schema|json_object|\bschema\b|guided_json|grammar|\btools?\b"
    r"|tool_choice|function|\bformat\b|structured output",
    re.IGNORECASE,
)
_PARAMETER_WORDS = re.compile(r"\btemperature\b|\btop_p\b|\bmax_tokens\b|\bmax_completion_tokens\b", re.IGNORECASE)
_SHAPE_STATUSES = (400, 415, 422)


def structured_output_setting(provider: str, config: dict | None) -> str:
    """The participant's choice: llm_config.structured_output, else the legacy
    response_format, else the provider's documented default (auto for unknown servers)."""
    config = config or {}
    chosen = config.get("structured_output")
    if chosen in SETTINGS:
        return chosen
    legacy = config.get("response_format")
    if legacy in LEGACY_RESPONSE_FORMATS:
        return legacy
    return DEFAULT_STRUCTURED_OUTPUT.get(provider, AUTO)


def mode_ladder(setting: str, remembered: str | None = None) -> tuple[str, ...]:
    """The modes to try, in order: a fixed setting alone; auto from the remembered mode down
    (a server that refused json_schema yesterday is not asked again every round)."""
    if setting != AUTO:
        return (setting,)
    if remembered in MODES:
        return MODES[MODES.index(remembered) :]
    return MODES


def request_with_mode(request: dict, mode: str) -> dict:
    """`request` (an SDK chat.completions.create kwargs dict) with `mode`'s fields added."""
    request = dict(request)
    if mode == JSON_SCHEMA:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "decision", "schema": DECISION_SCHEMA, "strict": True},
        }
    elif mode == JSON_OBJECT_SCHEMA:
        request["response_format"] = {"type": "json_object", "schema": DECISION_SCHEMA}
    elif mode == VLLM_GUIDED_JSON:
        request["extra_body"] = {**request.get("extra_body", {}), "guided_json": DECISION_SCHEMA}
    elif mode == OLLAMA_FORMAT:
        request["extra_body"] = {**request.get("extra_body", {}), "format": DECISION_SCHEMA}
    elif mode == TOOLS:
        request["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": TOOL_NAME,
                    "description": "Submit this round's trading decision.",
                    "parameters": DECISION_SCHEMA,
                },
            }
        ]
        request["tool_choice"] = {"type": "function", "function": {"name": TOOL_NAME}}
    elif mode == JSON_OBJECT:
        request["response_format"] = {"type": "json_object"}
    return request


def is_shape_rejection(status: int, body: str) -> bool:
    """Did the server refuse the request's shape (not the key, the model name, the rate)?"""
    if status in (401, 403, 404, 408, 409, 429):
        return False
    if status not in _SHAPE_STATUSES and status < 500:
        return False
    return bool(_STRUCTURED_OUTPUT_WORDS.search(body or "") or _PARAMETER_WORDS.search(body or ""))


def names_structured_output(body: str) -> bool:
    """Does a refusal name the structured output (so a weaker mode may pass)? A refusal that
    names only a parameter (max_tokens too large) would refuse every mode alike."""
    return bool(_STRUCTURED_OUTPUT_WORDS.search(body or ""))


def endpoint_key(url: str | None) -> str:
    """A server's identity for the capability memory: its base URL, lowercased, no slash."""
    return (url or "").strip().rstrip("/").lower()[:300]


class _Capabilities:
    """(endpoint, model) -> the strongest mode the server accepted, shared by all threads."""

    def __init__(self):
        self._modes: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.loaded = False

    def get(self, endpoint: str, model: str) -> str | None:
        with self._lock:
            return self._modes.get((endpoint_key(endpoint), model))

    def set(self, endpoint: str, model: str, mode: str) -> None:
        with self._lock:
            self._modes[(endpoint_key(endpoint), model)] = mode

    def replace_all(self, modes: dict[tuple[str, str], str]) -> None:
        with self._lock:
            self._modes = {(endpoint_key(e), m): mode for (e, m), mode in modes.items()}
            self.loaded = True

    def clear(self) -> None:
        with self._lock:
            self._modes = {}
            self.loaded = False


capabilities = _Capabilities()

# Reasoning models that take no temperature, by name: OpenAI's o-series and gpt-5 (not
# gpt-5-chat) refuse any but the default; DeepSeek documents that deepseek-reasoner ignores
# temperature/top_p (and errors on logprobs). A gateway prefix (openai/o3-mini) is allowed.
_NO_TEMPERATURE_MODELS = re.compile(r"^(?:.*/)?(?:o\d(?:[-.].*)?|gpt-5(?!-chat).*|deepseek-reasoner.*)$")


def rejects_temperature(model: str) -> bool:
    return bool(_NO_TEMPERATURE_MODELS.match((model or "").strip().lower()))


_THINK = re.compile(r"^\s*<think>(.*?)(?:</think>|$)", re.DOTALL)


def split_reasoning(content: str) -> tuple[str, str]:
    """(answer, reasoning) of a reply that opens with <think>...</think> (QwQ, R1 distills
    served raw). A draft JSON in the thinking must not be taken for the decision."""
    match = _THINK.match(content or "")
    if not match:
        return content or "", ""
    return content[match.end() :].lstrip(), match.group(1).strip()


__all__ = [
    "AUTO",
    "DEFAULT_STRUCTURED_OUTPUT",
    "MODES",
    "SETTINGS",
    "capabilities",
    "endpoint_key",
    "rejects_temperature",
    "is_shape_rejection",
    "mode_ladder",
    "request_with_mode",
    "split_reasoning",
    "structured_output_setting",
]
