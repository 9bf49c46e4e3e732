"""The one entry point the round calls per agent: `invoke_agent(...)`.

Synchronous and thread-safe (SDK clients are cached per process and shared between threads,
agents.providers.llm.sdk_client), so the round runs all agents concurrently with a ThreadPoolExecutor, each under
its own timeout:

    with ThreadPoolExecutor(max_workers=n) as pool:
        futures = {p.id: pool.submit(invoke_agent, provider=p.llm_provider, model=p.llm_model,
                                     config=p.llm_config, api_key=p.api_key(), context=ctx[p.id])
                   for p in participants}

It never raises: a missing key, an SDK error, a timeout or unparseable text all come back
as an `AgentOutcome` whose decision is a hold and whose status and error say why.
No ORM here; `agents.services.invocation_record` writes the row.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

from agents import cache as decision_cache
from agents.boundary import ESCAPE, response_admit
from agents.context import AccountView, AgentContext
from agents.decision import Decision, UpdateExitAction, hold_decision
from agents.parser import STATUS_INVALID_RESPONSE, STATUS_SUCCESS, ParseResult, parse_response
from agents.pricing import invocation_cost, price_for
from agents.providers import IN_PROCESS_PROVIDERS, LLM_PROVIDERS, PROVIDERS, REGISTRY, agent_for
from agents.providers.base import KEY_SETTINGS, STATUS_ERROR, AgentResponse, resolve_api_key, setting_value
from agents.providers.baselines import STRATEGIES
from agents.providers.structured import SETTINGS as STRUCTURED_OUTPUT_SETTINGS

INVOCATION_STATUSES = (STATUS_SUCCESS, STATUS_INVALID_RESPONSE, "error", "timeout")


@dataclass(frozen=True)
class AgentOutcome:
    """A provider response, parsed and priced: what the round executes and records."""

    status: str  # success | invalid_response | error | timeout
    decision: Decision
    response: AgentResponse
    parse: ParseResult | None = None
    cost_usd: Decimal = Decimal("0")
    cost_note: str = ""
    error: str = ""
    notes: tuple[str, ...] = field(default=())


def answers_in_process(provider: str, config: dict | None) -> bool:
    """Asking this agent never leaves the process nor costs anything: a built-in strategy, or
    a model answered only from the decision cache (read_only: a miss holds, nothing is
    called). Such agents answer on the round's own thread, and replay rounds of nothing
    else run in batches (competitions.rounds)."""
    return provider in IN_PROCESS_PROVIDERS or decision_cache.cache_mode(config) == decision_cache.MODE_READ_ONLY


def keep_unchanged_exits(decision: Decision, account: AccountView) -> Decision:
    """update_exit's null means "keep the current level" (schema and prompt say so); the
    engine's exit_plan_update reads None as "clear". Fill the current level in here, from the
    account the agent saw, so the round passes the engine exactly what the agent meant."""
    actions = []
    for action in decision.actions:
        if isinstance(action, UpdateExitAction):
            position = account.position(action.symbol)
            if position is not None:
                action = replace(
                    action,
                    stop_loss=action.stop_loss if action.stop_loss is not None else position.stop_loss,
                    take_profit=action.take_profit
                    if action.take_profit is not None
                    else position.take_profit,
                )
        actions.append(action)
    return replace(decision, actions=tuple(actions))


def invoke_agent(
    *,
    provider: str,
    model: str,
    config: dict | None,
    api_key: str | None,
    context: AgentContext,
    cache_checked: bool = False,
) -> AgentOutcome:
    """Call one agent for one round and turn whatever it says into a validated Decision.

    With the decision cache on, the cache is asked first (`answer_from_cache`) unless the
    caller already did (`cache_checked`, the round does it on its own thread so that the
    model threads never touch the database)."""
    config = dict(config or {})
    if not cache_checked:
        cached = answer_from_cache(provider=provider, model=model, config=config, context=context)
        if cached is not None:
            return cached
    try:
        agent = agent_for(provider, model=model, config=config, api_key=api_key)
    except KeyError:
        response = AgentResponse(raw_text="", status=STATUS_ERROR, error=f"unknown provider {provider!r}")
        return AgentOutcome(STATUS_ERROR, hold_decision(), response, error=response.error)
    try:
        response = decision_cache.decide(agent, provider=provider, model=model, config=config, context=context)
    except Exception as exc:  # a provider must never crash the round
        response = AgentResponse(raw_text="", status=STATUS_ERROR, error=f"{type(exc).__name__}: {exc}")
    return _outcome(provider=provider, model=model, config=config, context=context, response=response)


def answers_from_cache(questions: list[decision_cache.Question]) -> list[AgentOutcome | None]:
    """The decision cache's answers (agents.cache.recorded_answers: one lookup for all) as
    outcomes, through the same checks and parser as a model's; None where the model has to
    be asked. Runs on the caller's thread and database connection."""
    questions = [replace(question, config=dict(question.config or {})) for question in questions]
    # a database error is a miss (agents.cache.cached_responses): the model is asked instead
    responses = decision_cache.recorded_answers(questions)
    return [
        None if response is None else _outcome(
            provider=question.provider, model=question.model, config=question.config, context=question.context,
            response=response,
        )
        for question, response in zip(questions, responses, strict=True)
    ]


def answer_from_cache(*, provider: str, model: str, config: dict | None, context: AgentContext) -> AgentOutcome | None:
    """answers_from_cache for one agent."""
    return answers_from_cache([decision_cache.Question(provider, model, config, context)])[0]


