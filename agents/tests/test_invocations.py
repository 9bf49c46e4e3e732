"""The Invocation row: one per agent per round, everything it saw and said, priced."""

import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.contrib.admin.sites import site
from django.db import IntegrityError
from django.test import RequestFactory

from agents.admin import InvocationAdmin
from agents.context import CompetitionRules
from agents.invoke import invoke_agent
from agents.models import Invocation
from agents.prompt import PROMPT_VERSION, build_context
from agents.selectors import decision_history_list, invocation_count, invocation_get
from agents.services import InvocationAnswer, invocation_outcome_set, invocation_record, invocations_record
from agents.tests.conftest import NOW, make_account, make_snapshot
from competitions.models import Round
from competitions.tests.factories import ParticipantFactory
from marketdata.models import MarketSnapshotRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def participant():
    return ParticipantFactory(llm_provider="scripted", llm_model="script")


@pytest.fixture
def snapshot_record():
    snapshot = make_snapshot()
    return MarketSnapshotRecord.objects.create(
        at=snapshot.at, source="replay", dataset="test", payload=snapshot.to_dict()
    )


def make_round(participant, number=1):
    return Round.objects.create(
        competition=participant.competition, number=number, market_time=NOW + timedelta(hours=number)
    )


def context_for(participant, index=0):
    rules = CompetitionRules.from_competition(participant.competition)
    return build_context(
        rules=rules,
        snapshot=make_snapshot(),
        account=make_account(False),
        now=NOW,
        participant_id=participant.pk,
        invocation_index=index,
    )


def record(participant, round_, outcome, context, snapshot_id=None):
    return invocation_record(
        participant_id=participant.pk,
        round_id=round_.pk,
        snapshot_id=snapshot_id,
        provider=participant.llm_provider,
        model=participant.llm_model,
        context=context,
        outcome=outcome,
    )


SCRIPT = [
    {
        "reasoning": "go",
        "actions": [
            {"action": "open", "symbol": "BTC", "side": "long", "notional_usd": 1000, "leverage": 2},
            {"action": "open", "symbol": "DOGE/USDT", "side": "long", "notional_usd": 10, "leverage": 1},
        ],
    },
    "not json at all",
]


def test_competition_rules_are_read_from_the_competition_row(participant):
    rules = CompetitionRules.from_competition(participant.competition)
    assert rules.symbols == ("BTC/USDT", "ETH/USDT")
    assert rules.max_leverage == Decimal("10")
    assert rules.decision_rules().allowed_symbols == ("BTC/USDT", "ETH/USDT")


def test_a_recorded_invocation_keeps_prompts_raw_text_decision_and_outcomes(participant, snapshot_record):
    round_ = make_round(participant)
    context = context_for(participant)
    outcome = invoke_agent(
        provider="scripted", model="script", config={"decisions": SCRIPT}, api_key=None, context=context
    )
    invocation, created = record(participant, round_, outcome, context, snapshot_record.pk)
    invocation.refresh_from_db()
    assert created
    assert invocation.status == "success"
    assert invocation.snapshot_id == snapshot_record.pk
    assert invocation.prompt_version == PROMPT_VERSION
    assert invocation.system_prompt == context.system_prompt
    assert invocation.user_prompt == context.user_prompt
    assert json.loads(invocation.raw_response) == SCRIPT[0]
    assert invocation.parsed_decision["actions"][0]["symbol"] == "BTC/USDT"  # alias resolved
    assert invocation.action_outcomes == [
        {
            "index": 0,
            "action": {
                "action": "open",
                "symbol": "BTC/USDT",
                "side": "long",
                "leverage": "2",
                "quantity": None,
                "notional_usd": "1000",
                "stop_loss": None,
                "take_profit": None,
                "invalidation": None,
                "confidence": None,
            },
            "summary": "open long BTC/USDT notional $1000 x2",
            "status": "pending",
        },
        {
            "index": 1,
            "action": SCRIPT[0]["actions"][1],
            "summary": "open long DOGE/USDT notional_usd 10 leverage 1",
            "status": "rejected",
            "code": "unknown_symbol",
            "reason": "symbol 'DOGE/USDT' is not traded here (allowed: BTC/USDT, ETH/USDT)",
        },
    ]
    assert invocation.cost_usd == Decimal("0")


