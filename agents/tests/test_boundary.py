"""Model text that no database stores as said: it is escaped or rejected at one boundary, and
the round's answer is always recorded. Run on SQLite and on PostgreSQL (DATABASE_URL)."""

import json
import math
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agents.boundary import ESCAPE, json_storable, text_restore, text_storable
from agents.context import CompetitionRules
from agents.decision import RejectedAction, decision_validate
from agents.invoke import invoke_agent
from agents.models import Invocation
from agents.parser import parse_response
from agents.prompt import build_context
from agents.services import invocation_record
from agents.tests.conftest import NOW, make_account, make_rules, make_snapshot
from competitions.models import Round
from competitions.tests.factories import ParticipantFactory

RULES = make_rules().decision_rules()


def open_action(**fields):
    action = {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": 1, "leverage": 1}
    action.update(fields)
    return action


# ---------------------------------------------------------------------------------------------
# The escape itself


@pytest.mark.parametrize(
    "text",
    ["plain", "a\x00b", "\ud800", "x\udfffy\ud83d", f"{ESCAPE}u0000 and \x00", ESCAPE * 3 + "\x00", "😀\x00"],
)
def test_unstorable_characters_are_escaped_visibly_and_restored_exactly(text):
    stored, escaped = text_storable(text)
    stored.encode("utf-8")  # every backend's encoder takes it
    assert "\x00" not in stored
    assert escaped == sum(1 for c in text if c == "\x00" or "\ud800" <= c <= "\udfff")
    assert text_restore(stored) == text


def test_clean_text_is_stored_as_said_even_with_the_escape_character_in_it():
    text = f"a literal {ESCAPE}u0041 in clean text"
    assert text_storable(text) == (text, 0)


def test_json_is_made_dumpable_without_nan_and_keeps_what_was_said():
    value = {
        "q": float("nan"),
        "p": float("inf"),
        "n": -float("inf"),
        "big": 10**400,
        "k\x00": ("t", {1, 2}),
        1: b"\xff",
        "d": Decimal("1.5"),
        "s": "\ud800",
    }
    stored, escaped = json_storable(value)
    text = json.dumps(stored, allow_nan=False)
    assert stored["q"] == "NaN" and stored["p"] == "Infinity" and stored["n"] == "-Infinity"
    assert stored["big"] == 10**400
    assert stored[f"k{ESCAPE}u0000"] == ["t", [1, 2]]
    assert stored["1"] == "\\xff" and stored["d"] == "1.5"
    assert escaped == 2
    assert text.encode("utf-8")


def test_nesting_deeper_than_any_decision_is_cut_not_recursed():
    value: list = []
    for _ in range(5000):
        value = [value]
    stored, _ = json_storable(value)
    json.dumps(stored)
    assert "[nested too deep]" in json.dumps(stored)


# ---------------------------------------------------------------------------------------------
# Hostile numbers: the action is rejected with a reason, the others proceed


@pytest.mark.parametrize(
    "field,literal,code",
    [
        ("quantity", "NaN", "invalid_size"),
        ("quantity", "Infinity", "invalid_size"),
        ("quantity", "1e400", "invalid_size"),
        ("quantity", '"1e400"', "invalid_size"),
        ("quantity", "1" + "0" * 30, "invalid_size"),
        ("quantity", "1e-300", "invalid_size"),
        ("stop_loss", "-Infinity", "invalid_exit"),
        ("take_profit", "1e400", "invalid_exit"),
        ("leverage", "NaN", "invalid_leverage"),
    ],
)
def test_non_finite_or_overflowing_numbers_reject_only_their_action(field, literal, code):
    bad = json.dumps(open_action(**{field: "PLACEHOLDER"})).replace('"PLACEHOLDER"', literal)
    text = f'{{"reasoning": "r", "actions": [{bad}, {{"action": "close", "symbol": "ETH/USDT", "quantity": null}}]}}'
    result = parse_response(text, rules=RULES)
    assert result.ok
    assert [a.action for a in result.decision.actions] == ["close"]
    (rejection,) = result.decision.rejected
    assert rejection.code == code and field in rejection.reason
    json.dumps(result.decision.to_dict(), allow_nan=False)


def test_an_exit_plan_price_of_1e400_in_update_exit_is_rejected_with_its_reason():
    text = '{"reasoning": "", "actions": [{"action": "update_exit", "symbol": "BTC/USDT", "stop_loss": 1e400}]}'
    result = parse_response(text, rules=RULES)
    assert result.decision.rejected[0].code == "invalid_exit"
    assert "finite" in result.decision.rejected[0].reason


def test_a_nul_in_the_json_of_the_reasoning_is_escaped_and_counted():
    result = parse_response('{"reasoning": "a\\u0000b", "actions": [{"action": "hold"}]}', rules=RULES)
    assert result.ok and result.decision.reasoning == f"a{ESCAPE}u0000b"
    assert result.escaped_characters == 1


# ---------------------------------------------------------------------------------------------
# Whole runs: invoke_agent + Invocation row, on whichever database the suite runs


HOSTILE_TEXTS = [
    'hi\x00 {"reasoning": "a\x00b", "actions": [{"action": "hold"}]}',
    '{"reasoning": "a\\u0000b", "actions": [{"action": "hold"}]}',
    '{"reasoning": "\\ud800", "actions": [{"action": "hold"}]}',
    'lone \ud800 {"reasoning": "x", "actions": [{"action": "hold"}]}',
    '{"reasoning": "x", "actions": [{"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": NaN, "leverage": 1}]}',
    '{"reasoning": "x", "actions": [{"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": 1e400, "leverage": 1}]}',
    '{"reasoning": "x", "actions": [{"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": 1, "leverage": 1, "stop_loss": -Infinity}]}',
    '{"reasoning": "x", "actions": [{"action": "update_exit", "symbol": "BTC/USDT", "stop_loss": Infinity}]}',
    '{"reasoning": "x", "actions": [{"weird\\u0000key": NaN, "action": "nope\\ud800"}]}',
    "{'reasoning': 'py', 'actions': [{'action': 'open', 'symbol': 'BTC/USDT', 'side': 'long', 'quantity': 1e400, 'leverage': (1, 2)}]}",
    '```json\n{"reasoning": "\\u0000", "actions": [{"action": "close", "symbol": "BTC\\u0000"}]}\n```',
]


@pytest.fixture
def participant(db):
    return ParticipantFactory(llm_provider="scripted", llm_model="script")


_rounds = iter(range(1, 10**6))


def run_and_record(participant, text: str):
    """One round: the scripted agent says `text`, the row is recorded and read back."""
    context = build_context(
        rules=CompetitionRules.from_competition(participant.competition),
        snapshot=make_snapshot(),
        account=make_account(False),
        now=NOW,
        participant_id=participant.pk,
    )
    outcome = invoke_agent(
        provider="scripted", model="script", config={"decisions": [text]}, api_key=None, context=context
    )
    number = next(_rounds)
    round_ = Round.objects.create(
        competition=participant.competition, number=number, market_time=NOW + timedelta(hours=number)
    )
    row, created = invocation_record(
        participant_id=participant.pk,
        round_id=round_.pk,
        snapshot_id=None,
        provider="scripted",
        model="script",
        context=context,
        outcome=outcome,
    )
    assert created
    return outcome, Invocation.objects.get(pk=row.pk)


def assert_every_action_valid_or_rejected_with_a_reason(row):
    decision = row.parsed_decision
    json.dumps(decision, allow_nan=False)
    json.dumps(row.action_outcomes, allow_nan=False)
    for action in decision["actions"]:
        for key in ("quantity", "notional_usd", "leverage", "stop_loss", "take_profit"):
            if action.get(key) is not None:
                assert Decimal(action[key]).is_finite()
    for rejected in decision["rejected"]:
        assert rejected["code"] and rejected["reason"]


@pytest.mark.django_db
@pytest.mark.parametrize("text", HOSTILE_TEXTS)
def test_hostile_model_text_is_recorded_and_reloads(participant, text):
    outcome, row = run_and_record(participant, text)
    assert text_restore(row.raw_response) == text
    assert row.status in ("success", "invalid_response")
    assert_every_action_valid_or_rejected_with_a_reason(row)
    if any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in text) or "\\u0000" in text or "\\ud800" in text:
        assert row.escaped_characters > 0
        assert "escaped:" in row.error


