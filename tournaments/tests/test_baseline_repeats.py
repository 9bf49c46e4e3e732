"""A tournament played again draws the same random-baseline trades: the baseline is seeded by
the competition seed and the participant's name, never by its (new) row id."""

import pytest

from tournaments import runs, services
from tournaments.models import TournamentRun
from tournaments.tests.conftest import START, tournament_fields
from trading.models import Fill

pytestmark = pytest.mark.django_db(transaction=True)

DICE = [
    {"name": "Dice A", "llm_provider": "baseline", "llm_model": "random"},
    {"name": "Dice B", "llm_provider": "baseline", "llm_model": "random"},
]


def _play() -> dict:
    """Play a fresh tournament of the same fields; its fills by (window, instance, participant)."""
    tournament = services.tournament_create(**tournament_fields(
        entries=DICE, instances=2,
        windows_spec={"start": START.isoformat(), "count": 1, "length_minutes": 24 * 60, "step_minutes": 24 * 60},
    ))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    while (run := runs.run_claim(tournament_id=tournament.pk, owner="w")) is not None:
        runs.run_execute(run_id=run.pk, owner="w")
    fills: dict = {}
    for run in TournamentRun.objects.filter(tournament=tournament).select_related("window"):
        rows = Fill.objects.filter(account__participant__competition=run.competition_id).order_by("market_time", "id")
        for fill in rows.values("account__participant__name", "symbol", "side", "quantity", "price", "market_time"):
            key = (run.window.index, run.instance, fill.pop("account__participant__name"))
            fills.setdefault(key, []).append(fill)
    return fills


def test_two_plays_of_the_same_tournament_make_the_same_random_baseline_fills(market):
    first, second = _play(), _play()
    assert first == second
    assert sum(len(f) for f in first.values()) >= 4  # the dice did trade
    # ... and the name (not only the seed) picks the draws: the two dice differ
    assert first.get((0, 0, "Dice A")) != first.get((0, 0, "Dice B"))
