"""What a model may remember: its training-data cutoff, from agents/model_registry.json.

A replay whose market time is before a participant's cutoff may be answered from memory
(docs/memory.md). The cutoff comes from the participant's `llm_config.training_cutoff`
when set, else from the registry (exact name, alias, else the longest family prefix, as
agents/pricing.py matches prices), else it is unknown. Built-in strategies have none.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

REGISTRY_FILE = Path(__file__).with_name("model_registry.json")
OVERRIDE_SOURCE = "llm_config.training_cutoff"
# Code, not a model: nothing to remember (agents.providers.IN_PROCESS_PROVIDERS' names).
NO_MEMORY_PROVIDERS = ("baseline", "scripted")
_CUTOFF = re.compile(r"^(\d{4})-(\d{2})(?:-(\d{2}))?$")


@dataclass(frozen=True)
class ModelEntry:
    model: str  # the registry's name for the family
    provider: str
    training_cutoff: str  # as written: "YYYY-MM" or "YYYY-MM-DD"
    source: str  # where the cutoff was read, or "llm_config.training_cutoff"
    # checked against the provider's own page (model_registry.json "verified"); an override is the
    # participant's statement, not checked
    verified: bool = False

    @property
    def cutoff_end(self) -> datetime:
        """The first moment after the cutoff (UTC): market time before it may be remembered."""
        return cutoff_end(self.training_cutoff)

    @property
    def source_label(self) -> str:
        """The source as pages show it: "unverified" when nobody checked it against the provider."""
        if self.source == OVERRIDE_SOURCE:
            return f"{OVERRIDE_SOURCE} (set on the participant)"
        return self.source if self.verified else f"{self.source} (unverified)"


def cutoff_end(text: str) -> datetime:
    """'2024-06' -> 2024-07-01T00:00Z (the whole month counts); '2024-06-01' -> 2024-06-02T00:00Z.

    Raises ValueError for anything else."""
    match = _CUTOFF.match(str(text or "").strip())
    if not match:
        raise ValueError(f"a training cutoff is 'YYYY-MM' or 'YYYY-MM-DD', got {text!r}")
    year, month, day = int(match[1]), int(match[2]), match[3]
    if day is None:
        last = calendar.monthrange(year, month)[1]
        return datetime(year, month, last, tzinfo=UTC) + timedelta(days=1)
    return datetime(year, month, int(day), tzinfo=UTC) + timedelta(days=1)


@cache
def _registry() -> tuple[dict[str, ModelEntry], dict[str, str]]:
    data = json.loads(REGISTRY_FILE.read_text())
    models = {
        name: ModelEntry(name, entry["provider"], entry["training_cutoff"], entry["source"],
                         verified=entry.get("verified") is True)
        for name, entry in data["models"].items()
    }
    for entry in models.values():
        cutoff_end(entry.training_cutoff)  # a malformed table fails loudly, at first use
    return models, dict(data.get("aliases", {}))


@cache
def registry_digest() -> str:
    """Changes when the registry file does: caches of results that depend on cutoffs key on it."""
    return hashlib.sha256(REGISTRY_FILE.read_bytes()).hexdigest()[:12]


def model_list() -> list[ModelEntry]:
    """Every known model, as the registry file lists them."""
    return list(_registry()[0].values())


def model_lookup(provider: str, model: str) -> ModelEntry | None:
    """The registry entry of a model as a participant names it, or None (unknown, or code)."""
    if provider in NO_MEMORY_PROVIDERS:
        return None
    models, aliases = _registry()
    name = (model or "").strip().lower().rsplit("/", 1)[-1]  # gateway names like "openai/gpt-4o"
    name = aliases.get(name, name)
    if name in models:
        return models[name]
    matches = [key for key in models if name.startswith((key + "-", key + ":"))]
    if not matches:
        return None
    return models[max(matches, key=len)]


def training_cutoff_for(provider: str, model: str, llm_config: dict | None = None) -> ModelEntry | None:
    """The participant's override (llm_config.training_cutoff), else the registry's entry.

    A malformed override is ignored in favour of the registry (the admin and API show which
    source was used, so the mistake is visible)."""
    if provider in NO_MEMORY_PROVIDERS:
        return None
    override = (llm_config or {}).get("training_cutoff")
    if override:
        try:
            cutoff_end(override)
        except ValueError:
            pass
        else:
            return ModelEntry(model, provider, str(override).strip(), OVERRIDE_SOURCE)
    return model_lookup(provider, model)


def participant_training_cutoff(participant) -> ModelEntry | None:
    """training_cutoff_for a Participant (or TournamentEntry: anything with the llm_* fields)."""
    return training_cutoff_for(participant.llm_provider, participant.llm_model, participant.llm_config)
