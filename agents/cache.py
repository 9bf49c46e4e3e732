"""Decision cache: a model answer recorded once, returned again for the same question.

The key is a SHA-256 over everything that decides an answer: provider, model, the sampling
parameters of llm_config, the system prompt, the user prompt and the instance seed (the
competition's seed). A hit returns the recorded raw text, structured output and tokens as
the model's answer, at zero cost, and the invocation says `cached`. So a run whose every
question is in the cache replays without a single model call, and, since the rest of a
round is deterministic, with the same fills and equity.

Participants opt in through llm_config["decision_cache"] (tournaments set it on every
participant of their runs): "read_write" looks up and records, "read_only" looks up and
answers a miss with an error (the agent holds). Absent or "off": no lookup at all, and no
database access from invoke_agent.

Only answers the provider gave successfully are recorded: an error or a timeout is asked
again next time. Both ends run on the round's own thread and database connection: the
lookup (`recorded_answers`, one statement for a round's agents) before any model is asked, so only misses go out to the agent
threads, which never touch the database; the store (`answers_store`) with the invocation
rows (agents.services.invocations_record). A lookup cannot then depend on what another
thread holds locked, and a hit is a hit on every database and every worker pool.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, connections, router, transaction

from agents.context import AgentContext
from agents.providers.base import STATUS_ERROR, STATUS_SUCCESS, AgentResponse

logger = logging.getLogger(__name__)

CONFIG_KEY = "decision_cache"
MODE_OFF = "off"
MODE_READ_WRITE = "read_write"
MODE_READ_ONLY = "read_only"
MODES = (MODE_OFF, MODE_READ_WRITE, MODE_READ_ONLY)
# llm_config entries that change what a model answers (the rest, like timeouts, keys and
# prices, change only whether or what it costs to ask).
SAMPLING_KEYS = (
    "temperature", "top_p", "top_k", "max_tokens", "max_tokens_param", "seed", "response_format",
    "reasoning_effort", "frequency_penalty", "presence_penalty", "stop", "thinking", "deployment",
)  # fmt: skip


def cache_mode(config: dict | None) -> str:
    mode = (config or {}).get(CONFIG_KEY) or MODE_OFF
    return mode if mode in MODES else MODE_OFF


def decision_key(
    *, provider: str, model: str, config: dict | None, system_prompt: str, user_prompt: str, seed: int
) -> str:
    config = config or {}
    sampling = {name: config[name] for name in SAMPLING_KEYS if name in config}
    material = json.dumps(
        {"provider": provider, "model": model, "sampling": sampling, "system": system_prompt,
         "user": user_prompt, "seed": seed},
        sort_keys=True, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def context_key(*, provider: str, model: str, config: dict | None, context: AgentContext) -> str:
    return decision_key(
        provider=provider, model=model, config=config, system_prompt=context.system_prompt,
        user_prompt=context.user_prompt, seed=int(getattr(context.rules, "seed", 0) or 0),
    )


def cached_responses(keys: list[str]) -> dict[str, AgentResponse]:
    """key -> the recorded answer, for the keys found. A database error counts as a miss for
    all of them: the cache must never be the reason an agent could not answer."""
    try:
        found = _entries_read(keys)
    except DatabaseError as exc:
        logger.warning("decision cache lookup failed, treated as a miss: %s", exc)
        return {}
    return {
        key: AgentResponse(raw_text=raw_text, structured=structured, input_tokens=input_tokens,
                           output_tokens=output_tokens, cached=True, cache_key=key)
        for key, (raw_text, structured, input_tokens, output_tokens) in found.items()
    }


# a round's lookups go in one statement; more keys than this (a lineup of hundreds) take several
LOOKUP_CHUNK = 500


def _entries_read(keys: list[str]) -> dict[str, tuple]:
    """key -> (raw_text, structured, input_tokens, output_tokens) of the entries found: one
    statement by the unique key for a round's lookups, without compiling a query each time
    (a cached re-run asks for every model in every round)."""
    from agents.models import DecisionCacheEntry

    meta = DecisionCacheEntry._meta
    connection = connections[router.db_for_read(DecisionCacheEntry)]
    quote = connection.ops.quote_name
    structured_field = meta.get_field("structured")
    columns = ("key", "raw_text", "structured", "input_tokens", "output_tokens")
    select = "SELECT {} FROM {} WHERE {} IN ".format(
        ", ".join(quote(meta.get_field(name).column) for name in columns), quote(meta.db_table),
        quote(meta.get_field("key").column),
    )
    unique = list(dict.fromkeys(keys))
    found = {}
    with connection.cursor() as cursor:
        for start in range(0, len(unique), LOOKUP_CHUNK):
            chunk = unique[start : start + LOOKUP_CHUNK]
            cursor.execute(select + "(" + ", ".join(["%s"] * len(chunk)) + ")", chunk)
            for key, raw_text, structured, input_tokens, output_tokens in cursor.fetchall():
                found[key] = (raw_text, structured_field.from_db_value(structured, None, connection),
                              input_tokens, output_tokens)
    return found


def answers_store(answers) -> int:
    """Record the answers a model gave under a cache key (agents.services.InvocationAnswer),
    on the thread that records the invocations: one INSERT, a key already there keeps its
    answer. Returns how many were offered."""
    from agents.models import DecisionCacheEntry

    entries = []
    for answer in answers:
        response = answer.outcome.response
        if not response.cache_key or response.cached or response.status != STATUS_SUCCESS:
            continue
        parse = answer.outcome.parse
        entries.append(DecisionCacheEntry(
            key=response.cache_key, provider=answer.provider, model=answer.model[:200],
            seed=int(getattr(answer.context.rules, "seed", 0) or 0), raw_text=response.raw_text,
            structured=response.structured, parsed_decision=parse.decision.to_dict() if parse else {},
            input_tokens=response.input_tokens, output_tokens=response.output_tokens,
        ))
    if not entries:
        return 0
    try:
        with transaction.atomic():
            DecisionCacheEntry.objects.bulk_create(entries, ignore_conflicts=True)
    except DatabaseError as exc:  # the answers still count; only their reuse is lost
        logger.warning("decision cache: %s answers not recorded: %s", len(entries), exc)
    return len(entries)


@dataclass(frozen=True)
class Question:
    """One agent's question in a round, as the cache keys it."""

    provider: str
    model: str
    config: dict | None
    context: AgentContext


