"""Registration-time warnings, key resolution, the scripted agent and the price table."""

from decimal import Decimal

import pytest

from agents.context import AgentContext
from agents.invoke import invoke_agent, provider_config_warnings
from agents.pricing import invocation_cost, price_for
from agents.providers.base import resolve_api_key
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot


@pytest.fixture
def no_env_keys(settings):
    for name in (
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "AZURE_OPENAI_API_KEY",
        "DEEPSEEK_API_KEY",
        "QWEN_API_KEY",
        "AZURE_OPENAI_ENDPOINT",
    ):
        setattr(settings, name, "")


def test_missing_key_is_a_registration_warning(no_env_keys):
    warnings = provider_config_warnings("anthropic", "claude-haiku-4-5", {}, False)
    assert len(warnings) == 1
    assert "no API key for anthropic" in warnings[0]
    assert "ANTHROPIC_API_KEY" in warnings[0]


def test_a_participant_key_or_an_env_key_silences_the_warning(no_env_keys, settings, monkeypatch):
    assert provider_config_warnings("openai", "gpt-4o", {}, True) == []
    settings.OPENAI_API_KEY = "sk"
    assert provider_config_warnings("openai", "gpt-4o", {}, False) == []
    monkeypatch.setenv("MY_KEY", "x")
    assert provider_config_warnings("deepseek", "deepseek-chat", {"api_key_env": "MY_KEY"}, False) == []


def test_config_problems_are_each_named(no_env_keys):
    assert "azure_openai needs llm_config.endpoint" in " ".join(
        provider_config_warnings("azure_openai", "gpt-4o", {}, True)
    )
    assert "needs llm_config.base_url" in " ".join(
        provider_config_warnings("openai_compatible", "llama3", {}, False)
    )
    assert any(
        "timeout_seconds" in w
        for w in provider_config_warnings("openai", "gpt-4o", {"timeout_seconds": "soon"}, True)
    )
    assert any(
        "response_format" in w
        for w in provider_config_warnings("openai", "gpt-4o", {"response_format": "xml"}, True)
    )
    assert any("no price for model" in w for w in provider_config_warnings("openai", "gpt-9", {}, True))
    assert provider_config_warnings("baseline", "momentum", {}, False) == []
    assert "unknown baseline strategy" in provider_config_warnings("baseline", "yolo", {}, False)[0]
    assert "always hold" in provider_config_warnings("scripted", "s", {}, False)[0]
    assert "unknown provider" in provider_config_warnings("gemini", "x", {}, False)[0]


def test_key_resolution_order(settings, monkeypatch):
    settings.QWEN_API_KEY = "from-settings"
    monkeypatch.setenv("TEAM_KEY", "from-env")
    assert resolve_api_key("qwen", {"api_key_env": "TEAM_KEY"}, "own") == "own"
    assert resolve_api_key("qwen", {"api_key_env": "TEAM_KEY"}, None) == "from-env"
    assert resolve_api_key("qwen", {"api_key_env": "UNSET_KEY"}, None) == "from-settings"
    assert resolve_api_key("openai_compatible", {}, None) is None


def ctx(index):
    return AgentContext(
        rules=make_rules(),
        snapshot=make_snapshot(),
        account=make_account(False),
        now=NOW,
        invocation_index=index,
    )


def test_scripted_agent_consumes_one_item_per_invocation_then_holds():
    config = {
        "decisions": [
            {"reasoning": "a", "actions": [{"action": "close", "symbol": "ETH"}]},
            "```json\n{'reasoning': 'b', 'actions': [{'action': 'hold'},]}\n```",
        ]
    }
    first = invoke_agent(provider="scripted", model="s", config=config, api_key=None, context=ctx(0))
    second = invoke_agent(provider="scripted", model="s", config=config, api_key=None, context=ctx(1))
    third = invoke_agent(provider="scripted", model="s", config=config, api_key=None, context=ctx(2))
    assert first.decision.trading_actions[0].symbol == "ETH/USDT"
    assert second.status == "success" and second.decision.is_hold and second.decision.reasoning == "b"
    assert third.status == "success" and third.decision.is_hold
    assert "exhausted" in third.decision.reasoning


