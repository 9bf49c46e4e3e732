"""Whether a result may come from what a model remembers (docs/memory.md).

A replay is in-sample for a participant when some of its market time lies before the
model's training-data cutoff (agents.registry): the model may have read that history.
A masked replay never is (its world is in no training data), nor is a built-in strategy
(code remembers nothing). Unknown cutoff: None, and pages say "unknown".
"""

from __future__ import annotations

from agents.registry import NO_MEMORY_PROVIDERS, participant_training_cutoff

from ..models import Competition, Participant


def competition_in_sample(competition: Competition, participant) -> bool | None:
    """`participant`: anything with llm_provider, llm_model and llm_config (a TournamentEntry too)."""
    if participant.llm_provider in NO_MEMORY_PROVIDERS:
        return False
    if competition.masked or competition.mode != Competition.Mode.REPLAY:
        return False
    entry = participant_training_cutoff(participant)
    if entry is None:
        return None
    return competition.real_start_time < entry.cutoff_end


def participant_in_sample(participant: Participant) -> bool | None:
    return competition_in_sample(participant.competition, participant)


def in_sample_map(competition: Competition) -> dict[int, bool | None]:
    """participant id -> in-sample (True), out of sample (False) or unknown (None): one query."""
    participants = Participant.objects.filter(competition=competition).only(
        "id", "llm_provider", "llm_model", "llm_config"
    )
    return {participant.pk: competition_in_sample(competition, participant) for participant in participants}