def recorded_answers(questions: list[Question]) -> list[AgentResponse | None]:
    """What the cache answers for each question, on the caller's thread and connection, in
    one lookup: the recorded answer on a hit; on a read_only miss an error that says the
    model was not called; None when the model is to be asked (cache off, or a read_write miss)."""
    modes = [cache_mode(question.config) for question in questions]
    keys = [
        None if mode == MODE_OFF else context_key(
            provider=question.provider, model=question.model, config=question.config, context=question.context)
        for question, mode in zip(questions, modes, strict=True)
    ]
    wanted = [key for key in keys if key is not None]
    hits = cached_responses(wanted) if wanted else {}
    answers: list[AgentResponse | None] = []
    for mode, key in zip(modes, keys, strict=True):
        if key is None or key in hits or mode == MODE_READ_WRITE:
            answers.append(None if key is None else hits.get(key))
            continue
        answers.append(AgentResponse(
            raw_text="", status=STATUS_ERROR,
            error=f"decision cache miss in read_only mode (key {key[:16]}): the model was not called",
        ))
    return answers


def recorded_answer(*, provider: str, model: str, config: dict | None, context: AgentContext) -> AgentResponse | None:
    """recorded_answers for one question."""
    return recorded_answers([Question(provider, model, config, context)])[0]


def decide(agent: Any, *, provider: str, model: str, config: dict | None, context: AgentContext) -> AgentResponse:
    """agent.decide(context), once `recorded_answer` had nothing: with the cache on, the
    answer carries its key, so the recorder stores it. No database access."""
    if cache_mode(config) == MODE_OFF:
        return agent.decide(context)
    key = context_key(provider=provider, model=model, config=config, context=context)
    return _with_key(agent.decide(context), key)


def _with_key(response: AgentResponse, key: str) -> AgentResponse:
    from dataclasses import replace

    return replace(response, cache_key=key)


# -- export / import (JSON lines) ----------------------------------------------------------

ENTRY_FIELDS = (
    "key", "provider", "model", "seed", "raw_text", "structured", "parsed_decision", "input_tokens", "output_tokens",
)  # fmt: skip


def entries_export(keys) -> list[dict]:
    from agents.models import DecisionCacheEntry

    return list(DecisionCacheEntry.objects.filter(key__in=list(keys)).order_by("key").values(*ENTRY_FIELDS))


def entries_import(rows: list[dict]) -> int:
    """Add recorded answers; a key already present keeps its answer. Returns how many were new."""
    from agents.models import DecisionCacheEntry

    entries = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("key"), str) or len(row["key"]) != 64:
            raise ValueError("a cache line needs a 64-character key")
        entries.append(DecisionCacheEntry(**{name: row[name] for name in ENTRY_FIELDS if name in row}))
    before = DecisionCacheEntry.objects.count()
    DecisionCacheEntry.objects.bulk_create(entries, ignore_conflicts=True, batch_size=500)
    return DecisionCacheEntry.objects.count() - before
