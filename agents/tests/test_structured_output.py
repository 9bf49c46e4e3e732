"""Structured output on OpenAI-compatible servers: what each mode sends, how auto steps down
and remembers, Retry-After, reasoning kept apart. Only the HTTP transport is mocked (respx)."""

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from django.contrib.admin.sites import site
from django.test import RequestFactory

from agents.admin import StructuredOutputCapabilityAdmin
from agents.decision import DECISION_SCHEMA
from agents.invoke import invoke_agent, provider_config_warnings
from agents.models import Invocation, StructuredOutputCapability
from agents.prompt import build_context
from agents.providers.base import retry_after_seconds
from agents.providers.structured import capabilities, is_shape_rejection, split_reasoning
from agents.selectors import structured_output_capabilities_load, structured_output_mode_get
from agents.services import invocation_record
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot
from agents.tests.test_providers import DECISION, chat_completion, sent_json
from competitions.models import Round
from competitions.tests.factories import ParticipantFactory

URL = "http://llm.test/v1/chat/completions"
BASE = {"base_url": "http://llm.test/v1"}
OK = httpx.Response(200, json=chat_completion(json.dumps(DECISION), model="smollm2"))


@pytest.fixture
def context():
    return build_context(
        rules=make_rules(), snapshot=make_snapshot(), account=make_account(with_position=False), now=NOW
    )


def call(context, model="smollm2", provider="openai_compatible", **config):
    return invoke_agent(provider=provider, model=model, config=BASE | config, api_key=None, context=context)


def refusal(status, message):
    return httpx.Response(status, json={"error": {"message": message, "type": "invalid_request_error"}})


# ---------------------------------------------------------------------------------------------
# What each mode sends


@pytest.mark.parametrize(
    "mode,expected",
    [
        (
            "json_schema",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "decision", "schema": DECISION_SCHEMA, "strict": True},
                }
            },
        ),
        ("json_object_schema", {"response_format": {"type": "json_object", "schema": DECISION_SCHEMA}}),
        ("vllm_guided_json", {"guided_json": DECISION_SCHEMA}),
        ("ollama_format", {"format": DECISION_SCHEMA}),
        (
            "tools",
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "submit_decision",
                            "description": "Submit this round's trading decision.",
                            "parameters": DECISION_SCHEMA,
                        },
                    }
                ],
                "tool_choice": {"type": "function", "function": {"name": "submit_decision"}},
            },
        ),
        ("json_object", {"response_format": {"type": "json_object"}}),
        ("none", {}),
    ],
)
def test_each_mode_sends_its_own_shape_and_nothing_of_the_others(http_mock, context, mode, expected):
    route = http_mock.post(URL).mock(return_value=OK)
    outcome = call(context, structured_output=mode)
    body = sent_json(route)
    shape_keys = {"response_format", "guided_json", "format", "tools", "tool_choice"}
    assert {k: v for k, v in body.items() if k in shape_keys} == expected
    assert body["max_tokens"] == 2048 and body["model"] == "smollm2"
    assert outcome.status == "success"
    assert outcome.response.structured_output_mode == mode
    assert len(route.calls) == 1


def test_a_forced_tool_call_is_read_as_the_structured_decision(http_mock, context):
    reply = chat_completion(None, model="smollm2")
    reply["choices"][0]["message"]["tool_calls"] = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "submit_decision", "arguments": json.dumps(DECISION)},
        }
    ]
    reply["choices"][0]["finish_reason"] = "tool_calls"
    http_mock.post(URL).mock(return_value=httpx.Response(200, json=reply))
    outcome = call(context, structured_output="tools")
    assert outcome.status == "success" and outcome.parse.source == "structured"
    assert outcome.decision.trading_actions[0].symbol == "BTC/USDT"
    assert json.loads(outcome.response.raw_text) == DECISION


def test_provider_defaults_are_their_documented_modes(http_mock, context, settings):
    settings.OPENAI_API_KEY = settings.DEEPSEEK_API_KEY = settings.QWEN_API_KEY = "k"
    routes = {
        "openai": http_mock.post("https://api.openai.com/v1/chat/completions").mock(return_value=OK),
        "deepseek": http_mock.post("https://api.deepseek.com/chat/completions").mock(return_value=OK),
        "qwen": http_mock.post(
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
        ).mock(return_value=OK),
        "openai_compatible": http_mock.post(URL).mock(return_value=OK),
    }
    for provider in routes:
        config = BASE if provider == "openai_compatible" else {}
        invoke_agent(provider=provider, model="some-model", config=config, api_key=None, context=context)
    formats = {p: sent_json(r).get("response_format", {}).get("type") for p, r in routes.items()}
    assert formats == {
        "openai": "json_schema",
        "deepseek": "json_object",
        "qwen": "json_object",
        "openai_compatible": "json_schema",  # auto starts at the strongest
    }


