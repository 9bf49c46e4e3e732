"""The one place model text enters the house: whatever a provider returns is made storable here.

A model (or a server in front of it) may say anything: NUL bytes, raw or as ``\\u0000`` in
JSON; lone UTF-16 surrogates (``\\ud800``) that no UTF-8 encoder accepts; ``NaN``,
``Infinity`` or ``1e400`` where a number belongs; Python literals (tuples, sets, bytes,
complex numbers) when the parser repairs pseudo-JSON. PostgreSQL refuses NUL in text and
jsonb, both backends refuse lone surrogates, and jsonb refuses NaN/Infinity. Refusal at
INSERT time would lose the whole round's answer, so everything passes here first:

- `text_storable(text)`: NUL and lone surrogates become the visible, reversible escape
  ``⧵uXXXX`` (U+29F5 REVERSE SOLIDUS OPERATOR, then ``u`` and four hex digits); a literal
  ``⧵`` is doubled only when the text needed escaping, so `text_restore` gives back exactly
  what was said. The count of escaped characters is returned so the row can say so.
- `json_storable(value)`: a value that `json.dumps(..., allow_nan=False)` accepts and
  PostgreSQL jsonb stores: strings (keys too) escaped as above, non-finite floats as the
  strings "NaN" / "Infinity" / "-Infinity" (the validator then rejects the action that
  carries them, with a reason), Decimals as strings, tuples/sets as lists, anything else as
  its repr, nesting deeper than MAX_JSON_DEPTH cut.

Pure: no Django, no SDK. The parser admits every decoded payload through `json_storable`,
`invoke_agent` admits every provider response through `response_admit`, and the invocation
row is built through `text_storable` / `json_storable` once more, so no path reaches the
database without passing here.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from decimal import Decimal
from typing import Any

ESCAPE = "\u29f5"  # ⧵: visible in any page or admin, and rare in model output
# NUL (PostgreSQL text and jsonb refuse it) and lone surrogates (no UTF-8 encoding exists).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ESCAPED = re.compile(ESCAPE + "(?:" + ESCAPE + "|u([0-9a-f]{4}))")
MAX_JSON_DEPTH = 64
TOO_DEEP = "[nested too deep]"
TOO_LARGE = "[integer too large to write]"
# What json.dumps (ensure_ascii) writes for NUL and for surrogates: the fast path looks for it.
_UNSTORABLE_IN_JSON = re.compile(r"\\u(?:0000|d[89a-f][0-9a-f]{2})")
_ENCODER = json.JSONEncoder(allow_nan=False)  # built once: json.dumps(**options) builds one per call


def text_storable(text: str) -> tuple[str, int]:
    """(text every backend stores, number of characters escaped). Unchanged when clean."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if "\x00" not in text:  # the common case, decided without a regex scan
        if text.isascii():
            return text, 0
        try:
            text.encode("utf-8")
            return text, 0
        except UnicodeEncodeError:
            pass
    count = len(_UNSTORABLE.findall(text))
    if not count:
        return text, 0
    doubled = text.replace(ESCAPE, ESCAPE + ESCAPE)
    return _UNSTORABLE.sub(lambda m: f"{ESCAPE}u{ord(m.group()):04x}", doubled), count


def text_restore(text: str) -> str:
    """The text exactly as the model said it, from a `text_storable` result that escaped
    something (a text with no ``⧵u`` escape was stored as said)."""
    if ESCAPE + "u" not in text:
        return text
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)) if m.group(1) else ESCAPE, text)


def _number(value: float) -> float | str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class _Counter:
    __slots__ = ("escaped",)

    def __init__(self):
        self.escaped = 0

    def text(self, value: str) -> str:
        stored, count = text_storable(value)
        self.escaped += count
        return stored


def _storable(value: Any, counter: _Counter, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return counter.text(value)
    if isinstance(value, int):
        return value if value.bit_length() < 13_000 else TOO_LARGE  # ~3,900 digits: str() works
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Decimal):
        return str(value)
    if depth >= MAX_JSON_DEPTH:
        return TOO_DEEP
    if isinstance(value, dict):
        return {
            counter.text(key if isinstance(key, str) else str(_storable(key, counter, depth + 1))): _storable(
                item, counter, depth + 1
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_storable(item, counter, depth + 1) for item in items]
    if isinstance(value, (bytes, bytearray)):
        return counter.text(bytes(value).decode("utf-8", errors="backslashreplace"))
    return counter.text(repr(value)[:2000])


def json_storable(value: Any) -> tuple[Any, int]:
    """(a JSON value safe for json.dumps(allow_nan=False) and jsonb, characters escaped)."""
    # The common case (every well-formed decision) is checked in one C-speed dump: no NaN, no
    # foreign type, and no NUL or surrogate among the escapes ensure_ascii wrote.
    try:
        dumped = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        pass
    else:
        if not _UNSTORABLE_IN_JSON.search(dumped):
            return value, 0
    counter = _Counter()
    try:
        stored = _storable(value, counter, 0)
    except RecursionError:  # a cyclic or absurd structure: keep that it was there
        return TOO_DEEP, counter.escaped
    return stored, counter.escaped


def response_admit(response):
    """An AgentResponse whose texts and structured output are storable, with
    `escaped_characters` counting what was escaped. The only door from a provider inward."""
    counter = _Counter()
    raw_text = counter.text(response.raw_text or "")
    reasoning_text = counter.text(response.reasoning_text or "")
    error = counter.text(response.error or "")
    structured = response.structured
    if structured is not None:
        structured, escaped = json_storable(structured)
        counter.escaped += escaped
    tokens = _token_count(response.input_tokens), _token_count(response.output_tokens)
    unchanged = tokens == (response.input_tokens, response.output_tokens)
    if not counter.escaped and structured is response.structured and unchanged:
        return response
    return replace(
        response,
        raw_text=raw_text,
        reasoning_text=reasoning_text,
        error=error,
        structured=structured,
        escaped_characters=response.escaped_characters + counter.escaped,
        input_tokens=tokens[0],
        output_tokens=tokens[1],
    )


# The token columns' range on every backend (PositiveIntegerField). A server's usage block is
# what it says: 10**30 tokens would overflow the cost's Decimal context and the INSERT.
MAX_TOKEN_COUNT = 2**31 - 1


def _token_count(value) -> int:
    if isinstance(value, int) and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    try:
        return min(max(int(value), 0), MAX_TOKEN_COUNT)
    except (TypeError, ValueError, OverflowError):
        return 0


__all__ = ["ESCAPE", "MAX_JSON_DEPTH", "json_storable", "response_admit", "text_restore", "text_storable"]