def test_the_second_record_for_the_same_round_returns_the_first_untouched(participant):
    round_ = make_round(participant)
    context = context_for(participant)
    first = invoke_agent(
        provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None, context=context
    )
    second = invoke_agent(
        provider="scripted",
        model="s",
        config={"decisions": SCRIPT},
        api_key=None,
        context=context_for(participant, index=1),
    )
    row, created = record(participant, round_, first, context)
    again, created_again = record(participant, round_, second, context)
    assert created and not created_again
    assert again.pk == row.pk and again.status == "success"
    assert Invocation.objects.filter(participant=participant, round=round_).count() == 1


def test_recording_a_new_invocation_is_one_insert_and_a_duplicate_leaves_the_first_untouched(participant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    round_ = make_round(participant)
    context = context_for(participant)
    first = invoke_agent(provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None, context=context)
    with CaptureQueriesContext(connection) as queries:
        row, created = record(participant, round_, first, context)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    # the savepoint pair only appears because the test itself runs inside a transaction
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
    assert created

    second = invoke_agent(
        provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None,
        context=context_for(participant, index=1),
    )
    again, created_again = record(participant, round_, second, context)
    assert not created_again and again.pk == row.pk
    again.refresh_from_db()  # the caller's transaction survived the duplicate insert
    assert again.status == "success" and again.action_outcomes == row.action_outcomes


def test_answers_that_arrive_together_are_recorded_in_one_insert_and_duplicates_stay_untouched(participant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    other = ParticipantFactory(competition=participant.competition, llm_provider="scripted", llm_model="script")
    round_ = make_round(participant)
    outcome = invoke_agent(provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None,
                           context=context_for(participant))

    def answer(who, what):
        return InvocationAnswer(who.pk, round_.pk, None, who.llm_provider, who.llm_model, context_for(who), what)

    with CaptureQueriesContext(connection) as queries:
        rows = invocations_record([answer(participant, outcome), answer(other, outcome)])
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert [s for s in statements if s not in ("SAVEPOINT", "RELEASE")] == ["INSERT"]
    assert [created for _, created in rows] == [True, True]
    assert all(row.pk for row, _ in rows)

    # a resumed round records again: what was recorded first stays, the new one is added
    third = ParticipantFactory(competition=participant.competition, llm_provider="scripted", llm_model="script")
    late = invoke_agent(provider="scripted", model="s", config={"decisions": ["not json"]}, api_key=None,
                        context=context_for(participant, index=1))
    again = invocations_record([answer(participant, late), answer(third, late)])
    assert [created for _, created in again] == [False, True]
    assert again[0][0].pk == rows[0][0].pk and again[0][0].status == "success"
    assert Invocation.objects.filter(round=round_).count() == 3


def test_the_database_refuses_two_invocations_for_one_participant_and_round(participant):
    round_ = make_round(participant)
    fields = dict(
        participant=participant,
        round=round_,
        provider="scripted",
        model="s",
        prompt_version="v",
        system_prompt="s",
        user_prompt="u",
        status="success",
    )
    Invocation.objects.create(**fields)
    with pytest.raises(IntegrityError):
        Invocation.objects.create(**fields)


def test_an_unparseable_reply_is_recorded_as_invalid_response_and_a_hold(participant):
    round_ = make_round(participant, 2)
    context = context_for(participant, index=1)
    outcome = invoke_agent(
        provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None, context=context
    )
    invocation, _ = record(participant, round_, outcome, context)
    assert invocation.status == "invalid_response"
    assert invocation.raw_response == "not json at all"
    assert "no JSON decision" in invocation.error
    assert invocation.action_outcomes == []
    assert invocation.parsed_decision["actions"] == [{"action": "hold"}]


def test_a_missing_key_is_recorded_as_an_error_row_not_a_crash(participant, settings):
    settings.OPENAI_API_KEY = ""
    round_ = make_round(participant)
    context = context_for(participant)
    outcome = invoke_agent(provider="openai", model="gpt-4o", config={}, api_key=None, context=context)
    invocation, _ = invocation_record(
        participant_id=participant.pk,
        round_id=round_.pk,
        snapshot_id=None,
        provider="openai",
        model="gpt-4o",
        context=context,
        outcome=outcome,
    )
    assert invocation.status == "error"
    assert "no API key for openai" in invocation.error
    assert invocation.action_outcomes == []


def test_tokens_latency_retries_and_cost_are_stored(participant, http_mock):
    http_mock.post("https://api.openai.com/v1/chat/completions").mock(
        side_effect=[
            httpx.Response(429, json={"error": {"message": "slow down"}}),
            httpx.Response(
                200,
                json={
                    "id": "c",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "gpt-4o-mini",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": '{"reasoning": "", "actions": [{"action": "hold"}]}',
                            },
                        }
                    ],
                    "usage": {"prompt_tokens": 4000, "completion_tokens": 100, "total_tokens": 4100},
                },
            ),
        ]
    )
    round_ = make_round(participant)
    context = context_for(participant)
    outcome = invoke_agent(provider="openai", model="gpt-4o-mini", config={}, api_key="sk", context=context)
    invocation, _ = record(participant, round_, outcome, context)
    invocation.refresh_from_db()
    assert (invocation.input_tokens, invocation.output_tokens, invocation.retries) == (4000, 100, 1)
    # 4000 x 0.15/M + 100 x 0.6/M = 0.0006 + 0.00006
    assert invocation.cost_usd == Decimal("0.00066")
    assert invocation.latency_ms >= 0


