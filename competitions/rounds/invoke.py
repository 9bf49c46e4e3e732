"""Ask the agents: every model at once on a thread pool, the built-in strategies on this
thread meanwhile, each answer written as an Invocation row as it arrives (a resumed round
never calls an agent twice). A model's answer the database refuses becomes an `error`
invocation with the reason, so no model's output can stop the round for the others."""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from django.db import DatabaseError, transaction

from agents.context import AgentContext
from agents.decision import hold_decision
from agents.cache import Question
from agents.invoke import AgentOutcome, answers_from_cache, answers_in_process, invoke_agent
from agents.models import Invocation
from agents.selectors import structured_output_capabilities_load
from agents.providers.base import DEFAULT_TIMEOUT_SECONDS, AgentResponse, config_with_defaults
from agents.services import InvocationAnswer, invocations_record

from ..models import Participant, Round
from .claim import lease_renew, lease_seconds
from .context import InvocationCounts

logger = logging.getLogger(__name__)

# Extra wall time past an agent's own timeout (and its retries) before the round stops waiting.
AGENT_GRACE_SECONDS = 10


@dataclass
class Recorded:
    """The invocations this runner wrote for the round, and whether it wrote all of them."""

    rows: list[Invocation] = field(default_factory=list)
    all_mine: bool = True  # no other runner recorded one of this round's answers


def agents_invoke(
    *, round_: Round, pending: list[Participant], contexts: dict[int, AgentContext], counts: InvocationCounts | None
) -> Recorded:
    """Invoke every pending participant and record the answers; returns what was recorded.

    Built-in strategies are code, not models: no I/O, microseconds each. They answer on
    this thread while the models think, from the same snapshot and through the same
    parser, so the round's wall time still tracks the slowest model. Every agent's decision
    cache lookup is made here first, one statement for all of them on this thread's
    connection: a hit (and any answer of a read_only cache) never waits on a thread, and the
    agent threads never touch the database.
    """
    recorded = Recorded()

    def record(answers: list[tuple[Participant, AgentOutcome]]) -> None:
        answers_record(round_, answers, contexts, recorded, counts)

    keys = {p.pk: p.api_key() for p in pending}
    # every agent whose decision cache is on, asked in one lookup; a read_only one is answered
    # here, hit or miss, and so is a hit of any mode
    looked_up = list(zip(pending, answers_from_cache([
        Question(p.llm_provider, p.llm_model, p.llm_config, contexts[p.pk]) for p in pending
    ]), strict=True))
    answers = [(p, cached) for p, cached in looked_up if cached is not None]
    asking = [p for p, cached in looked_up if cached is None]
    models = [p for p in asking if not answers_in_process(p.llm_provider, p.llm_config)]
    built_in = [p for p in asking if answers_in_process(p.llm_provider, p.llm_config)]
    if models:
        # what each (server, model) accepted for structured output, as stored now: a row deleted
        # in the admin (to have a server tested again) is noticed by every running worker
        structured_output_capabilities_load()
    started = time.perf_counter()
    pool = ThreadPoolExecutor(max_workers=min(64, len(models)), thread_name_prefix="agent") if models else None
    futures = {}
    for participant in models:
        future = pool.submit(
            _timed_invoke, participant.llm_provider, participant.llm_model, participant.llm_config,
            keys[participant.pk], contexts[participant.pk], True,
        )
        futures[future] = participant
    try:
        for participant in built_in:
            outcome, _ = _timed_invoke(
                participant.llm_provider, participant.llm_model, participant.llm_config,
                keys[participant.pk], contexts[participant.pk], True,
            )
            answers.append((participant, outcome))
        record(answers)
        if not futures:
            return recorded
        deadline = started + max(_agent_deadline(p) for p in models)
        remaining = set(futures)
        while remaining:
            budget = deadline - time.perf_counter()
            if budget <= 0:
                break
            finished, remaining = wait(remaining, timeout=min(budget, lease_seconds() / 4), return_when="FIRST_COMPLETED")
            lease_renew(round_)
            record([(futures[f], f.result()[0]) for f in finished])
        waited = time.perf_counter() - started
        # a hung model: cut at the round's deadline
        record([(futures[f], _timeout_outcome(waited)) for f in remaining])
    finally:
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
    return recorded