def _outcome(*, provider: str, model: str, config: dict, context: AgentContext, response: AgentResponse) -> AgentOutcome:
    rules = context.rules.decision_rules()
    # Whatever the provider returned is made storable before anything reads it.
    response = response_admit(response)
    notes = tuple(response.notes)

    if response.cached:  # decision cache hit: no model was called
        cost, cost_note = Decimal("0"), "priced as 0: decision cache hit"
    elif provider in LLM_PROVIDERS:
        cost, cost_note = invocation_cost(
            model, response.input_tokens, response.output_tokens, config.get("pricing")
        )
    else:
        cost, cost_note = Decimal("0"), "built-in agent: no cost"

    if response.status != STATUS_SUCCESS:
        return AgentOutcome(
            response.status,
            hold_decision(),
            response,
            cost_usd=cost,
            cost_note=cost_note,
            error=response.error,
            notes=notes + _escape_note(response.escaped_characters),
        )
    try:
        parsed = parse_response(response.raw_text, rules=rules, structured=response.structured)
    except Exception as exc:  # defensive: the parser is tested not to raise
        response_error = f"parser failed: {type(exc).__name__}: {exc}"
        return AgentOutcome(
            STATUS_INVALID_RESPONSE,
            hold_decision(),
            response,
            cost_usd=cost,
            error=response_error,
            notes=notes + _escape_note(response.escaped_characters),
        )
    escaped = response.escaped_characters + parsed.escaped_characters
    if parsed.escaped_characters:
        response = replace(response, escaped_characters=escaped)
    return AgentOutcome(
        parsed.status,
        keep_unchanged_exits(parsed.decision, context.account),
        response,
        parse=parsed,
        cost_usd=cost,
        cost_note=cost_note,
        error=parsed.error,
        notes=notes + tuple(f"repaired: {r}" for r in parsed.repairs) + _escape_note(escaped),
    )


def _escape_note(escaped: int) -> tuple[str, ...]:
    if not escaped:
        return ()
    return (
        f"escaped: {escaped} character(s) no database stores (NUL, lone surrogates) "
        f"are kept as {ESCAPE}uXXXX (agents.boundary.text_restore gives the original back)",
    )


def provider_config_warnings(provider: str, model: str, config: dict | None, has_key: bool) -> list[str]:
    """Registration-time checks: everything that would make this participant's calls fail.

    `has_key` says whether the participant stored its own key. Warnings, not errors: a key
    may be set in the environment later.
    """
    config = config or {}
    warnings: list[str] = []
    if provider not in PROVIDERS:
        return [f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})"]
    if not isinstance(config, dict):
        return ["llm_config must be a JSON object"]
    if provider == "baseline":
        if model not in STRATEGIES:
            warnings.append(f"unknown baseline strategy {model!r} (known: {', '.join(STRATEGIES)})")
        return warnings
    if provider == "scripted":
        if not isinstance(config.get("decisions", []), list):
            warnings.append("llm_config.decisions must be a list of decision objects or strings")
        elif not config.get("decisions"):
            warnings.append("llm_config.decisions is empty: this agent will always hold")
        return warnings
    if not (model or "").strip():
        warnings.append("llm_model is empty: set the model to call")
    if provider != "openai_compatible" and not has_key and not resolve_api_key(provider, config, None):
        sources = ["a participant API key"]
        if config.get("api_key_env"):
            sources.append(f"env {config['api_key_env']} (currently unset)")
        sources.append(f"setting {KEY_SETTINGS[provider]}")
        warnings.append(
            f"no API key for {provider}: calls will fail until one of {', '.join(sources)} is set"
        )
    if provider == "openai_compatible" and not config.get("base_url"):
        warnings.append("openai_compatible needs llm_config.base_url (e.g. http://localhost:11434/v1)")
    if provider == "azure_openai" and not (
        config.get("base_url") or config.get("endpoint") or setting_value("AZURE_OPENAI_ENDPOINT")
    ):
        warnings.append("azure_openai needs llm_config.endpoint or the AZURE_OPENAI_ENDPOINT setting")
    response_format = config.get("response_format")
    if response_format is not None and response_format not in ("json_schema", "json_object", "none"):
        warnings.append("llm_config.response_format must be json_schema, json_object or none")
    structured_output = config.get("structured_output")
    if structured_output is not None and structured_output not in STRUCTURED_OUTPUT_SETTINGS:
        warnings.append(
            "llm_config.structured_output must be one of " + ", ".join(STRUCTURED_OUTPUT_SETTINGS)
        )
    elif structured_output is not None and provider == "anthropic":
        warnings.append("llm_config.structured_output is ignored for anthropic (always a forced tool)")
    for name in ("timeout_seconds", "temperature", "max_tokens"):
        value = config.get(name)
        if value is not None:
            try:
                if float(value) < 0 or (name != "temperature" and float(value) == 0):
                    raise ValueError
            except (TypeError, ValueError):
                warnings.append(f"llm_config.{name} must be a positive number, got {value!r}")
    if config.get("pricing") is not None and price_for(model, config["pricing"]) is None:
        warnings.append(
            "llm_config.pricing needs input_per_mtok and output_per_mtok (USD per million tokens)"
        )
    elif config.get("pricing") is None and price_for(model) is None:
        warnings.append(
            f"no price for model {model!r}: its cost will be recorded as 0 (set llm_config.pricing)"
        )
    return warnings


__all__ = ["AgentOutcome", "answer_from_cache", "answers_from_cache", "invoke_agent", "provider_config_warnings", "INVOCATION_STATUSES", "REGISTRY"]