@pytest.mark.django_db
def test_a_nan_quantity_rejects_that_action_and_the_row_says_why(participant):
    text = json.dumps(
        {"reasoning": "two", "actions": [open_action(quantity=float("nan")), {"action": "close", "symbol": "ETH/USDT"}]}
    )
    _, row = run_and_record(participant, text)
    assert row.status == "success"
    statuses = [(o["status"], o.get("code")) for o in row.action_outcomes]
    assert statuses == [("rejected", "invalid_size"), ("pending", None)]
    assert "finite" in row.action_outcomes[0]["reason"]
    assert row.action_outcomes[0]["action"]["quantity"] == "NaN"
    assert (row.actions_count, row.rejected_actions_count) == (2, 1)


@pytest.mark.django_db
def test_a_server_reply_with_nul_and_surrogates_is_stored_through_the_real_sdk(participant, http_mock):
    """The same boundary for a real SDK reply: content, reasoning_content and error bodies."""
    content = '{"reasoning": "ok\\u0000", "actions": [{"action": "hold"}]}\x00'
    http_mock.post("http://llm.test/v1/chat/completions").mock(
        return_value=httpx.Response(
            200,
            headers={"content-type": "application/json"},
            # as a server sends it: the surrogate and NUL as JSON escapes
            content=json.dumps({
                "id": "c",
                "object": "chat.completion",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "reasoning_content": "hmm \ud800"},
                        "finish_reason": "stop",
                    }
                ],
            }),
        )
    )
    context = build_context(rules=make_rules(), snapshot=make_snapshot(), account=make_account(False), now=NOW)
    outcome = invoke_agent(
        provider="openai_compatible",
        model="m",
        config={"base_url": "http://llm.test/v1", "structured_output": "json_object"},
        api_key=None,
        context=context,
    )
    round_ = Round.objects.create(competition=participant.competition, number=1, market_time=NOW)
    row, _ = invocation_record(
        participant_id=participant.pk,
        round_id=round_.pk,
        snapshot_id=None,
        provider="openai_compatible",
        model="m",
        context=context,
        outcome=outcome,
    )
    row = Invocation.objects.get(pk=row.pk)
    assert row.status == "success"
    assert text_restore(row.raw_response) == content
    assert text_restore(row.reasoning_text) == "hmm \ud800"
    assert row.parsed_decision["reasoning"] == f"ok{ESCAPE}u0000"
    assert row.escaped_characters == 3  # raw NUL, reasoning surrogate, the JSON's \u0000