def test_the_legacy_response_format_key_still_fixes_the_mode(http_mock, context):
    route = http_mock.post(URL).mock(return_value=OK)
    call(context, response_format="json_object")
    assert sent_json(route)["response_format"] == {"type": "json_object"}


# ---------------------------------------------------------------------------------------------
# auto: step down on a refused shape, remember, start there next time


@pytest.mark.django_db
def test_auto_steps_down_when_the_server_names_response_format_and_remembers_it(http_mock, context):
    route = http_mock.post(URL).mock(
        side_effect=[refusal(500, "response_format type json_schema is not supported"), OK, OK]
    )
    outcome = call(context)
    assert [sent_json(route, i)["response_format"]["type"] for i in range(2)] == ["json_schema", "json_object"]
    assert "schema" in sent_json(route, 1)["response_format"]  # json_object_schema
    assert outcome.status == "success"
    assert outcome.response.retries == 0  # a step down is not a retry
    assert outcome.response.structured_output_mode == "json_object_schema"
    assert outcome.response.capability_learned
    assert any("json_schema refused" in note for note in outcome.notes)

    participant = ParticipantFactory(llm_provider="openai_compatible", llm_model="smollm2", llm_config=BASE)
    round_ = Round.objects.create(competition=participant.competition, number=1, market_time=NOW)
    row, _ = invocation_record(
        participant_id=participant.pk, round_id=round_.pk, snapshot_id=None,
        provider="openai_compatible", model="smollm2", context=context, outcome=outcome,
    )
    assert Invocation.objects.get(pk=row.pk).structured_output_mode == "json_object_schema"
    stored = StructuredOutputCapability.objects.get()
    assert (stored.base_url, stored.model, stored.mode) == ("http://llm.test/v1", "smollm2", "json_object_schema")
    assert structured_output_mode_get(participant=participant).mode == "json_object_schema"

    # another process: empty memory, read from the table on the round's thread
    capabilities.clear()
    assert structured_output_capabilities_load() == 1
    second = call(context)
    assert sent_json(route, 2)["response_format"] == {"type": "json_object", "schema": DECISION_SCHEMA}
    assert len(route.calls) == 3
    assert second.response.structured_output_mode == "json_object_schema"
    assert not second.response.capability_learned  # nothing new: no write next time


def test_auto_walks_down_as_far_as_the_server_needs(http_mock, context):
    route = http_mock.post(URL).mock(
        side_effect=[
            refusal(400, "Unknown response_format type 'json_schema'"),
            refusal(422, "response_format.schema: extra fields not permitted"),
            OK,
        ]
    )
    outcome = call(context)
    assert "guided_json" in sent_json(route, 2) and "response_format" not in sent_json(route, 2)
    assert outcome.response.structured_output_mode == "vllm_guided_json"
    assert capabilities.get("http://llm.test/v1/", "smollm2") == "vllm_guided_json"


def test_a_fixed_mode_refused_is_an_error_sent_once_never_retried(http_mock, context):
    route = http_mock.post(URL).mock(return_value=refusal(500, "json_schema: grammar conversion failed"))
    outcome = call(context, structured_output="json_schema")
    assert len(route.calls) == 1
    assert outcome.status == "error" and "HTTP 500" in outcome.error
    assert outcome.response.structured_output_mode == "json_schema"


def test_a_5xx_that_names_no_shape_is_retried_unchanged(http_mock, context, no_backoff):
    route = http_mock.post(URL).mock(side_effect=[refusal(502, "upstream down"), OK])
    outcome = call(context)
    assert len(route.calls) == 2 and outcome.response.retries == 1
    assert [sent_json(route, i)["response_format"]["type"] for i in range(2)] == ["json_schema"] * 2


def test_a_401_is_final_whatever_its_body_says(http_mock, context):
    route = http_mock.post(URL).mock(return_value=refusal(401, "invalid key for response_format"))
    outcome = call(context)
    assert len(route.calls) == 1 and outcome.status == "error"


