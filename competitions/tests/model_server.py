"""A model server for round tests that says whatever the test wants, byte for byte.

Participants use the `openai_compatible` provider at BASE_URL; respx answers at the SDK's
transport (agents.tests.conftest.HTTPX2Mocker), so the openai SDK builds, sends and parses
real HTTP messages and the round runs its real path. Each participant's model name picks its
`Reply`; `ModelServer.round` says which round's reply the server is giving now.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx

from agents.providers.structured import split_reasoning

BASE_URL = "http://model.test/v1"
CHAT_URL = f"{BASE_URL}/chat/completions"
ABSENT = object()  # a field the server leaves out


@dataclass(frozen=True)
class Reply:
    """One chat completion as a server might send it. `content` and the others may be any
    JSON value (wrong types included); `body` replaces the whole completion when set."""

    content: Any = ""
    reasoning_content: Any = ABSENT
    tool_calls: Any = ABSENT
    usage: Any = ABSENT
    body: Any = ABSENT
    status: int = 200
    # "escaped": json.dumps as servers do (ensure_ascii: NUL as \\u0000, surrogates as \\udxxx);
    # "raw": UTF-8 with lone surrogates written as their (invalid) bytes; "cut": the body stops halfway
    wire: str = "escaped"

    def completion(self, model: str) -> Any:
        if self.body is not ABSENT:
            return self.body
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self.reasoning_content is not ABSENT:
            message["reasoning_content"] = self.reasoning_content
        if self.tool_calls is not ABSENT:
            message["tool_calls"] = self.tool_calls
        body: dict[str, Any] = {
            "id": "chatcmpl-prop",
            "object": "chat.completion",
            "created": 1764000000,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        if self.usage is not ABSENT:
            body["usage"] = self.usage
        return body

    def response(self, model: str) -> httpx.Response:
        if self.wire == "escaped":
            content = json.dumps(self.completion(model)).encode("ascii")
        else:
            content = json.dumps(self.completion(model), ensure_ascii=False).encode("utf-8", "surrogatepass")
            if self.wire == "cut":
                content = content[: len(content) // 2]
        return httpx.Response(self.status, headers={"content-type": "application/json"}, content=content)

    @property
    def clean_text(self) -> str | None:
        """What the invocation's raw_response must give back (through text_restore), when the
        server delivered a plain text answer the SDK can read; None when anything else was sent."""
        plain = (
            self.body is ABSENT
            and self.status == 200
            and self.wire == "escaped"
            and isinstance(self.content, str)
            and self.tool_calls is ABSENT
        )
        return split_reasoning(self.content)[0] if plain else None


def tool_call(arguments: Any) -> list[dict]:
    return [
        {"id": "call_1", "type": "function", "function": {"name": "submit_decision", "arguments": arguments}}
    ]


@dataclass
class ModelServer:
    """replies[(model, round number)]; a model or round with no reply gets a hold."""

    replies: dict[tuple[str, int], Reply] = field(default_factory=dict)
    round: int = 0
    requests: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        model = json.loads(request.content)["model"]
        with self.lock:
            self.requests.append((model, self.round))
            reply = self.replies.get((model, self.round))
        if reply is None:
            reply = Reply(content='{"reasoning": "nothing to say", "actions": [{"action": "hold"}]}')
        return reply.response(model)


def model_config(structured_output: str) -> dict:
    """A participant's llm_config for the server above: no backoff between retries (a 500
    is retried at once), a price so that token counts reach the cost."""
    return {
        "base_url": BASE_URL,
        "structured_output": structured_output,
        "retry_backoff_seconds": 0,
        "timeout_seconds": 5,
        "pricing": {"input_per_mtok": 1, "output_per_mtok": 4},
    }
