"""Scripted agent: llm_config.decisions is a list consumed one item per invocation.

Item i is used on the participant's i-th invocation (`context.invocation_index`, passed in
by the round as the number of prior invocations). A dict is sent as JSON text, a string as
is; both go through the same parser as model text. Past the end of the list: hold.
"""

from __future__ import annotations

import json

from agents.context import AgentContext
from agents.decision import HOLD_DECISION_JSON
from agents.providers.base import AgentResponse


class ScriptedAgent:
    provider = "scripted"

    def __init__(self, *, model: str = "", config: dict | None = None, api_key: str | None = None):
        self.model = model or "script"
        self.config = config or {}

    def decide(self, context: AgentContext) -> AgentResponse:
        decisions = self.config.get("decisions") or []
        if not isinstance(decisions, list):
            return AgentResponse(raw_text="", status="error", error="llm_config.decisions must be a list")
        index = context.invocation_index
        if index < 0 or index >= len(decisions):
            return AgentResponse(raw_text=HOLD_DECISION_JSON.replace('""', '"script exhausted"', 1))
        item = decisions[index]
        if isinstance(item, str):
            return AgentResponse(raw_text=item)
        try:
            return AgentResponse(raw_text=json.dumps(item))
        except (TypeError, ValueError) as exc:
            return AgentResponse(raw_text=repr(item), error=f"script item {index} is not JSON: {exc}")
