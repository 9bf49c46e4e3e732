"""In-sample: a replay before a model's training cutoff is marked, on the API and the page."""

# ruff: noqa: F811 -- pytest fixtures imported from test_api_fixtures are test arguments

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from competitions import selectors, services
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory
from competitions.tests.test_api_fixtures import anonymous, api_settings, client_with_key  # noqa: F401

pytestmark = pytest.mark.django_db


def _participant(competition, model, provider="openai", **config):
    return ParticipantFactory(competition=competition, llm_provider=provider, llm_model=model, llm_config=config)


def test_a_replay_before_the_cutoff_is_in_sample_and_one_after_is_not():
    before = CompetitionFactory(start_time=datetime(2023, 6, 1, tzinfo=UTC))  # gpt-4o: cutoff 2023-10-01
    after = CompetitionFactory(start_time=datetime(2023, 10, 2, tzinfo=UTC))
    on_the_day = CompetitionFactory(start_time=datetime(2023, 10, 1, 12, tzinfo=UTC))  # the day counts

    assert selectors.participant_in_sample(_participant(before, "gpt-4o-2024-08-06")) is True
    assert selectors.participant_in_sample(_participant(after, "gpt-4o")) is False
    assert selectors.participant_in_sample(_participant(on_the_day, "gpt-4o")) is True


def test_unknown_cutoffs_are_unknown_and_overrides_decide():
    competition = CompetitionFactory(start_time=datetime(2024, 3, 1, tzinfo=UTC))
    assert selectors.participant_in_sample(_participant(competition, "deepseek-chat", "deepseek")) is None
    assert selectors.participant_in_sample(
        _participant(competition, "deepseek-chat", "deepseek", training_cutoff="2024-07")
    ) is True
    assert selectors.participant_in_sample(ParticipantFactory(competition=competition)) is False  # a baseline


def test_a_masked_or_live_competition_is_never_in_sample(replay_market):
    masked = services.competition_create(
        name="masked", start_time=START, end_time=START + timedelta(hours=6), mode="replay",
        dataset=replay_market, timeframe="1h", symbols=["BTC/USDT"], masked=True,
    )
    live = CompetitionFactory(mode="live", start_time=datetime(2023, 1, 1, tzinfo=UTC))
    # claude-sonnet-4-5 read data up to 2025-07, after START
    assert selectors.participant_in_sample(_participant(masked, "claude-sonnet-4-5", "anthropic")) is False
    assert selectors.participant_in_sample(_participant(live, "claude-sonnet-4-5", "anthropic")) is False
    unmasked = CompetitionFactory(start_time=START)
    assert selectors.participant_in_sample(_participant(unmasked, "claude-sonnet-4-5", "anthropic")) is True


def test_the_leaderboard_api_and_page_mark_in_sample_rows(client_with_key, client):
    competition = CompetitionFactory(start_time=datetime(2024, 3, 1, tzinfo=UTC))
    remembered = _participant(competition, "gpt-5")  # read data up to 2024-09-30
    fresh = _participant(competition, "gpt-4o")  # up to 2023-10-01: this market is new to it
    unknown = _participant(competition, "deepseek-chat", "deepseek")

    response = client_with_key.get(f"/api/v1/leaderboard/competitions/{competition.pk}/leaderboard")
    assert response.status_code == 200, response.content
    flags = {row["participant_id"]: row["in_sample"] for row in response.json()["results"]}
    assert flags == {remembered.pk: True, fresh.pk: False, unknown.pk: None}

    page = client.get(reverse("competition-dashboard", args=[competition.pk])).content.decode()
    assert page.count(">in-sample</span>") == 1
    assert "may come from memory" in page


def test_the_compare_page_marks_in_sample_participants(client):
    competition = CompetitionFactory(start_time=datetime(2024, 3, 1, tzinfo=UTC))
    remembered = _participant(competition, "gpt-5")
    fresh = _participant(competition, "gpt-4o")

    html = client.get(
        reverse("competition-compare", args=[competition.pk]), {"p": [remembered.pk, fresh.pk]}
    ).content.decode()

    metrics = html.split('id="compare-metrics"', 1)[1].split("</thead>", 1)[0]
    assert metrics.count(">in-sample</span>") == 1
    assert metrics.index(">in-sample</span>") < metrics.index(fresh.name)  # on gpt-5's column, the first
    assert "may come from memory" in html


def test_the_api_creates_a_masked_competition_from_real_terms_and_shows_both(client_with_key, replay_market):
    body = {"name": "Masked", "start_time": "2025-01-01T00:00:00Z", "end_time": "2025-01-01T06:00:00Z",
            "mode": "replay", "dataset": replay_market, "symbols": ["BTC/USDT", "ETH/USDT"], "masked": True}

    response = client_with_key.post("/api/v1/competitions", body, format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["masked"] is True
    assert sorted(data["symbols"]) == ["ASSET_1", "ASSET_2"]
    assert data["real_symbols"] == ["BTC/USDT", "ETH/USDT"]
    assert data["real_start_time"] == "2025-01-01T00:00:00Z" and not data["start_time"].startswith("2025")
