"""Every SDK provider exercised for real: only the HTTP transport is mocked (respx via the
httpx2 bridge in conftest). Costs are worked from agents/pricing.json by hand."""

import json
from decimal import Decimal

import httpx
import pytest

from agents.decision import DECISION_SCHEMA, OpenAction
from agents.invoke import invoke_agent
from agents.providers import agent_for
from agents.prompt import build_context
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot

DECISION = {
    "reasoning": "trend up",
    "actions": [
        {
            "action": "open",
            "symbol": "BTC/USDT",
            "side": "long",
            "quantity": None,
            "notional_usd": 2000,
            "leverage": 2,
            "stop_loss": 58500,
            "take_profit": None,
            "invalidation": None,
            "confidence": 0.7,
        }
    ],
}


@pytest.fixture
def context():
    return build_context(
        rules=make_rules(), snapshot=make_snapshot(), account=make_account(with_position=False), now=NOW
    )


def anthropic_message(tokens_in=1000, tokens_out=200, payload=DECISION):
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "tool_use", "id": "toolu_01", "name": "submit_decision", "input": payload}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def chat_completion(content, tokens_in=1000, tokens_out=200, model="gpt-4o"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764000000,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        },
    }


def sent_json(route, call=-1):
    return json.loads(route.calls[call].request.content)


# ---------------------------------------------------------------------------------------------
# Anthropic


def test_anthropic_forces_the_decision_tool_and_prices_the_usage(http_mock, context):
    route = http_mock.post("https://gateway.test/anthropic/v1/messages").mock(
        return_value=httpx.Response(200, json=anthropic_message())
    )
    outcome = invoke_agent(
        provider="anthropic",
        model="claude-haiku-4-5",
        config={"base_url": "https://gateway.test/anthropic", "temperature": 0.2},
        api_key="sk-ant-participant",
        context=context,
    )
    request = route.calls.last.request
    body = sent_json(route)
    # anthropic 2.x sends the API key as a bearer token (0.x used x-api-key): assert what the
    # installed official SDK actually puts on the wire.
    assert request.headers["authorization"] == "Bearer sk-ant-participant"
    assert "anthropic-version" in request.headers
    assert body["model"] == "claude-haiku-4-5"
    assert body["tools"][0]["name"] == "submit_decision"
    assert body["tools"][0]["input_schema"] == DECISION_SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": "submit_decision"}
    assert body["max_tokens"] == 2048
    assert body["temperature"] == 0.2
    assert body["system"] == context.system_prompt
    assert body["messages"] == [{"role": "user", "content": context.user_prompt}]
    assert outcome.status == "success"
    assert outcome.parse.source == "structured"
    assert outcome.decision.actions == (
        OpenAction(
            symbol="BTC/USDT",
            side="long",
            leverage=Decimal("2"),
            notional_usd=Decimal("2000"),
            stop_loss=Decimal("58500"),
            confidence=Decimal("0.7"),
        ),
    )
    assert (outcome.response.input_tokens, outcome.response.output_tokens) == (1000, 200)
    # 1000 x $1/M + 200 x $5/M = 0.001 + 0.001
    assert outcome.cost_usd == Decimal("0.002")
    assert outcome.response.retries == 0


def test_anthropic_uses_the_settings_key_and_default_url_without_a_participant_key(
    http_mock, context, settings
):
    settings.ANTHROPIC_API_KEY = "sk-ant-from-settings"
    route = http_mock.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, json=anthropic_message())
    )
    outcome = invoke_agent(
        provider="anthropic", model="claude-haiku-4-5", config={}, api_key=None, context=context
    )
    assert outcome.status == "success"
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-ant-from-settings"


def test_anthropic_prefers_the_env_variable_named_in_llm_config(http_mock, context, settings, monkeypatch):
    settings.ANTHROPIC_API_KEY = "sk-ant-from-settings"
    monkeypatch.setenv("TEAM_A_ANTHROPIC_KEY", "sk-ant-team-a")
    route = http_mock.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, json=anthropic_message())
    )
    invoke_agent(
        provider="anthropic",
        model="claude-haiku-4-5",
        config={"api_key_env": "TEAM_A_ANTHROPIC_KEY"},
        api_key=None,
        context=context,
    )
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-ant-team-a"


