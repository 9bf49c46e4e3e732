"""The model registry: training cutoffs by model name, with the participant's override."""

from datetime import UTC, datetime

import pytest

from agents.registry import (
    OVERRIDE_SOURCE,
    cutoff_end,
    model_list,
    model_lookup,
    training_cutoff_for,
)


def test_every_entry_has_a_provider_a_parseable_cutoff_and_a_source():
    entries = model_list()
    assert len(entries) >= 20
    for entry in entries:
        assert entry.provider in {"anthropic", "openai"}
        assert entry.source.startswith("https://")
        assert entry.cutoff_end.tzinfo is UTC


@pytest.mark.parametrize(
    "provider, model, family",
    [
        ("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),  # dated snapshot
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),  # not 4-5
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # longest prefix wins
        ("openai_compatible", "openai/gpt-4.1-mini", "gpt-4.1-mini"),  # gateway prefix
        ("openai", "chatgpt-4o-latest", "gpt-4o"),  # alias
        ("azure_openai", "GPT-5", "gpt-5"),
    ],
)
def test_a_model_matches_its_family(provider, model, family):
    assert model_lookup(provider, model).model == family


def test_unknown_models_and_built_in_strategies_have_no_cutoff():
    assert model_lookup("deepseek", "deepseek-chat") is None
    assert model_lookup("openai", "gpt-4oo") is None  # a prefix must end at a separator
    assert training_cutoff_for("baseline", "momentum", {"training_cutoff": "2024-01"}) is None


def test_the_participant_override_wins_and_says_so():
    entry = training_cutoff_for("openai", "gpt-4o", {"training_cutoff": "2025-02-14"})
    assert (entry.training_cutoff, entry.source) == ("2025-02-14", OVERRIDE_SOURCE)
    assert training_cutoff_for("deepseek", "deepseek-chat", {"training_cutoff": "2024-07"}).training_cutoff == "2024-07"


def test_a_malformed_override_falls_back_to_the_registry():
    entry = training_cutoff_for("openai", "gpt-4o", {"training_cutoff": "last autumn"})
    assert entry.training_cutoff == "2023-10-01"
    assert entry.source.startswith("https://")


def test_a_month_cutoff_covers_the_whole_month_and_a_day_its_whole_day():
    assert cutoff_end("2024-02") == datetime(2024, 3, 1, tzinfo=UTC)
    assert cutoff_end("2024-12") == datetime(2025, 1, 1, tzinfo=UTC)
    assert cutoff_end("2024-06-01") == datetime(2024, 6, 2, tzinfo=UTC)
    with pytest.raises(ValueError):
        cutoff_end("2024")