def test_scripted_decisions_must_be_a_list():
    outcome = invoke_agent(
        provider="scripted", model="s", config={"decisions": "open"}, api_key=None, context=ctx(0)
    )
    assert outcome.status == "error"


@pytest.mark.parametrize(
    "model, tokens_in, tokens_out, expected",
    [
        ("claude-sonnet-4-5-20250929", 1_000_000, 0, Decimal("3")),  # dated name -> family price
        ("claude-opus-4-1", 10_000, 1_000, Decimal("0.225")),  # 10k x 15/M + 1k x 75/M = 0.15 + 0.075
        ("gpt-4o-mini", 2_000, 500, Decimal("0.0006")),  # 2k x 0.15/M + 500 x 0.6/M = 0.0003 + 0.0003
        ("gpt-4o-2024-08-06", 1_000, 1_000, Decimal("0.0125")),  # 2.5/M + 10/M per 1k each
        ("deepseek-chat", 1_000_000, 1_000_000, Decimal("0.70")),  # 0.28 + 0.42
        ("openrouter/qwen-plus", 1_000_000, 0, Decimal("0.4")),  # gateway prefix stripped
        ("o3-mini", 1_000_000, 0, Decimal("1.1")),  # not confused with o3
    ],
)
def test_costs_from_the_price_table(model, tokens_in, tokens_out, expected):
    cost, note = invocation_cost(model, tokens_in, tokens_out)
    assert cost == expected
    assert note.startswith("priced as")


def test_unknown_model_costs_zero_with_a_note_and_override_wins():
    cost, note = invocation_cost("my-local-llama", 10_000, 10_000)
    assert cost == 0 and "no price" in note
    cost, note = invocation_cost(
        "gpt-4o", 1_000_000, 1_000_000, {"input_per_mtok": "0.5", "output_per_mtok": 1}
    )
    assert cost == Decimal("1.5") and note == "priced as llm_config.pricing"
    assert price_for("gpt-5.1") is None  # newer than the table: not guessed as gpt-5


def test_update_exit_null_keeps_the_current_level_of_the_position():
    # the account's BTC/USDT long has SL 58500 and TP 64000 (conftest.make_account)
    context = AgentContext(rules=make_rules(), snapshot=make_snapshot(), account=make_account(), now=NOW)
    script = {
        "decisions": [
            {
                "reasoning": "trail",
                "actions": [
                    {"action": "update_exit", "symbol": "BTC/USDT", "stop_loss": 60500, "take_profit": None},
                    {"action": "update_exit", "symbol": "ETH/USDT", "stop_loss": None, "take_profit": 3500},
                ],
            }
        ]
    }
    outcome = invoke_agent(provider="scripted", model="s", config=script, api_key=None, context=context)
    btc, eth = outcome.decision.actions
    assert (btc.stop_loss, btc.take_profit) == (Decimal("60500"), Decimal("64000"))
    assert (eth.stop_loss, eth.take_profit) == (None, Decimal("3500"))  # no position: nothing to keep


# --- llm_config as every door checks it (agents.llm_config) -----------------------------------


def test_llm_config_refuses_a_price_override_that_is_absurd_or_malformed():
    from agents.llm_config import llm_config_check
    from gauntlet.errors import DomainError

    good = {"pricing": {"input_per_mtok": "3", "output_per_mtok": 15}}
    assert llm_config_check(good) == good
    for pricing in (
        {"input_per_mtok": 1e300, "output_per_mtok": 1},
        {"input_per_mtok": -1, "output_per_mtok": 1},
        {"input_per_mtok": "NaN", "output_per_mtok": 1},
        {"input_per_mtok": 1},
        {},
        "cheap",
    ):
        with pytest.raises(DomainError, match="pricing"):
            llm_config_check({"pricing": pricing})


def test_an_absurd_stored_price_override_prices_nothing_instead_of_overflowing():
    from agents.pricing import invocation_cost

    cost, note = invocation_cost("gpt-4o", 10**9, 10**9, {"input_per_mtok": "1e300", "output_per_mtok": "1"})
    assert cost == 0 and "malformed" in note