def test_anthropic_429_then_200_retries_once_with_backoff(http_mock, context, no_backoff):
    route = http_mock.post("https://api.anthropic.com/v1/messages").mock(
        side_effect=[
            httpx.Response(
                429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
            ),
            httpx.Response(200, json=anthropic_message()),
        ]
    )
    outcome = invoke_agent(
        provider="anthropic", model="claude-haiku-4-5", config={}, api_key="sk-ant", context=context
    )
    assert route.call_count == 2
    assert outcome.status == "success"
    assert outcome.response.retries == 1
    assert no_backoff == [1.0]


def test_anthropic_timeout_is_retried_twice_then_recorded(http_mock, context, no_backoff):
    route = http_mock.post("https://api.anthropic.com/v1/messages").mock(
        side_effect=httpx.TimeoutException("read timed out")
    )
    outcome = invoke_agent(
        provider="anthropic",
        model="claude-haiku-4-5",
        config={"timeout_seconds": 5},
        api_key="sk-ant",
        context=context,
    )
    assert route.call_count == 3
    assert outcome.status == "timeout"
    assert outcome.response.retries == 2
    assert "3 attempts" in outcome.error
    assert no_backoff == [1.0, 2.0]  # exponential backoff
    assert outcome.decision.is_hold


def test_anthropic_400_is_not_retried(http_mock, context):
    route = http_mock.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(
            400, json={"type": "error", "error": {"type": "invalid_request_error", "message": "bad model"}}
        )
    )
    outcome = invoke_agent(
        provider="anthropic", model="claude-nope", config={}, api_key="sk-ant", context=context
    )
    assert route.call_count == 1
    assert outcome.status == "error"
    assert "HTTP 400" in outcome.error
    assert outcome.response.retries == 0


def test_missing_key_is_a_recorded_error_and_no_request_is_sent(http_mock, context, settings):
    settings.ANTHROPIC_API_KEY = ""
    settings.OPENAI_API_KEY = ""
    route = http_mock.route().mock(return_value=httpx.Response(500))
    for provider, model in (("anthropic", "claude-haiku-4-5"), ("openai", "gpt-4o")):
        outcome = invoke_agent(provider=provider, model=model, config={}, api_key=None, context=context)
        assert outcome.status == "error"
        assert "no API key" in outcome.error
        assert outcome.decision.is_hold
    assert route.call_count == 0


# ---------------------------------------------------------------------------------------------
# OpenAI and the OpenAI-compatible family


def test_openai_sends_strict_json_schema_and_bearer_key(http_mock, context):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion(json.dumps(DECISION)))
    )
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key="sk-openai", context=context)
    body = sent_json(route)
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-openai"
    assert body["model"] == "gpt-4o"
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "decision", "schema": DECISION_SCHEMA, "strict": True},
    }
    assert body["max_completion_tokens"] == 2048
    assert body["messages"][0] == {"role": "system", "content": context.system_prompt}
    assert outcome.status == "success"
    assert outcome.decision.trading_actions[0].notional_usd == Decimal("2000")
    # 1000 x $2.5/M + 200 x $10/M = 0.0025 + 0.002
    assert outcome.cost_usd == Decimal("0.0045")


def test_openai_json_object_switch_and_base_url_and_price_override(http_mock, context):
    route = http_mock.post("https://proxy.test/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion("Here: " + json.dumps(DECISION), 2000, 100))
    )
    outcome = invoke_agent(
        provider="openai",
        model="gpt-4o-mini",
        config={
            "base_url": "https://proxy.test/v1",
            "response_format": "json_object",
            "max_tokens": 900,
            "pricing": {"input_per_mtok": "1", "output_per_mtok": "2"},
        },
        api_key="sk-openai",
        context=context,
    )
    body = sent_json(route)
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == 900
    assert outcome.status == "success"
    assert outcome.parse.source == "text"
    # override: 2000 x $1/M + 100 x $2/M = 0.002 + 0.0002
    assert outcome.cost_usd == Decimal("0.0022")


def test_openai_retries_5xx_twice_then_succeeds(http_mock, context, no_backoff):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(502, json={"error": {"message": "bad gateway"}}),
            httpx.Response(503, json={"error": {"message": "overloaded"}}),
            httpx.Response(200, json=chat_completion(json.dumps(DECISION))),
        ]
    )
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key="sk", context=context)
    assert route.call_count == 3
    assert outcome.status == "success"
    assert outcome.response.retries == 2
    assert no_backoff == [1.0, 2.0]


