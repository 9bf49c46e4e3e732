"""Reads for the agents app: what the round needs before invoking an agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from agents.context import DecisionHistoryItem, PastInvocation, decision_history
from agents.models import Invocation, StructuredOutputCapability
from agents.prompt import HISTORY_LIMIT
from agents.providers.structured import AUTO, capabilities, endpoint_key, structured_output_setting


def invocation_get(*, participant_id: int, round_id: int) -> Invocation | None:
    return Invocation.objects.filter(participant_id=participant_id, round_id=round_id).first()


def invocation_count(*, participant_id: int) -> int:
    """How many times this participant was invoked: the scripted agent's list index."""
    return Invocation.objects.filter(participant_id=participant_id).count()


def decision_history_list(*, participant_id: int, limit: int = HISTORY_LIMIT) -> list[DecisionHistoryItem]:
    """The participant's last actions and what became of them, oldest first, in the words the
    prompt uses (agents.context.decision_history; the round reads the same for all agents)."""
    rows = (
        Invocation.objects.filter(participant_id=participant_id)
        .order_by("-round__number")
        .values_list("status", "error", "action_outcomes", "round__number", "round__market_time")[:limit]
    )
    return decision_history([PastInvocation(*row) for row in reversed(list(rows))], limit)


def structured_output_capabilities_load() -> int:
    """Read every remembered (server, model) -> mode into the process-wide memory the
    provider threads consult. Call it on the round's thread before invoking agents (one small
    query); the recording service calls it once per process on its own. Returns the count."""
    rows = StructuredOutputCapability.objects.values_list("base_url", "model", "mode")
    modes = {(base_url, model): mode for base_url, model, mode in rows}
    capabilities.replace_all(modes)
    return len(modes)


@dataclass(frozen=True)
class StructuredOutputView:
    """What a participant's page says about structured output.

    setting: auto or the fixed mode (llm_config.structured_output, else the provider default);
    mode: the mode calls use now (the fixed one, or the remembered one under auto; None when
    auto has not negotiated yet); remembered_at: when the server's answer was stored.
    """

    setting: str
    mode: str | None
    remembered_at: datetime | None = None


def structured_output_mode_get(*, participant) -> StructuredOutputView | None:
    """The structured output mode of a participant's calls; None for agents without one
    (baselines, scripted). Anthropic is always a forced tool."""
    from agents.providers import LLM_PROVIDERS, agent_for

    provider = participant.llm_provider
    if provider not in LLM_PROVIDERS:
        return None
    if provider == "anthropic":
        return StructuredOutputView(setting="tools", mode="tools")
    config = participant.llm_config if isinstance(participant.llm_config, dict) else {}
    setting = structured_output_setting(provider, config)
    if setting != AUTO:
        return StructuredOutputView(setting=setting, mode=setting)
    agent = agent_for(provider, model=participant.llm_model, config=config, api_key=None)
    row = StructuredOutputCapability.objects.filter(
        base_url=endpoint_key(agent.endpoint), model=participant.llm_model[:200]
    ).first()
    if row is None:
        return StructuredOutputView(setting=AUTO, mode=None)
    return StructuredOutputView(setting=AUTO, mode=row.mode, remembered_at=row.updated_at)
