"""Writes for the agents app: the Invocation row and its per-action outcomes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import cache as decision_cache
from agents.boundary import json_storable, text_storable
from agents.context import AgentContext
from agents.decision import MAX_TEXT_FIELD_CHARS, Decision, action_summary, action_to_dict
from agents.invoke import AgentOutcome
from agents.models import Invocation, StructuredOutputCapability
from gauntlet.db import insert_rows, new_row
from agents.providers.structured import capabilities, endpoint_key

# Raw replies are stored whole up to this size (a hostile 2 MB reply is cut, and says so).
MAX_RAW_RESPONSE_CHARS = 200_000
OUTCOME_PENDING = "pending"
OUTCOME_REJECTED = "rejected"


def _raw_summary(raw) -> str:
    """One line for an action the validator refused (it may be any JSON value)."""
    if not isinstance(raw, dict):
        return str(raw)[:80]
    parts = [str(raw.get(key)) for key in ("action", "side", "symbol") if raw.get(key) not in (None, "")]
    sizes = [
        f"{key} {raw[key]}"
        for key in ("quantity", "notional_usd", "leverage")
        if raw.get(key) not in (None, "")
    ]
    return " ".join(parts + sizes)[:160] or "(empty action)"


def initial_action_outcomes(decision: Decision) -> list[dict]:
    """Validator rejections now; valid actions 'pending' until the round executes them.

    Each item: index (position in the model's list), action (dict), summary (one line for
    histories and pages), status ("pending" | "rejected"), and for rejections code + reason.
    """
    outcomes = [
        {
            "index": index,
            "action": action_to_dict(action),
            "summary": action_summary(action),
            "status": OUTCOME_PENDING,
        }
        for index, action in zip(decision.indexes, decision.actions)
        if action.action != "hold"
    ]
    data = decision.to_dict()["rejected"]
    outcomes += [
        {
            "index": r["index"],
            "action": r["raw"],
            "summary": _raw_summary(r["raw"]),
            "status": OUTCOME_REJECTED,
            "code": r["code"],
            "reason": r["reason"],
        }
        for r in data
    ]
    return sorted(outcomes, key=lambda item: item["index"])


def action_counts(outcomes) -> tuple[int, int]:
    """Actions proposed (holds excluded) and how many were rejected, by validator or engine,
    from Invocation.action_outcomes (a JSON string, as some backends return it, is decoded).

    One entry per action index: a later entry for the same index (the executed outcome of
    a "pending" action) replaces the earlier one.
    """
    if isinstance(outcomes, str):
        try:
            outcomes = json.loads(outcomes)
        except ValueError:
            return 0, 0
        return action_counts(outcomes) if isinstance(outcomes, (list, str)) else (0, 0)
    if not isinstance(outcomes, list):
        return 0, 0
    last: dict[object, str] = {}
    for position, item in enumerate(outcomes):
        if isinstance(item, dict):
            last[item.get("index", f"#{position}")] = str(item.get("status", ""))
    return len(last), sum(1 for status in last.values() if status == "rejected")


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... cut: {len(text) - limit} more characters]"


@dataclass(frozen=True)
class InvocationAnswer:
    """One agent's answer in one round, as invoke_agent gave it, ready to be recorded."""

    participant_id: int
    round_id: int
    snapshot_id: int | None
    provider: str
    model: str
    context: AgentContext
    outcome: AgentOutcome


def _text(value: str) -> str:
    # invoke_agent already admitted the response through agents.boundary; this is the last
    # guard for anything that reached an outcome another way (a round-made timeout, a test).
    return text_storable(value or "")[0]


def _json(value):
    return json_storable(value)[0]


def _invocation_row(answer: InvocationAnswer) -> Invocation:
    outcome = answer.outcome
    response = outcome.response
    error = outcome.error
    if outcome.cost_note and not outcome.cost_note.startswith(("priced as", "built-in")):
        error = (error + "\n" if error else "") + outcome.cost_note
    if outcome.notes:
        error = (error + "\n" if error else "") + "; ".join(outcome.notes)
    outcomes = _json(initial_action_outcomes(outcome.decision))
    actions, rejected = action_counts(outcomes)
    raw_response, escaped = text_storable(response.raw_text or "")
    reasoning_text, escaped_reasoning = text_storable(response.reasoning_text or "")
    return new_row(
        Invocation,
        participant_id=answer.participant_id,
        round_id=answer.round_id,
        snapshot_id=answer.snapshot_id,
        provider=answer.provider,
        model=_text(answer.model)[:200],
        prompt_version=answer.context.prompt_version,
        system_prompt=_text(answer.context.system_prompt),
        user_prompt=_text(answer.context.user_prompt),
        raw_response=_cut(raw_response, MAX_RAW_RESPONSE_CHARS),
        reasoning_text=_cut(reasoning_text, MAX_RAW_RESPONSE_CHARS),
        structured_output_mode=(response.structured_output_mode or "")[:24],
        escaped_characters=max(0, int(response.escaped_characters)) + escaped + escaped_reasoning,
        parsed_decision=_json(outcome.decision.to_dict()),
        action_outcomes=outcomes,
        actions_count=actions,
        rejected_actions_count=rejected,
        status=outcome.status,
        error=_cut(_text(error), MAX_TEXT_FIELD_CHARS * 5),
        latency_ms=max(0, int(response.latency_ms)),
        input_tokens=max(0, int(response.input_tokens)),
        output_tokens=max(0, int(response.output_tokens)),
        cost_usd=outcome.cost_usd,
        retries=max(0, int(response.retries)),
        cached=response.cached,  # decision cache (agents.cache)
        cache_key=response.cache_key,
        limit_wait_ms=max(0, int(response.limit_wait_ms)),
    )


