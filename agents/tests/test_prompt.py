"""The prompt: a golden snapshot for a fixed state, and the size budget for 6 symbols.

Regenerate the golden files after an intended change (and bump PROMPT_VERSION):
    UPDATE_GOLDEN=1 .venv/bin/pytest agents/tests/test_prompt.py
"""

import os
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from agents.context import DecisionHistoryItem, LeaderboardLine
from agents.decision import DECISION_SCHEMA
from agents.prompt import (
    PROMPT_VERSION,
    build_context,
    build_prompt,
    fmt_decimal,
    fmt_duration,
    next_funding_time,
    system_prompt,
    token_estimate,
)
from agents.tests.conftest import NOW, SYMBOLS6, make_account, make_rules, make_snapshot

GOLDEN = Path(__file__).parent / "golden"

HISTORY = (
    DecisionHistoryItem(
        24, NOW - timedelta(hours=3), "open long BTC/USDT notional $3000 x2", "filled", "at 60000"
    ),
    DecisionHistoryItem(
        25,
        NOW - timedelta(hours=2),
        "open long ETH/USDT notional $90000 x2",
        "rejected",
        "position_size_cap: initial margin 45000 above 25% of equity",
    ),
    DecisionHistoryItem(26, NOW - timedelta(hours=1), "no decision", "invalid_response", "empty response"),
)
LEADERBOARD = (
    LeaderboardLine(1, "momentum", Decimal("10410.5"), Decimal("4.105")),
    LeaderboardLine(2, "claude", Decimal("10060.225"), Decimal("0.60225"), is_you=True),
    LeaderboardLine(3, "flat", Decimal("10000"), Decimal("0")),
)


def fixed_prompt():
    return build_prompt(
        rules=make_rules(prompt_leaderboard=True),
        snapshot=make_snapshot(),
        account=make_account(),
        now=NOW,
        history=HISTORY,
        leaderboard=LEADERBOARD,
    )


@pytest.mark.parametrize("part", ["system", "user"])
def test_prompt_matches_the_golden_snapshot(part):
    text = getattr(fixed_prompt(), part)
    path = GOLDEN / f"prompt_{part}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), (
        f"prompt changed: review, bump PROMPT_VERSION, UPDATE_GOLDEN=1 ({PROMPT_VERSION})"
    )


def test_prompt_states_rules_account_positions_history_and_leaderboard():
    prompt = fixed_prompt()
    assert "Leverage per order: 1 to 10." in prompt.system
    assert "may be at most 25% of your equity" in prompt.system
    assert "stop_loss below and take_profit above the current price" in prompt.system
    assert "Maintenance margin: 5%" in prompt.system
    assert "worst loser first" in prompt.system
    assert "BTC/USDT, ETH/USDT" in prompt.system
    assert '"submit' not in prompt.system  # the schema, not a provider detail
    assert '"additionalProperties":false' in prompt.system  # the schema itself is printed
    assert "NOW 2026-11-24 12:00 UTC | elapsed 1d 03h 00m | remaining 6d 21h 00m" in prompt.user
    assert "next funding 2026-11-24 16:00" in prompt.user
    assert "## BTC/USDT price 61234.5, 24h +1.25%" in prompt.user
    assert "- BTC/USDT long 0.05 @ 60000 mark 61234.5 uPnL +61.73 lev 2x" in prompt.user
    assert "SL 58500 TP 64000" in prompt.user
    assert "-> rejected: position_size_cap" in prompt.user
    assert "2. claude (you) equity 10060.23 +0.60%" in prompt.user


def test_leaderboard_is_left_out_when_the_competition_does_not_show_it():
    prompt = build_prompt(
        rules=make_rules(prompt_leaderboard=False),
        snapshot=make_snapshot(),
        account=make_account(),
        now=NOW,
        leaderboard=LEADERBOARD,
    )
    assert "LEADERBOARD" not in prompt.user