def test_a_huge_raw_reply_is_stored_cut_and_says_so(participant):
    round_ = make_round(participant)
    context = context_for(participant)
    huge = "x" * 2_000_000
    outcome = invoke_agent(
        provider="scripted", model="s", config={"decisions": [huge]}, api_key=None, context=context
    )
    invocation, _ = record(participant, round_, outcome, context)
    assert invocation.status == "invalid_response"
    assert len(invocation.raw_response) < 201_000
    assert "[... cut: 1800000 more characters]" in invocation.raw_response


def test_outcome_set_fills_in_what_became_of_an_action_and_history_shows_it(participant):
    round_ = make_round(participant)
    context = context_for(participant)
    outcome = invoke_agent(
        provider="scripted", model="s", config={"decisions": SCRIPT}, api_key=None, context=context
    )
    invocation, _ = record(participant, round_, outcome, context)
    invocation_outcome_set(invocation_id=invocation.pk, index=0, status="filled", order_id=42)
    invocation.refresh_from_db()
    assert invocation.action_outcomes[0]["status"] == "filled"
    assert invocation.action_outcomes[0]["order_id"] == 42
    history = decision_history_list(participant_id=participant.pk)
    assert [(h.round_number, h.action, h.outcome) for h in history] == [
        (1, "open long BTC/USDT notional $1000 x2", "filled"),
        (1, "open long DOGE/USDT notional_usd 10 leverage 1", "rejected"),
    ]
    assert history[1].detail == invocation.action_outcomes[1]["reason"]  # the prompt's wording: the reason
    assert invocation_count(participant_id=participant.pk) == 1
    assert invocation_get(participant_id=participant.pk, round_id=round_.pk).pk == invocation.pk


def test_admin_is_read_only_with_status_and_provider_filters():
    admin = InvocationAdmin(Invocation, site)
    request = RequestFactory().get("/")
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request)
    assert not admin.has_delete_permission(request)
    assert {"status", "provider"} <= set(admin.list_filter)
