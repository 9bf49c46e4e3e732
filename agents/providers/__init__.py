"""Provider registry keyed by Participant.llm_provider."""

from __future__ import annotations

from collections.abc import Callable

from agents.providers.base import Agent, AgentResponse, config_with_defaults
from agents.providers.baselines import BaselineAgent
from agents.providers.llm import AnthropicAgent, OpenAIChatAgent
from agents.providers.scripted import ScriptedAgent

LLM_PROVIDERS = ("anthropic", "openai", "azure_openai", "deepseek", "qwen", "openai_compatible")
PROVIDERS = LLM_PROVIDERS + ("baseline", "scripted")
# Built-in strategies: deterministic code with no I/O, answered on the round's own thread.
# "scripted" (tests and demos) may be told to wait, so it runs on the pool like a model.
IN_PROCESS_PROVIDERS = ("baseline",)


def _openai_family(provider: str) -> Callable[..., Agent]:
    def build(*, model: str, config: dict, api_key: str | None) -> Agent:
        return OpenAIChatAgent(provider=provider, model=model, config=config, api_key=api_key)

    return build


REGISTRY: dict[str, Callable[..., Agent]] = {
    "anthropic": AnthropicAgent,
    "openai": _openai_family("openai"),
    "azure_openai": _openai_family("azure_openai"),
    "deepseek": _openai_family("deepseek"),
    "qwen": _openai_family("qwen"),
    "openai_compatible": _openai_family("openai_compatible"),
    "baseline": BaselineAgent,
    "scripted": ScriptedAgent,
}


def agent_for(provider: str, *, model: str, config: dict | None, api_key: str | None) -> Agent:
    """Build the agent for a participant; raises KeyError for an unknown provider."""
    return REGISTRY[provider](model=model, config=config_with_defaults(provider, config), api_key=api_key)


__all__ = ["Agent", "AgentResponse", "PROVIDERS", "LLM_PROVIDERS", "IN_PROCESS_PROVIDERS", "REGISTRY", "agent_for"]