def answers_record(
    round_: Round,
    answers: list[tuple[Participant, AgentOutcome]],
    contexts: dict[int, AgentContext],
    recorded: Recorded,
    counts: InvocationCounts | None,
) -> None:
    """Write the answers' Invocation rows (one INSERT for all in the common case)."""
    if not answers:
        return
    # Inside the round's one transaction, a row already there means another runner took
    # this round over: fail the whole attempt rather than settle the round twice.
    in_round_transaction = transaction.get_connection().in_atomic_block
    batch = [
        InvocationAnswer(
            participant_id=participant.pk, round_id=round_.pk, snapshot_id=round_.snapshot_id,
            provider=participant.llm_provider, model=participant.llm_model,
            context=contexts[participant.pk], outcome=outcome,
        )
        for participant, outcome in answers
    ]
    if in_round_transaction:
        # Only built-in strategies answer inside the round's one transaction: our own code's
        # output, no model text. Not wrapped in a savepoint (two statements a round of a
        # replay): a refused row fails this attempt of the round, as any bug would.
        rows = invocations_record(batch, look_up_conflicts=False)
    else:
        try:
            rows = invocations_record(batch)  # its own transaction
        except DatabaseError:  # IntegrityError included: sorted out row by row
            rows = _record_one_by_one(batch)
    recorded.rows.extend(row for row, created in rows if created)
    recorded.all_mine = recorded.all_mine and all(created for _, created in rows)
    if counts is not None:
        counts.add(row.participant_id for row, created in rows if created)


def _record_one_by_one(batch: list[InvocationAnswer]) -> list[tuple[Invocation, bool]]:
    """The last resort after the batch was refused: each answer on its own (a row already
    there is returned, as ever); one the database refuses (text or JSON it cannot store) is
    replaced by an `error` invocation that says why, and the round goes on."""
    rows = []
    for answer in batch:
        try:
            rows.extend(invocations_record([answer]))
            continue
        except DatabaseError as exc:  # each attempt is its own transaction: nothing of it is kept
            reason = f"{type(exc).__name__}: {exc}"
        logger.warning("participant %s: its answer could not be stored (%s)", answer.participant_id, reason)
        rows.extend(invocations_record([_unstorable(answer, reason)]))
    return rows


def _unstorable(answer: InvocationAnswer, reason: str) -> InvocationAnswer:
    """An error answer in place of one the database refused: none of the refused text."""
    error = f"the answer could not be stored: {reason}".replace("\x00", "")[:500]
    paid = answer.outcome
    # what the call cost is kept (it was paid for); what it said is not
    response = replace(paid.response, raw_text="", structured=None, status="error", error=error)
    context = replace(answer.context, system_prompt="", user_prompt="")
    outcome = AgentOutcome("error", hold_decision(), response, cost_usd=paid.cost_usd, error=error)
    return replace(answer, context=context, outcome=outcome)


def _timed_invoke(provider, model, config, api_key, context, cache_checked=False) -> tuple[AgentOutcome, float]:
    started = time.perf_counter()
    outcome = invoke_agent(provider=provider, model=model, config=config, api_key=api_key, context=context,
                           cache_checked=cache_checked)
    return outcome, time.perf_counter() - started


def _agent_deadline(participant: Participant) -> float:
    config = config_with_defaults(participant.llm_provider, participant.llm_config)
    try:
        timeout = float(config.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
    except (TypeError, ValueError):
        timeout = 60.0
    # the provider retries up to twice with backoff; allow for all of it, then cut
    return timeout * 3 + 7 + AGENT_GRACE_SECONDS


def _timeout_outcome(waited: float) -> AgentOutcome:
    error = f"no answer within {waited:.1f} s: cut by the round"
    response = AgentResponse(raw_text="", status="timeout", error=error)
    return AgentOutcome("timeout", hold_decision(), response, error=error)