def test_a_symbol_missing_from_the_snapshot_is_said_to_be_untradable():
    rules = make_rules(symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"))
    prompt = build_prompt(rules=rules, snapshot=make_snapshot(), account=make_account(False), now=NOW)
    assert "## SOL/USDT: no data this round (not tradable now)" in prompt.user


def test_six_symbols_with_full_state_fit_comfortably_in_8k_tokens():
    rules = make_rules(symbols=SYMBOLS6, prompt_leaderboard=True)
    base = make_account()
    position = base.positions[0]
    positions = tuple(replace(position, symbol=s) for s in SYMBOLS6)
    account = replace(base, positions=positions)
    history = tuple(
        DecisionHistoryItem(
            20 + i, NOW - timedelta(hours=6 - i), f"open long {s} notional $1000 x3", "filled", "ok"
        )
        for i, s in enumerate(SYMBOLS6)
    )
    leaderboard = tuple(
        LeaderboardLine(i + 1, f"agent-{i}", Decimal("10000"), Decimal("0")) for i in range(12)
    )
    prompt = build_prompt(
        rules=rules,
        snapshot=make_snapshot(SYMBOLS6),
        account=account,
        now=NOW,
        history=history,
        leaderboard=leaderboard,
    )
    assert prompt.token_estimate == token_estimate(prompt.system + prompt.user)
    assert prompt.token_estimate < 6000, prompt.token_estimate  # leaves >= 2k of an 8k context for the reply
    for symbol in SYMBOLS6:
        assert f"## {symbol} price" in prompt.user


def test_token_estimate_is_characters_over_four_rounded_up():
    assert token_estimate("") == 0
    assert token_estimate("abcd") == 1
    assert token_estimate("abcde") == 2


def test_number_and_time_formats():
    assert fmt_decimal(Decimal("61234.5678")) == "61234.57"
    assert fmt_decimal(Decimal("0.000012345678")) == "0.00001234568"
    assert fmt_decimal(Decimal("2000.000")) == "2000"
    assert fmt_decimal(None) == "n/a"
    assert fmt_duration(timedelta(days=2, hours=3, minutes=4)) == "2d 03h 04m"
    assert fmt_duration(timedelta(minutes=-5)) == "0d 00h 00m"
    assert next_funding_time(NOW.replace(hour=7, minute=59)).hour == 8
    assert next_funding_time(NOW.replace(hour=16, minute=0)).hour == 0  # exactly at 16:00 -> the next one


def test_build_context_carries_prompts_version_and_the_schema_is_the_one_source():
    context = build_context(
        rules=make_rules(),
        snapshot=make_snapshot(),
        account=make_account(),
        now=NOW,
        participant_id=3,
        invocation_index=5,
    )
    assert context.prompt_version == PROMPT_VERSION
    assert context.system_prompt.startswith("You are an autonomous trading agent")
    assert (context.participant_id, context.invocation_index) == (3, 5)
    assert DECISION_SCHEMA["required"] == ["reasoning", "actions"]


def test_the_leverage_promised_is_the_engines_cap_and_the_validator_enforces_the_same():
    # engine: leverage <= min(max_leverage, 100 / margin_requirement_pct) = min(20, 100 / 10) = 10
    rules = make_rules(max_leverage=Decimal("20"), margin_requirement_pct=Decimal("10"))
    assert rules.effective_max_leverage == Decimal("10")
    assert rules.decision_rules().max_leverage == Decimal("10")
    system = build_prompt(rules=rules, snapshot=make_snapshot(), account=make_account(False), now=NOW).system
    assert "Leverage per order: 1 to 10." in system


def test_financing_is_explained_only_when_the_competition_charges_it():
    rules = make_rules(financing_rate_pct_annual=Decimal("2.98"))
    system = build_prompt(rules=rules, snapshot=make_snapshot(), account=make_account(False), now=NOW).system
    assert "2.98% a year of the notional, charged daily at 22:00 UTC" in system
    assert "financing" not in fixed_prompt().system


# ---------------------------------------------------------------------------------------------
# Rendering once per round / per competition


def _counting(monkeypatch, name):
    from agents import prompt

    calls = []
    original = getattr(prompt, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(prompt, name, counted)
    return calls


def test_the_market_section_is_rendered_once_per_snapshot_for_every_agent_of_the_round(monkeypatch):
    from agents import prompt

    calls = _counting(monkeypatch, "_market_lines")
    rules, snapshot = make_rules(name="market cache cup"), make_snapshot()
    prompts = [
        build_context(rules=rules, snapshot=snapshot, account=make_account(i % 2 == 0), now=NOW).user_prompt
        for i in range(5)
    ]
    assert len(calls) == 1
    assert prompts[0] != prompts[1]  # accounts differ; the market block is shared
    assert prompts[0].split("ACCOUNT (USD)")[0] == prompts[1].split("ACCOUNT (USD)")[0]

    next_round = make_snapshot()  # a new snapshot object (next round): rendered afresh
    build_context(rules=rules, snapshot=next_round, account=make_account(), now=NOW)
    assert len(calls) == 2
    # the cached text is exactly what rendering without a cache gives
    fresh = "\n".join(prompt._market_lines(rules, snapshot))
    assert prompt.market_section(rules, snapshot) == fresh and fresh in prompts[0]


def test_the_system_prompt_is_rendered_once_per_competition_rules(monkeypatch):
    calls = _counting(monkeypatch, "_system_prompt_text")
    rules = make_rules(name="system cache cup")
    texts = {build_context(rules=rules, snapshot=make_snapshot(), account=make_account(), now=NOW).system_prompt
             for _ in range(4)}
    assert len(calls) == 1 and len(texts) == 1
    other = replace(rules, fee_pct=Decimal("0.1"))
    assert "0.1% of the notional" in system_prompt(other)
    assert len(calls) == 2


def test_rules_with_a_list_of_symbols_still_render_the_same_prompt_uncached():
    rules = make_rules(name="list cup")
    as_list = replace(rules, symbols=list(rules.symbols))
    snapshot, account = make_snapshot(), make_account()
    assert build_prompt(rules=as_list, snapshot=snapshot, account=account, now=NOW) == build_prompt(
        rules=rules, snapshot=snapshot, account=account, now=NOW
    )


@pytest.mark.parametrize("provider", ["baseline", "scripted"])
def test_built_in_agents_get_a_note_instead_of_a_rendered_prompt(monkeypatch, provider):
    from agents.prompt import PROMPT_VERSION, PROMPTLESS_NOTE

    calls = _counting(monkeypatch, "_market_lines")
    context = build_context(
        rules=make_rules(name="promptless cup"), snapshot=make_snapshot(), account=make_account(), now=NOW,
        provider=provider, participant_id=3, invocation_index=2,
    )
    assert context.system_prompt == context.user_prompt == PROMPTLESS_NOTE
    assert context.prompt_version == PROMPT_VERSION
    assert (context.participant_id, context.invocation_index) == (3, 2)
    assert calls == []


def test_an_llm_provider_still_gets_the_full_prompt():
    context = build_context(
        rules=make_rules(), snapshot=make_snapshot(), account=make_account(), now=NOW, provider="anthropic"
    )
    assert context.user_prompt.startswith("NOW ") and "MARKET (snapshot" in context.user_prompt


@pytest.mark.parametrize("strategy", ["buy_and_hold", "momentum", "mean_reversion", "random", "flat"])
def test_a_baseline_decides_the_same_with_or_without_the_prompt(strategy):
    from agents.invoke import invoke_agent

    kwargs = {
        "rules": make_rules(), "snapshot": make_snapshot(), "account": make_account(False), "now": NOW,
        "participant_id": 5, "invocation_index": 0,
    }
    with_prompt = build_context(**kwargs)
    without = build_context(**kwargs, provider="baseline")
    a = invoke_agent(provider="baseline", model=strategy, config={}, api_key=None, context=with_prompt)
    b = invoke_agent(provider="baseline", model=strategy, config={}, api_key=None, context=without)
    assert (a.status, a.decision, a.response.raw_text) == (b.status, b.decision, b.response.raw_text)