def test_every_mode_refused_ends_in_an_error_naming_the_last_refusal(http_mock, context):
    route = http_mock.post(URL).mock(return_value=refusal(400, "tools and response_format and format: no"))
    outcome = call(context)
    assert len(route.calls) == 7
    assert outcome.status == "error" and outcome.response.structured_output_mode == "none"


def test_a_refused_token_parameter_is_renamed_once_not_stepped_down(http_mock, context):
    route = http_mock.post(URL).mock(
        side_effect=[
            refusal(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                         "Use 'max_completion_tokens' instead."),
            OK,
        ]
    )
    outcome = call(context, structured_output="json_schema")
    assert "max_tokens" not in sent_json(route, 1) and sent_json(route, 1)["max_completion_tokens"] == 2048
    assert outcome.status == "success"


def test_shape_refusals_are_told_apart_from_other_failures():
    assert is_shape_rejection(500, "'response_format' of type 'json_schema' is not supported")
    assert is_shape_rejection(400, "tools are not supported by this model")
    assert not is_shape_rejection(500, "CUDA out of memory")
    assert not is_shape_rejection(404, "model 'x' not found, try pulling it first; format")
    assert not is_shape_rejection(429, "rate limit on response_format requests")


# ---------------------------------------------------------------------------------------------
# Retry-After


def test_a_429_waits_the_seconds_retry_after_asks(http_mock, context, no_backoff):
    http_mock.post(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}), OK]
    )
    outcome = call(context, retry_backoff_seconds=1)
    assert no_backoff == [7.0]
    assert outcome.status == "success" and outcome.response.retries == 1


def test_a_503_with_an_http_date_waits_until_then(http_mock, context, no_backoff):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    http_mock.post(URL).mock(
        side_effect=[httpx.Response(503, headers={"Retry-After": when}, json={"error": {"message": "busy"}}), OK]
    )
    call(context)
    assert len(no_backoff) == 1 and 27 <= no_backoff[0] <= 30


def test_retry_after_is_capped_by_the_agent_timeout(http_mock, context, no_backoff):
    http_mock.post(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": {"message": "x"}}), OK]
    )
    call(context, timeout_seconds=20)
    assert no_backoff == [20.0]


def test_without_retry_after_the_backoff_is_exponential(http_mock, context, no_backoff):
    http_mock.post(URL).mock(side_effect=[refusal(429, "slow"), refusal(429, "slow"), OK])
    call(context, retry_backoff_seconds=1)
    assert no_backoff == [1.0, 2.0]


def test_retry_after_header_forms():
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert retry_after_seconds({"retry-after": "2.5"}) == 2.5
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"retry-after": "Tue, 01 Dec 2026 08:00:10 GMT"}, now=now) == 10
    assert retry_after_seconds({"retry-after": "Tue, 01 Dec 2026 07:00:00 GMT"}, now=now) == 0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({"retry-after": "-3"}) is None
    assert retry_after_seconds({}) is None


# ---------------------------------------------------------------------------------------------
# Reasoning models


DRAFT = {"reasoning": "draft", "actions": [{"action": "close", "symbol": "ETH/USDT", "quantity": None}]}


def test_reasoning_content_is_kept_apart_and_never_taken_for_the_decision(http_mock, context, settings):
    settings.DEEPSEEK_API_KEY = "k"
    reply = chat_completion(json.dumps(DECISION), model="deepseek-reasoner")
    reply["choices"][0]["message"]["reasoning_content"] = "Maybe " + json.dumps(DRAFT) + " no, open BTC."
    route = http_mock.post("https://api.deepseek.com/chat/completions").mock(
        return_value=httpx.Response(200, json=reply)
    )
    outcome = invoke_agent(
        provider="deepseek", model="deepseek-reasoner", config={"temperature": 0.2}, api_key=None, context=context
    )
    assert outcome.response.reasoning_text.startswith("Maybe {")
    assert outcome.response.raw_text == json.dumps(DECISION)
    assert [a.action for a in outcome.decision.actions] == ["open"]
    body = sent_json(route)
    assert "temperature" not in body  # documented as ignored by deepseek-reasoner: not sent
    assert body["response_format"] == {"type": "json_object"}
    assert any("temperature not sent" in note for note in outcome.notes)


