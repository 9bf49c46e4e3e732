"""Masked replay: the agents see a world no model has read, and the results are the real ones."""

import re
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest

from agents.decision import DecisionRules, decision_validate
from agents.invoke import AgentOutcome
from agents.models import Invocation
from agents.providers.base import AgentResponse
from competitions import services
from competitions.rounds import invoke as round_invoke
from competitions.rounds.replay import replay_run
from competitions.tests.conftest import BARS_AFTER_START, HISTORY_BARS
from competitions.tests.factories import START
from marketdata.masking import exact_scale
from trading.models import EquitySnapshot

pytestmark = pytest.mark.django_db(transaction=True)

REAL = ["BTC/USDT", "ETH/USDT"]


def _competition(dataset, *, masked, hours=24, **fields):
    return services.competition_create(
        name="BTC and ETH, early January 2025", start_time=START, end_time=START + timedelta(hours=hours),
        mode="replay", dataset=dataset, timeframe="1h", symbols=list(REAL), masked=masked, seed=7, **fields,
    )


def test_a_masked_competition_stores_the_masked_world_and_the_way_back(replay_market):
    competition = _competition(replay_market, masked=True)

    assert sorted(competition.symbols) == ["ASSET_1", "ASSET_2"]
    assert competition.real_symbols == REAL
    assert competition.start_time.year >= 2200
    shift = competition.start_time - START
    assert shift % timedelta(weeks=1) == timedelta(0)  # weekday and hour of day kept
    assert (competition.real_start_time, competition.real_end_time) == (START, START + timedelta(hours=24))
    # the same competition masks the same way (a re-run of a tournament sees the same world)
    again = _competition(replay_market, masked=True)
    assert (again.symbols, again.start_time, again.mask) == (competition.symbols, competition.start_time,
                                                              competition.mask)


def test_the_price_constant_is_exact_both_ways_and_starts_between_100_and_200():
    for price in (Decimal("50000"), Decimal("1999"), Decimal("0.00001234"), Decimal("100"), Decimal("199.99")):
        scale = exact_scale(price)
        assert 100 <= price * scale < 200
        assert (1 / scale) * scale == 1 and len(str(1 / scale)) < 30  # a finite decimal


def test_a_live_competition_cannot_be_masked(replay_market):
    from gauntlet.errors import DomainError

    with pytest.raises(DomainError):
        services.competition_create(
            name="live", start_time=START, end_time=START + timedelta(hours=2), mode="live", dataset="",
            symbols=list(REAL), masked=True,
        )


def test_masked_prompts_carry_no_real_symbol_date_or_price_level(replay_market):
    competition = _competition(replay_market, masked=True, prompt_leaderboard=True)
    first = competition.symbols[0]  # BTC/USDT's masked name
    services.participant_register(competition_id=competition.pk, name="Model", llm_provider="openai",
                                  llm_model="gpt-test")
    services.participant_register(competition_id=competition.pk, name="Trend", llm_provider="baseline",
                                  llm_model="buy_and_hold")
    answers = iter([
        {"reasoning": "go", "actions": [{"action": "open", "symbol": first, "side": "long",
                                         "notional_usd": "3000", "leverage": 2, "stop_loss": "1"}]},
    ])
    real_invoke = round_invoke.invoke_agent

    def model_answers(**kwargs):
        if kwargs["provider"] != "openai":
            return real_invoke(**kwargs)
        answer = next(answers, {"reasoning": "wait", "actions": [{"action": "hold"}]})
        import json

        text = json.dumps(answer)
        response = AgentResponse(raw_text=text, status="success")
        rules = DecisionRules(allowed_symbols=tuple(competition.symbols), max_leverage=Decimal(10))
        return AgentOutcome("success", decision_validate(answer, rules), response)

    with mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=model_answers):
        replay_run(competition_id=competition.pk, rounds=6)

    prompts = [i.system_prompt + "\n" + i.user_prompt
               for i in Invocation.objects.filter(participant__name="Model").order_by("round__number")]
    assert len(prompts) == 6
    assert "open long" in prompts[-1] and first in prompts[-1]  # the history shows the masked trade
    real_bar_times = [START + timedelta(hours=h) for h in range(-HISTORY_BARS, BARS_AFTER_START)]
    real_dates = {moment.strftime("%Y-%m-%d") for moment in real_bar_times}
    real_bar_labels = {moment.strftime("%m-%d %H:%M") for moment in real_bar_times}
    for prompt in prompts:
        for word in ("BTC", "ETH", "USDT", "Bitcoin", "Ether", "January", "2024", "2025"):
            assert word.lower() not in prompt.lower()
        assert not any(date in prompt for date in real_dates)
        assert not any(label in prompt for label in real_bar_labels)
        numbers = [Decimal(n) for n in re.findall(r"(?<![\w.])\d+(?:\.\d+)?", prompt)]
        # BTC traded near 50000-51700, ETH near 1833-1999 (2000 in the prompt is the USD example)
        assert not [n for n in numbers if 45000 <= n <= 57000 or 1820 <= n < 2000], prompt


def _equity_curves(competition):
    rows = (EquitySnapshot.objects.filter(account__participant__competition=competition)
            .order_by("account__participant__name", "market_time", "id")
            .values_list("account__participant__name", "market_time", "equity", "cash"))
    curves = {}
    for name, market_time, equity, cash in rows:
        curves.setdefault(name, []).append((market_time, equity, cash))
    return curves


@pytest.mark.parametrize("strategy", ["buy_and_hold", "momentum", "mean_reversion"])
def test_masking_changes_no_baseline_result(replay_market, strategy):
    worlds = {}
    for masked in (False, True):
        competition = _competition(replay_market, masked=masked, hours=36)
        services.participant_register(competition_id=competition.pk, name="Base", llm_provider="baseline",
                                      llm_model=strategy)
        replay_run(competition_id=competition.pk, until_end=True)
        competition.refresh_from_db()
        assert competition.status == "completed"
        worlds[masked] = (competition, _equity_curves(competition))
    (real, real_curves), (masked, masked_curves) = worlds[False], worlds[True]
    shift = masked.start_time - real.start_time
    real_curve = real_curves["Base"]
    masked_curve = [(at - shift, equity, cash) for at, equity, cash in masked_curves["Base"]]
    assert len(real_curve) > 30
    assert masked_curve == real_curve  # to the last stored digit, at the same (real) moments
    if strategy == "buy_and_hold":
        assert len({equity for _, equity, _ in real_curve}) > 1  # it traded: the test can fail


def test_a_masked_competition_is_edited_in_real_terms_and_stays_masked(replay_market):
    competition = _competition(replay_market, masked=True)
    shown = {"symbols": list(competition.symbols), "start_time": competition.start_time}  # what a form shows

    same = services.competition_update(competition_id=competition.pk, **shown, name="renamed")
    assert (same.symbols, same.start_time, same.mask) == (competition.symbols, competition.start_time,
                                                           competition.mask)

    longer = services.competition_update(competition_id=competition.pk, end_time=START + timedelta(hours=30))
    assert longer.real_end_time == START + timedelta(hours=30)
    assert longer.end_time - longer.start_time == timedelta(hours=30)

    plain = services.competition_update(competition_id=competition.pk, masked=False)
    assert (plain.symbols, plain.start_time, plain.mask) == (REAL, START, {})
