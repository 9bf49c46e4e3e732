"""A tournament's rules template may mask every run; its baselines score the same both ways,
and the memory gap reads the two tournaments."""

from datetime import UTC
from decimal import Decimal

import pytest

from analytics.memory_gap import memory_gaps
from analytics.tournament import RunResult
from tournaments import runs, services
from tournaments.memory import tournament_memory_gap
from tournaments.models import TournamentRun
from tournaments.tests.conftest import tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)

LINEUP = [
    {"name": "Hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"},
    {"name": "Revert", "llm_provider": "baseline", "llm_model": "mean_reversion"},
]


def _play(masked: bool, name: str):
    rules = {"fee_pct": "0.05", "masked": masked}  # costs on: they must come out the same too
    tournament = services.tournament_create(**tournament_fields(name=name, rules=rules, entries=LINEUP))
    services.tournament_start(tournament_id=tournament.pk, enqueue=False)
    while (run := runs.run_claim(tournament_id=tournament.pk, owner="w")) is not None:
        runs.run_execute(run_id=run.pk, owner="w")
    done = list(TournamentRun.objects.filter(tournament=tournament).select_related("competition", "window"))
    assert done and all(run.status == "completed" for run in done)
    return done


def _results(done) -> list[RunResult]:
    return [
        RunResult(agent=p["name"], window=run.window.index, instance=run.instance,
                  return_pct=float(p["return_pct"]), sharpe=None, max_drawdown_pct=0.0)
        for run in done for p in run.result["participants"]
    ]


def test_the_same_lineup_runs_masked_and_unmasked_with_the_same_baseline_results(market):
    plain = _play(False, "Plain cup")
    masked = _play(True, "Masked cup")

    assert all(not run.competition.masked for run in plain)
    assert all(run.competition.masked and run.competition.symbols[0].startswith("ASSET_") for run in masked)
    assert {run.competition.real_start_time.astimezone(UTC) for run in masked} == {
        run.competition.start_time for run in plain
    }
    by_key = {(run.window.index, run.instance): run.result for run in plain}
    for run in masked:
        assert run.result == by_key[(run.window.index, run.instance)]  # every number, every agent
    assert any(Decimal(p["return_pct"]) != 0 for run in plain for p in run.result["participants"])

    gaps = {gap.agent: gap for gap in memory_gaps(_results(plain), masked_runs=_results(masked), resamples=200)}
    assert gaps["Hold"].masked.value == 0 and gaps["Hold"].masked.windows == 2

    report = {gap.agent: gap for gap in tournament_memory_gap(
        tournament_id=plain[0].tournament_id, masked_tournament_id=masked[0].tournament_id, resamples=200)}
    assert set(report) == {"Hold", "Revert"}
    assert report["Hold"].masked.value == 0 and report["Hold"].masked.interval.low == 0
    assert report["Hold"].cutoff is None  # code has no training cutoff


def test_windows_before_an_entrys_cutoff_are_in_sample_unless_masked(market):
    from tournaments.memory import tournament_in_sample

    lineup = [*LINEUP, {"name": "Model", "llm_provider": "openai", "llm_model": "gpt-4o-mini",
                        "llm_config": {"training_cutoff": "2025-01-01"}}]  # the first window's day
    windows = {"start": "2025-01-01T00:00:00Z", "count": 2, "length_minutes": 240, "step_minutes": 1440}
    plain = services.tournament_create(**tournament_fields(name="Plain", entries=lineup, windows_spec=windows))
    masked = services.tournament_create(**tournament_fields(name="Masked", entries=lineup, windows_spec=windows,
                                                            rules={"masked": True}))

    flags = tournament_in_sample(tournament_id=plain.pk)
    assert (flags[("Model", 0)], flags[("Model", 1)]) == (True, False)
    assert flags[("Hold", 0)] is False
    assert not any(tournament_in_sample(tournament_id=masked.pk).values())