def test_a_leading_think_block_is_reasoning_not_answer(http_mock, context):
    content = "<think>\nfirst idea " + json.dumps(DRAFT) + "\n</think>\n\n" + json.dumps(DECISION)
    http_mock.post(URL).mock(return_value=httpx.Response(200, json=chat_completion(content, model="qwq")))
    outcome = call(context, model="qwq", structured_output="none")
    assert outcome.response.raw_text == json.dumps(DECISION)
    assert outcome.response.reasoning_text.startswith("first idea")
    assert [a.action for a in outcome.decision.actions] == ["open"]
    assert split_reasoning("<think>cut off mid-thought") == ("", "cut off mid-thought")
    assert split_reasoning("no thinking") == ("no thinking", "")


@pytest.mark.parametrize("model", ["o3-mini", "o1", "gpt-5-mini", "openai/o4-mini"])
def test_openai_reasoning_models_get_no_temperature(http_mock, context, model):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(return_value=OK)
    invoke_agent(provider="openai", model=model, config={"temperature": 0.3}, api_key="k", context=context)
    body = sent_json(route)
    assert "temperature" not in body and body["max_completion_tokens"] == 2048


def test_other_models_keep_their_temperature(http_mock, context):
    route = http_mock.post("https://api.openai.com/v1/chat/completions").mock(return_value=OK)
    invoke_agent(provider="openai", model="gpt-4o", config={"temperature": 0.3}, api_key="k", context=context)
    assert sent_json(route)["temperature"] == 0.3


def test_a_temperature_the_server_refuses_is_dropped_once(http_mock, context):
    route = http_mock.post(URL).mock(
        side_effect=[refusal(400, "Unsupported value: 'temperature' does not support 0.3"), OK]
    )
    outcome = call(context, structured_output="json_object", temperature=0.3)
    assert "temperature" not in sent_json(route, 1)
    assert sent_json(route, 1)["response_format"] == {"type": "json_object"}
    assert outcome.status == "success"


# ---------------------------------------------------------------------------------------------
# Pages, admin, configuration


@pytest.mark.django_db
def test_the_participant_page_selector_says_setting_and_mode():
    auto = ParticipantFactory(llm_provider="openai_compatible", llm_model="smollm2", llm_config=BASE)
    view = structured_output_mode_get(participant=auto)
    assert (view.setting, view.mode) == ("auto", None)
    deepseek = ParticipantFactory(llm_provider="deepseek", llm_model="deepseek-chat", llm_config={})
    assert structured_output_mode_get(participant=deepseek).mode == "json_object"
    claude = ParticipantFactory(llm_provider="anthropic", llm_model="claude-haiku-4-5", llm_config={})
    assert structured_output_mode_get(participant=claude).mode == "tools"
    baseline = ParticipantFactory(llm_provider="baseline", llm_model="flat", llm_config={})
    assert structured_output_mode_get(participant=baseline) is None


def test_capability_admin_shows_the_remembered_modes_and_cannot_invent_one():
    admin = StructuredOutputCapabilityAdmin(StructuredOutputCapability, site)
    request = RequestFactory().get("/")
    assert "mode" in admin.list_display and "base_url" in admin.list_display
    assert not admin.has_add_permission(request) and not admin.has_change_permission(request)
    assert site.is_registered(StructuredOutputCapability)


def test_an_unknown_structured_output_setting_is_warned_about():
    warnings = provider_config_warnings("openai_compatible", "m", BASE | {"structured_output": "xml"}, False)
    assert any("structured_output must be one of auto, json_schema" in w for w in warnings)
    assert not any(
        "structured_output" in w
        for w in provider_config_warnings("openai_compatible", "m", BASE | {"structured_output": "tools"}, False)
    )


def test_a_refusal_naming_only_a_parameter_does_not_walk_the_modes(http_mock, context):
    """vLLM's "max_tokens is too large" would refuse every mode alike: after the one rename,
    the call ends with the server's reason instead of seven requests."""
    route = http_mock.post(URL).mock(
        return_value=refusal(400, "'max_tokens' or 'max_completion_tokens' is too large: 2048")
    )
    outcome = call(context)
    assert len(route.calls) == 2  # as sent, then with the token parameter renamed
    assert outcome.status == "error" and "too large" in outcome.error
    assert outcome.response.structured_output_mode == "json_schema"
