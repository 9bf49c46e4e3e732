"""Any model output -> a validated Decision, or an explained invalid_response.

Order of attempts:
1. the provider's native structured output (Anthropic tool input, OpenAI json_schema), if any;
2. the first decision-shaped JSON object in the text: fenced ```json blocks first, then
   the text's outermost objects in order, then objects nested in them. Arrays are only taken when they are lists of action
   objects, so a number array inside the reasoning ("closes [1, 2, 3]") is never a decision;
3. each candidate is also tried after common repairs: trailing commas, single quotes /
   Python literals (True, None), smart quotes, comments.

Every decoded payload passes agents.boundary.json_storable before the validator reads it, so
NaN/Infinity reach the validator as text it rejects (that action only) and NUL or lone
surrogates in its strings are escaped. Numbers as strings and symbol aliases are repaired
by the validator (agents.decision).
Nothing decision-shaped: status invalid_response, the decision is hold. Pure: no Django.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agents.boundary import json_storable
from agents.decision import (
    Decision,
    DecisionRules,
    DecisionShapeError,
    decision_validate,
    hold_decision,
    is_decision_shaped,
)

STATUS_SUCCESS = "success"
STATUS_INVALID_RESPONSE = "invalid_response"

# A decision is a few hundred characters; max_tokens caps a real reply far below this.
MAX_RESPONSE_CHARS = 200_000
# Scanning stops after this many bracket/quote characters have been walked in total (over all
# start positions), so a hostile reply ("{{{{..." x 100k) costs bounded time.
SCAN_BUDGET = 300_000
DECODE_BUDGET = 3_000_000

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[^\n]*\n(.*?)```", re.DOTALL)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})
_LINE_COMMENT = re.compile(r"(?m)^\s*//.*$")


@dataclass(frozen=True)
class ParseResult:
    status: str  # success | invalid_response
    decision: Decision
    error: str = ""
    repairs: tuple[str, ...] = field(default=())
    source: str = ""  # structured | fenced | text | ""
    # Characters in the decoded JSON (e.g. "\\u0000" escapes) made storable by agents.boundary.
    escaped_characters: int = 0

    @property
    def ok(self) -> bool:
        return self.status == STATUS_SUCCESS


def _invalid(error: str) -> ParseResult:
    return ParseResult(
        status=STATUS_INVALID_RESPONSE,
        decision=hold_decision("invalid response: " + error),
        error=error,
    )


_STRUCTURAL = re.compile(r"[{}\[\]\"'\\]")


def _balanced_span(text: str, start: int, counter: list[int]) -> int | None:
    """End index (exclusive) of the bracketed value starting at text[start], string-aware.

    Understands both quote styles so that single-quoted pseudo-JSON is spanned correctly.
    Returns None when the value is truncated (never closes). Jumps between structural
    characters with a regex, so long prose costs little.
    """
    stack = ["}" if text[start] == "{" else "]"]
    quote: str | None = None
    skip_next = False
    prev_escape = -2
    for match in _STRUCTURAL.finditer(text, start + 1):
        counter[0] += 1
        char = match.group()
        index = match.start()
        if quote:
            if skip_next:
                skip_next = False
                if index == prev_escape + 1:
                    continue
            if char == "\\":
                skip_next = True
                prev_escape = index
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            # an apostrophe inside a word (it's) is not a quote in pseudo-JSON
            if char == "'" and index > 0 and text[index - 1].isalnum():
                continue
            quote = char
            skip_next = False
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if char != stack[-1]:
                return None
            stack.pop()
            if not stack:
                return index + 1
    return None


def _repairs_for(fragment: str) -> list[tuple[str, Any]]:
    """Decoded values of `fragment`, plain first, then after each repair, lazily ordered."""
    attempts: list[tuple[str, Any]] = []
    try:
        attempts.append(("", json.loads(fragment)))
        return attempts
    except (ValueError, RecursionError):
        pass
    repaired = fragment.translate(_SMART_QUOTES)
    repaired = _LINE_COMMENT.sub("", repaired)
    repaired = _TRAILING_COMMA.sub(r"\1", repaired)
    try:
        attempts.append(("trailing_commas", json.loads(repaired)))
        return attempts
    except (ValueError, RecursionError):
        pass
    # Python-literal style: single quotes, True/False/None.
    try:
        value = ast.literal_eval(repaired)
        attempts.append(("single_quotes", value))
        return attempts
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    pythonish = re.sub(r"\btrue\b", "True", repaired)
    pythonish = re.sub(r"\bfalse\b", "False", pythonish)
    pythonish = re.sub(r"\bnull\b", "None", pythonish)
    try:
        attempts.append(("single_quotes", ast.literal_eval(pythonish)))
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        pass
    return attempts


def _as_decision_payload(value: Any) -> Any | None:
    if is_decision_shaped(value):
        return value
    # A bare list of action objects (never a list of numbers or strings).
    if isinstance(value, list) and value and all(isinstance(v, dict) and "action" in v for v in value):
        return {"reasoning": "", "actions": value}
    return None


class _Scan:
    """What the scan saw (to explain a failure precisely) and the work it has done."""

    def __init__(self):
        self.complete_values = 0  # JSON values decoded that were not decisions
        self.steps = [0]  # structural characters walked by _balanced_span
        self.decoded_chars = 0  # characters handed to the decoders

    def decode(self, fragment: str):
        self.decoded_chars += len(fragment) * 3  # up to three decoders per fragment
        return _repairs_for(fragment)

    @property
    def exhausted(self) -> bool:
        return self.steps[0] > SCAN_BUDGET or self.decoded_chars > DECODE_BUDGET


def _matched_spans(text: str) -> list[tuple[int, int]]:
    """Every balanced {...} / [...] span, in one linear pass, ordered by start.

    Quotes count only inside brackets (prose apostrophes and quotes around JSON are
    ignored); a mismatched closer resets the stack (what came before stays unmatched).
    """
    stack: list[tuple[int, str]] = []
    spans: list[tuple[int, int]] = []
    quote: str | None = None
    skip_index = -1
    for match in _STRUCTURAL.finditer(text):
        char = match.group()
        index = match.start()
        if quote:
            if index == skip_index:
                continue
            if char == "\\":
                skip_index = index + 1
            elif char == quote:
                quote = None
            continue
        if char in "\"'":
            if stack and not (char == "'" and index > 0 and text[index - 1].isalnum()):
                quote = char
            continue
        if char in "{[":
            stack.append((index, "}" if char == "{" else "]"))
        elif char in "}]":
            if stack and stack[-1][1] == char:
                start, _ = stack.pop()
                spans.append((start, index + 1))
            else:
                stack.clear()
    spans.sort()
    return spans


def _is_candidate_start(text: str, index: int) -> bool:
    # Only objects, and arrays of objects (possible action lists): never a number array.
    return text[index] == "{" or bool(re.match(r"\[\s*\{", text[index : index + 50]))


def _candidates(text: str, scan: _Scan):
    """Yield (source, repair, payload) for each decision-shaped value, in priority order."""
    for match in _FENCE.finditer(text):
        for repair, value in scan.decode(match.group(2).strip()):
            payload = _as_decision_payload(value)
            if payload is not None:
                yield "fenced", repair, payload
            else:
                scan.complete_values += 1
        # The fence may hold prose plus JSON: fall through to scanning the whole text.
    seen: set[tuple[int, int]] = set()

    def decoded(start: int, end: int):
        seen.add((start, end))
        for repair, value in scan.decode(text[start:end]):
            payload = _as_decision_payload(value)
            if payload is not None:
                yield "text", repair, payload
            else:
                scan.complete_values += 1

    # Fast path: spans from one linear pass; outermost values first (in order), then the
    # ones nested inside them (a decision wrapped in {"analysis": ..., "decision": {...}}).
    spans = _matched_spans(text)
    outermost, nested, outer_end = [], [], -1
    for start, end in spans:
        if start >= outer_end:
            outermost.append((start, end))
            outer_end = end
        else:
            nested.append((start, end))
    for start, end in outermost + nested:
        if scan.exhausted:
            return
        if _is_candidate_start(text, start):
            yield from decoded(start, end)
    # Slow path, for text whose prose confused the linear pass (e.g. an unclosed quote
    # before the JSON): rescan from every start position, within the budget.
    for index, char in enumerate(text):
        if char not in "{[" or not _is_candidate_start(text, index):
            continue
        if scan.exhausted:
            return
        end = _balanced_span(text, index, scan.steps)
        if end is not None and (index, end) not in seen:
            yield from decoded(index, end)


def _whole_text_payload(text: str) -> Any | None:
    """The common reply (every baseline, JSON-mode models): the text is one JSON decision
    object and nothing else. The scan would take exactly this object first (the outermost
    span, decoded plainly), so decoding it directly gives the same result without the scan.
    A fence anywhere in it could hold a decision the scan prefers: then no shortcut."""
    stripped = text.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")) or "```" in stripped:
        return None
    try:
        value = json.loads(stripped)
    except (ValueError, RecursionError):
        return None
    return value if is_decision_shaped(value) else None


def parse_response(text: str | None, *, rules: DecisionRules, structured: Any = None) -> ParseResult:
    """Parse a model reply into a Decision validated against `rules`.

    `structured` is the provider's native structured output (a dict, or a JSON string) and
    wins when it is decision-shaped; `text` is the raw reply, scanned otherwise.
    """
    if structured is not None:
        payload = structured
        if isinstance(structured, str):
            try:
                payload = json.loads(structured)
            except ValueError:
                payload = None
        payload = _as_decision_payload(payload)
        if payload is not None:
            payload, escaped = json_storable(payload)
            return ParseResult(
                STATUS_SUCCESS, decision_validate(payload, rules), source="structured", escaped_characters=escaped
            )

    if text is None or not isinstance(text, str) or not text.strip():
        return _invalid("empty response")
    if len(text) > MAX_RESPONSE_CHARS:
        return _invalid(f"response too large ({len(text)} characters, limit {MAX_RESPONSE_CHARS})")

    payload = _whole_text_payload(text)
    if payload is not None:
        payload, escaped = json_storable(payload)
        try:
            return ParseResult(
                STATUS_SUCCESS, decision_validate(payload, rules), source="text", escaped_characters=escaped
            )
        except DecisionShapeError:  # pragma: no cover - is_decision_shaped already checked
            pass

    scan = _Scan()
    for source, repair, payload in _candidates(text, scan):
        payload, escaped = json_storable(payload)
        try:
            decision = decision_validate(payload, rules)
        except DecisionShapeError:  # pragma: no cover - _as_decision_payload already checked
            continue
        return ParseResult(
            STATUS_SUCCESS,
            decision,
            repairs=(repair,) if repair else (),
            source=source,
            escaped_characters=escaped,
        )

    if scan.complete_values:
        return _invalid("no JSON decision object found: the JSON in the response has no 'actions' list")
    if "{" in text:
        return _invalid("no complete JSON decision object found (truncated or malformed JSON)")
    return _invalid("no JSON decision object found in the response")