def test_openai_429_then_200_retries_once(http_mock, context):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json={"error": {"message": "rate limited"}}),
            httpx.Response(200, json=chat_completion(json.dumps(DECISION))),
        ]
    )
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key="sk", context=context)
    assert route.call_count == 2
    assert outcome.response.retries == 1
    assert outcome.status == "success"


def test_openai_401_is_not_retried(http_mock, context):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(401, json={"error": {"message": "invalid key"}})
    )
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key="sk-bad", context=context)
    assert route.call_count == 1
    assert outcome.status == "error"
    assert "HTTP 401" in outcome.error


def test_openai_timeout_is_recorded(http_mock, context):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=httpx.TimeoutException("timed out")
    )
    outcome = invoke_agent(
        provider="openai", model="gpt-4o", config={"max_retries": 0}, api_key="sk", context=context
    )
    assert route.call_count == 1
    assert outcome.status == "timeout"
    assert outcome.response.retries == 0


def test_openai_prose_without_json_is_invalid_response_but_still_priced(http_mock, context):
    http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion("I would buy some bitcoin.", 500, 10))
    )
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key="sk", context=context)
    assert outcome.status == "invalid_response"
    assert outcome.decision.is_hold
    # 500 x 2.5/M + 10 x 10/M = 0.00125 + 0.0001
    assert outcome.cost_usd == Decimal("0.00135")


def test_azure_calls_the_deployment_with_the_api_key_header(http_mock, context, settings):
    settings.AZURE_OPENAI_API_KEY = "azure-key"
    settings.AZURE_OPENAI_ENDPOINT = "https://myres.openai.azure.com"
    route = http_mock.post(
        "https://myres.openai.azure.com/openai/deployments/trader-4o/chat/completions"
    ).mock(return_value=httpx.Response(200, json=chat_completion(json.dumps(DECISION))))
    outcome = invoke_agent(
        provider="azure_openai",
        model="gpt-4o",
        config={"deployment": "trader-4o", "api_version": "2024-10-21"},
        api_key=None,
        context=context,
    )
    request = route.calls.last.request
    assert request.headers["api-key"] == "azure-key"
    assert request.url.params["api-version"] == "2024-10-21"
    assert sent_json(route)["response_format"]["type"] == "json_schema"
    assert outcome.status == "success"


def test_azure_without_endpoint_is_a_recorded_error(http_mock, context, settings):
    settings.AZURE_OPENAI_ENDPOINT = ""
    outcome = invoke_agent(provider="azure_openai", model="gpt-4o", config={}, api_key="k", context=context)
    assert outcome.status == "error"
    assert "endpoint" in outcome.error


@pytest.mark.parametrize(
    "provider, setting, url, model",
    [
        ("deepseek", "DEEPSEEK_API_KEY", "https://api.deepseek.com/chat/completions", "deepseek-chat"),
        (
            "qwen",
            "QWEN_API_KEY",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions",
            "qwen-plus",
        ),
    ],
)
def test_deepseek_and_qwen_use_their_default_urls_and_json_mode(
    http_mock, context, settings, provider, setting, url, model
):
    setattr(settings, setting, f"{provider}-key")
    route = http_mock.post(url).mock(
        return_value=httpx.Response(
            200, json=chat_completion("```json\n" + json.dumps(DECISION) + "\n```", model=model)
        )
    )
    outcome = invoke_agent(provider=provider, model=model, config={}, api_key=None, context=context)
    body = sent_json(route)
    assert route.calls.last.request.headers["authorization"] == f"Bearer {provider}-key"
    assert body["model"] == model
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 2048
    assert outcome.status == "success"
    assert outcome.cost_usd > 0


def test_openai_compatible_needs_no_key_and_goes_to_base_url(http_mock, context):
    route = http_mock.post("http://localhost:11434/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion(json.dumps(DECISION), model="llama3.1"))
    )
    outcome = invoke_agent(
        provider="openai_compatible",
        model="llama3.1",
        config={"base_url": "http://localhost:11434/v1", "response_format": "none"},
        api_key=None,
        context=context,
    )
    body = sent_json(route)
    assert body["model"] == "llama3.1"
    assert "response_format" not in body
    assert outcome.status == "success"
    assert outcome.cost_usd == Decimal("0")
    assert "no price" in outcome.cost_note


