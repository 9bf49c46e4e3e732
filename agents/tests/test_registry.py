"""The model registry: training cutoffs by model name, with the participant's override."""

import dataclasses
import json
import re
from datetime import UTC, datetime

import pytest

from agents.registry import (
    OVERRIDE_SOURCE,
    REGISTRY_FILE,
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


def test_every_entry_says_whether_its_cutoff_was_checked_and_what_the_page_said():
    data = json.loads(REGISTRY_FILE.read_text())
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["checked"])
    for name, entry in data["models"].items():
        assert isinstance(entry["verified"], bool), name
        assert entry["evidence"], name  # the words of the page, or why it could not be checked
    # providers without a published cutoff are named, not guessed
    for provider, entry in data["unpublished"].items():
        assert entry["source"].startswith("https://") and entry["note"], provider
        for model in entry["models"]:
            assert model_lookup(provider, model.rstrip("*")) is None


def test_an_unverified_entry_says_so_where_pages_show_the_source():
    checked = model_lookup("openai", "gpt-4o")
    assert checked.verified and checked.source_label == checked.source
    unchecked = dataclasses.replace(checked, verified=False)
    assert unchecked.source_label.endswith("(unverified)")
    override = training_cutoff_for("deepseek", "deepseek-chat", {"training_cutoff": "2024-07"})
    assert override.verified is False and "set on the participant" in override.source_label


@pytest.mark.parametrize(
    "model, cutoff",
    [
        ("claude-opus-4-6", "2025-08"),  # its own entry, not claude-opus-4's March 2025
        ("claude-sonnet-4-6", "2026-01"),
        ("claude-sonnet-4-5-20250929", "2025-07"),  # the training-data date, not the reliable Jan 2025
        ("gpt-5.1", "2024-09-30"),  # not a prefix of gpt-5 ("gpt-5-" or "gpt-5:")
        ("gpt-5.2-2025-12-11", "2025-08-31"),
    ],
)
def test_newer_models_get_their_own_published_cutoff(model, cutoff):
    provider = "anthropic" if model.startswith("claude") else "openai"
    assert model_lookup(provider, model).training_cutoff == cutoff


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