# ---------------------------------------------------------------------------------------------
# Properties: any text, any JSON


HOSTILE_CHARS = st.sampled_from(["\x00", "\ud800", "\udfff", ESCAPE, "{", "}", '"', "\\u0000", "NaN"])
ANY_TEXT = st.lists(st.one_of(st.text(max_size=20), HOSTILE_CHARS), max_size=30).map("".join)
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["1e400", "NaN", "-Infinity", "1,000", "$5", "BTC", "\x00", "\ud800"])
    | st.text(max_size=10)
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
ACTION_FIELDS = st.fixed_dictionaries(
    {"action": st.sampled_from(["open", "close", "update_exit", "hold", "buy"]) | ANY_JSON},
    optional={
        key: ANY_JSON | JSON_LEAVES
        for key in ("symbol", "side", "quantity", "notional_usd", "leverage", "stop_loss", "take_profit", "confidence")
    },
)
DECISION_TEXTS = st.builds(
    lambda reasoning, actions, ascii_only: json.dumps(
        {"reasoning": reasoning, "actions": actions}, ensure_ascii=ascii_only
    ),
    ANY_JSON,
    st.lists(ACTION_FIELDS | ANY_JSON, max_size=4),
    st.booleans(),
)

PROPERTY_SETTINGS = hypothesis_settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.django_db
@PROPERTY_SETTINGS
@given(text=ANY_TEXT | DECISION_TEXTS)
def test_any_text_is_recorded_and_reloads_with_every_action_valid_or_rejected(participant, text):
    outcome, row = run_and_record(participant, text)
    assert row.status in ("success", "invalid_response")
    if len(text) <= 200_000:
        assert text_restore(row.raw_response) == text
    assert_every_action_valid_or_rejected_with_a_reason(row)


@hypothesis_settings(max_examples=300, deadline=None)
@given(payload=ANY_JSON | st.fixed_dictionaries({"reasoning": ANY_JSON, "actions": st.lists(ACTION_FIELDS | ANY_JSON)}))
def test_any_decoded_json_validates_into_storable_actions_or_reasoned_rejections(payload):
    stored, _ = json_storable(payload)
    json.dumps(stored, allow_nan=False).encode("utf-8")
    try:
        decision = decision_validate(stored, RULES)
    except ValueError:  # not decision-shaped: the parser answers invalid_response
        return
    for action in decision.actions:
        for value in vars(action).values():
            if isinstance(value, Decimal):
                assert value.is_finite() and abs(value) <= Decimal("1e15")
            if isinstance(value, float):
                assert math.isfinite(value)
    assert all(isinstance(r, RejectedAction) and r.reason for r in decision.rejected)
    json.dumps(decision.to_dict(), allow_nan=False).encode("utf-8")


@pytest.mark.parametrize("side", [[], {}, ["long"], 1, None, True])
def test_a_side_that_is_not_text_is_an_invalid_side_not_a_crash(side):
    """Found by the property test above: {"side": []} raised TypeError (a list as a key)."""
    from agents.decision import ActionRejected, DecisionRules, action_validate

    rules = DecisionRules(allowed_symbols=("BTC/USDT",), max_leverage=Decimal(5))
    with pytest.raises(ActionRejected) as raised:
        action_validate({"action": "open", "symbol": "BTC", "side": side, "quantity": "1"}, rules)
    assert raised.value.code == "invalid_side"