def test_a_local_server_is_waited_for_longer_and_a_timed_out_request_is_not_sent_again(
    http_mock, context, no_backoff
):
    # A llama.cpp / Ollama server on a CPU keeps working on a request its caller gave up on:
    # a retry would only queue a second copy behind the first.
    route = http_mock.post("http://localhost:8080/v1/chat/completions").mock(
        side_effect=httpx.TimeoutException("read timed out")
    )
    outcome = invoke_agent(
        provider="openai_compatible", model="smollm2", config={"base_url": "http://localhost:8080/v1"},
        api_key=None, context=context,
    )
    assert route.call_count == 1
    assert outcome.status == "timeout" and outcome.response.retries == 0
    agent = agent_for("openai_compatible", model="smollm2", config={"base_url": "http://x/v1"}, api_key=None)
    assert agent.config["timeout_seconds"] == 300.0
    own = agent_for("openai_compatible", model="m", config={"timeout_seconds": 20, "retry_on_timeout": True},
                    api_key=None)  # fmt: skip
    assert own.config["timeout_seconds"] == 20 and own.config["retry_on_timeout"] is True
    hosted = agent_for("openai", model="gpt-4o", config={}, api_key="sk")
    assert "retry_on_timeout" not in hosted.config


def test_unknown_provider_is_a_recorded_error(context):
    outcome = invoke_agent(provider="mystery", model="x", config={}, api_key=None, context=context)
    assert outcome.status == "error"
    assert "unknown provider" in outcome.error


def test_anthropic_text_reply_without_the_tool_is_parsed_from_the_text(http_mock, context):
    message = anthropic_message()
    message["content"] = [{"type": "text", "text": "Decision:\n```json\n" + json.dumps(DECISION) + "\n```"}]
    message["stop_reason"] = "end_turn"
    http_mock.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, json=message)
    )
    outcome = invoke_agent(
        provider="anthropic", model="claude-haiku-4-5", config={}, api_key="sk-ant", context=context
    )
    assert outcome.status == "success"
    assert outcome.parse.source == "fenced"
    assert outcome.decision.trading_actions[0].symbol == "BTC/USDT"


def test_agents_run_concurrently_from_a_thread_pool(http_mock, context):
    from concurrent.futures import ThreadPoolExecutor

    http_mock.post("https://api.anthropic.com/v1/messages").mock(
        return_value=httpx.Response(200, json=anthropic_message())
    )
    http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        return_value=httpx.Response(200, json=chat_completion(json.dumps(DECISION)))
    )
    calls = [
        ("anthropic", "claude-haiku-4-5", {}),
        ("openai", "gpt-4o", {}),
        ("baseline", "flat", {}),
        ("scripted", "s", {"decisions": ['{"actions": []}']}),
    ] * 3
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [
            pool.submit(invoke_agent, provider=p, model=m, config=c, api_key="k", context=context)
            for p, m, c in calls
        ]
        outcomes = [f.result(timeout=30) for f in futures]
    assert [o.status for o in outcomes] == ["success"] * 12
    assert [o.decision.is_hold for o in outcomes[:4]] == [False, False, True, True]


# ---------------------------------------------------------------------------------------------
# One SSL context per process


def _ssl_context_of(client):
    # SDK client -> httpx2.Client -> HTTPTransport -> httpcore2 pool: the context TLS uses
    return client._client._transport._pool._ssl_context


def test_every_sdk_client_shares_one_ssl_context_instead_of_loading_the_ca_bundle_again():
    from concurrent.futures import ThreadPoolExecutor

    from agents.providers.llm import AnthropicAgent, OpenAIChatAgent, shared_ssl_context

    def build(i):
        if i % 3 == 0:
            return AnthropicAgent(model="claude-haiku-4-5", config={}, api_key="k").client()
        if i % 3 == 1:
            return OpenAIChatAgent(provider="openai", model="gpt-4o", config={}, api_key="k").client()
        return OpenAIChatAgent(
            provider="azure_openai", model="gpt-4o", config={"endpoint": "https://x.openai.azure.com"}, api_key="k"
        ).client()

    with ThreadPoolExecutor(max_workers=8) as pool:
        clients = list(pool.map(build, range(12)))
    contexts = {id(_ssl_context_of(c)) for c in clients}
    assert contexts == {id(shared_ssl_context())}
    assert shared_ssl_context().verify_mode.name == "CERT_REQUIRED"  # still verifying


def test_the_shared_http_client_keeps_the_configured_timeout():
    from agents.providers.llm import OpenAIChatAgent

    client = OpenAIChatAgent(provider="openai", model="gpt-4o", config={"timeout_seconds": 12}, api_key="k").client()
    assert client.timeout == 12.0
    assert client._client.timeout.read == 12.0
