"""Replay: the command runs, stops and resumes rounds; --until-end settles and completes;
the in-process runner advances a replay one round per pace."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from agents.decision import hold_decision
from agents.invoke import AgentOutcome
from agents.models import Invocation
from agents.providers.base import AgentResponse
from competitions import services
from competitions.rounds import trigger
from competitions.rounds import invoke as round_invoke
from competitions.models import Competition, Round
from competitions.dispatch import InProcessRunner
from competitions.tests.conftest import HISTORY_BARS, btc_close
from competitions.tests.factories import START, CompetitionFactory
from trading.models import EquitySnapshot, Fill, Position
from trading.services import account_check_invariant

pytestmark = pytest.mark.django_db(transaction=True)

OPEN_BTC = {"reasoning": "trend up", "actions": [
    {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "0.1", "leverage": "2"}
]}
OPEN_ETH_SHORT = {"reasoning": "trend down", "actions": [
    {"action": "open", "symbol": "ETH/USDT", "side": "short", "quantity": "1", "leverage": "2"}
]}


def _replay(replay_market, hours=24, **fields):
    defaults = {"dataset": replay_market, "symbols": ["BTC/USDT", "ETH/USDT"],
                "end_time": START + timedelta(hours=hours), "fee_pct": Decimal(0),
                "spread_bps": Decimal(0), "slippage_bps": Decimal(0),
                "funding_rate_pct_8h": Decimal(0)}
    defaults.update(fields)
    competition = CompetitionFactory(**defaults)
    services.participant_register(
        competition_id=competition.pk, name="Bull", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": [OPEN_BTC]},
    )
    services.participant_register(
        competition_id=competition.pk, name="Bear", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": [OPEN_ETH_SHORT]},
    )
    return competition


def _run(competition_id, *args):
    out, err = StringIO(), StringIO()
    call_command("run_competition", str(competition_id), *args, stdout=out, stderr=err)
    return out.getvalue()


def test_the_command_runs_n_rounds_and_a_second_run_continues_at_the_next_round(replay_market):
    competition = _replay(replay_market)
    _run(competition.pk, "--rounds", "3")
    assert list(Round.objects.order_by("number").values_list("number", flat=True)) == [0, 1, 2]
    competition.refresh_from_db()
    assert competition.status == "active" and competition.market_time == START + timedelta(hours=2)

    output = _run(competition.pk, "--rounds", "2")
    rounds = list(Round.objects.order_by("number").values_list("number", "status", "market_time"))
    assert rounds == [(n, "completed", START + timedelta(hours=n)) for n in range(5)]
    # each agent answered once per round: 2 agents x 5 rounds, no round asked twice
    assert Invocation.objects.count() == 10
    assert "5/24 rounds" in output and "ETA" in output and "LLM $" in output


def test_until_end_completes_a_short_competition_with_everything_closed_at_the_final_mark(replay_market):
    competition = _replay(replay_market, hours=6)
    output = _run(competition.pk, "--until-end")

    competition.refresh_from_db()
    assert competition.status == "completed"
    rounds = list(Round.objects.order_by("number").values_list("number", "status", "market_time"))
    # rounds 0..5 at start + n h, then the final round at end_time (start + 6 h) without agents
    assert rounds == [(n, "completed", START + timedelta(hours=n)) for n in range(7)]
    assert not Invocation.objects.filter(round__number=6).exists()
    assert not Position.objects.filter(is_open=True).exists()
    closing = Fill.objects.filter(reason="competition_end")
    assert sorted(closing.values_list("symbol", flat=True)) == ["BTC/USDT", "ETH/USDT"]
    # the final mark is the close of the bar that closed at end_time: bar HISTORY_BARS + 5
    btc_exit = closing.get(symbol="BTC/USDT")
    assert btc_exit.price == btc_close(HISTORY_BARS + 5) and btc_exit.quantity == Decimal("0.1")
    for participant in competition.participants.all():
        final = EquitySnapshot.objects.filter(account__participant=participant).order_by("-market_time", "-id")[0]
        assert final.market_time == competition.end_time
        assert final.equity == final.cash == participant.account.cash
        account_check_invariant(account=participant.account)
    # Bull bought 0.1 BTC at the close of bar HISTORY_BARS - 1 and sold at bar HISTORY_BARS + 5:
    # six bars of +10 each -> +6 USDT with zero costs and zero funding
    bull = competition.participants.get(name="Bull")
    assert bull.account.cash == Decimal(10006)
    assert "completed" in output and "7/6 rounds" not in output


def test_running_a_completed_competition_again_refuses(replay_market):
    competition = _replay(replay_market, hours=2)
    _run(competition.pk, "--until-end")
    with pytest.raises(CommandError, match="completed"):
        _run(competition.pk, "--rounds", "1")
    assert Round.objects.count() == 3


def test_a_paused_competition_is_refused_with_a_clear_message(replay_market):
    competition = _replay(replay_market)
    services.competition_start(competition_id=competition.pk)
    services.competition_pause(competition_id=competition.pk)
    with pytest.raises(CommandError, match="paused; resume it first"):
        _run(competition.pk, "--rounds", "1")
    assert not Round.objects.exists()


def test_a_live_competition_is_refused(replay_market):
    competition = _replay(replay_market, mode="live", dataset="")
    with pytest.raises(CommandError, match="only replay competitions"):
        _run(competition.pk, "--rounds", "1")


def test_the_in_process_runner_advances_a_replay_one_round_per_pace(replay_market):
    competition = _replay(replay_market)
    services.competition_start(competition_id=competition.pk)
    runner = InProcessRunner(replay_pace_seconds=60)
    clock = [10_000.0]  # the runner paces on time.monotonic(); drive it by hand

    with mock.patch("competitions.dispatch.time.monotonic", side_effect=lambda: clock[0]):
        runner.step()
        clock[0] += 59
        runner.step()  # within the pace: nothing
        assert list(Round.objects.values_list("number", flat=True)) == [0]
        clock[0] += 1
        runner.step()
    assert list(Round.objects.order_by("number").values_list("number", flat=True)) == [0, 1]
    competition.refresh_from_db()
    assert competition.market_time == START + timedelta(hours=1)


def test_the_in_process_runner_leaves_paused_replays_alone(replay_market):
    competition = _replay(replay_market)
    services.competition_start(competition_id=competition.pk)
    services.competition_pause(competition_id=competition.pk)
    InProcessRunner(replay_pace_seconds=0).step()
    assert not Round.objects.exists()
    assert Competition.objects.get(pk=competition.pk).status == "paused"


def test_agents_see_the_standings_at_the_previous_mark_when_the_leaderboard_is_shown(replay_market):
    competition = _replay(replay_market, prompt_leaderboard=True)
    # a model agent (built-in and scripted agents get no rendered prompt); its calls are
    # answered here with a hold so the test needs no model server
    services.participant_register(
        competition_id=competition.pk, name="Idle", llm_provider="openai", llm_model="gpt-test",
    )
    bear = competition.participants.get(name="Bear")
    bear.llm_config = {"decisions": [{"reasoning": "down", "actions": [
        {"action": "open", "symbol": "ETH/USDT", "side": "short", "quantity": "3", "leverage": "2"}]}]}
    bear.save()
    real_invoke = round_invoke.invoke_agent

    def model_holds(**kwargs):
        if kwargs["provider"] != "openai":
            return real_invoke(**kwargs)
        response = AgentResponse(raw_text='{"reasoning": "wait", "actions": [{"action": "hold"}]}', status="success")
        return AgentOutcome("success", hold_decision("wait"), response)

    with mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=model_holds):
        _run(competition.pk, "--rounds", "3")

    prompt = Invocation.objects.get(round__number=2, participant__name="Idle").user_prompt
    lines = prompt.split("LEADERBOARD\n", 1)[1].splitlines()[:3]
    # round 1's mark, one bar after the opens at zero costs: Bear short 3 ETH x -1 = +3,
    # Bull 0.1 BTC x +10 = +1, Idle flat (round 2's own mark comes after the agents answer)
    assert lines == [
        "1. Bear equity 10003.00 +0.03%",
        "2. Bull equity 10001.00 +0.01%",
        "3. Idle (you) equity 10000.00 +0.00%",
    ]


def _said(invocation):
    return invocation.parsed_decision.get("reasoning")


def test_each_answer_uses_the_participants_own_invocation_count_across_runs_and_outside_rounds(replay_market):
    """The replay loop carries invocation counts forward instead of recounting; a round run
    elsewhere in between (the API's 'run a round now') makes it count again."""
    from competitions.rounds.replay import replay_run

    competition = _replay(replay_market)
    script = [{"reasoning": f"answer {n}", "actions": []} for n in range(8)]
    counter = services.participant_register(
        competition_id=competition.pk, name="Counter", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": script},
    )
    replay_run(competition_id=competition.pk, rounds=3)
    trigger.round_trigger(competition_id=competition.pk)  # round 3, run by another door
    replay_run(competition_id=competition.pk, rounds=2)
    late = services.participant_register(
        competition_id=competition.pk, name="Late", llm_provider="scripted", llm_model="script",
        llm_config={"decisions": script},
    )
    replay_run(competition_id=competition.pk, rounds=2)
    said = [_said(i) for i in Invocation.objects.filter(participant=counter).order_by("round__number")]
    assert said == [f"answer {n}" for n in range(8)]  # rounds 0-2, 3 (the API), 4-5, 6-7
    said_late = [_said(i) for i in Invocation.objects.filter(participant=late).order_by("round__number")]
    assert said_late == ["answer 0", "answer 1"]