def invocation_record(
    *,
    participant_id: int,
    round_id: int,
    snapshot_id: int | None,
    provider: str,
    model: str,
    context: AgentContext,
    outcome: AgentOutcome,
) -> tuple[Invocation, bool]:
    """Write the one row for (participant, round). Returns (row, created).

    If the row already exists (a resumed round), it is returned untouched: the first
    invocation is the one that counts and was paid for.

    Insert first, look up only on conflict: one INSERT per agent per round in the common
    case (get_or_create would SELECT first). The insert runs in its own atomic block (a
    savepoint inside a caller's transaction) so a duplicate leaves the caller's
    transaction usable for the lookup.
    """
    answer = InvocationAnswer(participant_id, round_id, snapshot_id, provider, model, context, outcome)
    row = _invocation_row(answer)
    structured_output_capabilities_remember([answer])
    try:
        with transaction.atomic():
            row.save(force_insert=True)
        return row, True
    except IntegrityError:
        # Only the (participant, round) uniqueness means "already recorded"; any other
        # violation (a missing participant, round or snapshot) is the caller's to see.
        existing = Invocation.objects.filter(participant_id=participant_id, round_id=round_id).first()
        if existing is None:
            raise
        return existing, False


def invocations_record(answers: list[InvocationAnswer], *, look_up_conflicts: bool = True) -> list[tuple[Invocation, bool]]:
    """invocation_record for several answers at once: one INSERT for all of them in the
    common case; if any row already exists, each is recorded on its own as above.

    look_up_conflicts=False, for a caller whose own transaction should fail rather than go
    on if another runner recorded this round meanwhile: no savepoint, the IntegrityError
    propagates (and the caller's transaction is unusable).
    """
    if not answers:
        return []
    decision_cache.answers_store(answers)  # decision cache (agents.cache): keep what models answered
    rows = [_invocation_row(answer) for answer in answers]
    structured_output_capabilities_remember(answers)
    if not look_up_conflicts:
        insert_rows(Invocation, rows)
        return [(row, True) for row in rows]
    try:
        with transaction.atomic():
            insert_rows(Invocation, rows)
        return [(row, True) for row in rows]
    except IntegrityError:
        return [
            invocation_record(
                participant_id=a.participant_id, round_id=a.round_id, snapshot_id=a.snapshot_id,
                provider=a.provider, model=a.model, context=a.context, outcome=a.outcome,
            )
            for a in answers
        ]


@transaction.atomic
def invocation_outcome_set(*, invocation_id: int, index: int, status: str, **details) -> Invocation:
    """Record what became of action `index` (e.g. status="filled", order_id=12; or
    status="rejected", code="insufficient_margin", reason="...")."""
    invocation = Invocation.objects.select_for_update().get(pk=invocation_id)
    details = _json(details)
    outcomes = list(invocation.action_outcomes)
    for item in outcomes:
        if item.get("index") == index:
            item.update({"status": status, **details})
            break
    else:
        outcomes.append({"index": index, "status": status, **details})
        outcomes.sort(key=lambda item: item.get("index", 0))
    invocation.action_outcomes = outcomes
    invocation.save(update_fields=["action_outcomes"])
    return invocation


def structured_output_capabilities_remember(answers: list[InvocationAnswer]) -> int:
    """Store what auto negotiation learned in these answers: per (server, model), the mode the
    server accepted. One upsert (INSERT ... ON CONFLICT DO UPDATE), so two runners learning
    the same thing at once never raise inside the round's transaction. Returns rows written.

    Runs on the recording (round) thread: the provider threads only told the in-process
    memory. A process that has not read the table yet reads it now, so its next round's calls
    start from what other processes learned.
    """
    if not capabilities.loaded:
        from agents.selectors import structured_output_capabilities_load

        structured_output_capabilities_load()
    learned: dict[tuple[str, str], str] = {}
    for answer in answers:
        response = answer.outcome.response
        if response.capability_learned and response.structured_output_mode and response.endpoint:
            learned[(endpoint_key(response.endpoint), answer.model[:200])] = response.structured_output_mode
    if not learned:
        return 0
    now = timezone.now()
    StructuredOutputCapability.objects.bulk_create(
        [
            StructuredOutputCapability(base_url=base_url, model=model, mode=mode, updated_at=now)
            for (base_url, model), mode in sorted(learned.items())
        ],
        update_conflicts=True,
        unique_fields=["base_url", "model"],
        update_fields=["mode", "updated_at"],
    )
    for (base_url, model), mode in learned.items():
        capabilities.set(base_url, model, mode)
    return len(learned)
