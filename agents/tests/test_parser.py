"""The parser against a corpus of real-looking bad model outputs (corpus/parser_cases.json).

Each case states the expected status, the valid actions (fields compared, numbers as
Decimals) and the rejection codes, in order. Rules: BTC/USDT, ETH/USDT, SOL/USDT, 1-10x.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from agents.decision import DecisionRules, action_to_dict
from agents.parser import parse_response

CORPUS = json.loads((Path(__file__).parent / "corpus" / "parser_cases.json").read_text())
RULES = DecisionRules(allowed_symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"), max_leverage=Decimal("10"))


def build_text(case: dict) -> str:
    if "build" not in case:
        return case["text"]
    spec = case["build"]
    return spec.get("prefix", "") + spec["repeat"] * spec["times"] + spec.get("suffix", "")


def same_value(expected, actual) -> bool:
    try:
        return Decimal(str(expected)) == Decimal(str(actual))
    except ArithmeticError:
        return expected == actual


def test_the_corpus_has_at_least_40_cases_with_unique_names():
    names = [case["name"] for case in CORPUS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_parser_outcome_matches_the_corpus(case):
    text = build_text(case)
    # how fast hostile input parses is measured by bench/bench_analysis.py, not asserted here
    result = parse_response(text, rules=RULES, structured=case.get("structured"))

    assert result.status == case["status"], result.error
    if case["status"] == "invalid_response":
        assert case["error"] in result.error
        assert result.decision.is_hold
        return
    assert [r.code for r in result.decision.rejected] == case["rejected"]
    for rejection in result.decision.rejected:
        assert rejection.reason  # every rejection is explained
    if "action_count" in case:
        assert len(result.decision.actions) == case["action_count"]
    if "actions" in case:
        actual = [action_to_dict(a) for a in result.decision.actions]
        expected = case["actions"]
        if not expected:
            assert result.decision.is_hold is True or actual == []
            assert not result.decision.trading_actions
        else:
            assert len(actual) == len(expected), actual
            for want, got in zip(expected, actual):
                for key, value in want.items():
                    assert same_value(value, got[key]), (key, value, got[key])
    for repair in case.get("repairs", []):
        assert repair in result.repairs
    json.dumps(result.decision.to_dict())  # the stored form is always JSON-safe


def test_rejections_keep_the_position_of_the_action_in_the_reply():
    text = json.dumps(
        {
            "reasoning": "x",
            "actions": [
                {"action": "close", "symbol": "BTC/USDT"},
                {"action": "open", "symbol": "DOGE/USDT", "side": "long", "notional_usd": 5, "leverage": 1},
                {"action": "close", "symbol": "ETH/USDT"},
            ],
        }
    )
    decision = parse_response(text, rules=RULES).decision
    assert decision.indexes == (0, 2)
    assert [(r.index, r.code) for r in decision.rejected] == [(1, "unknown_symbol")]
    assert "DOGE/USDT" in decision.rejected[0].reason


def test_a_base_alias_shared_by_two_symbols_is_not_guessed():
    rules = DecisionRules(allowed_symbols=("BTC/USDT", "BTC/EUR"), max_leverage=Decimal("5"))
    decision = parse_response(
        '{"reasoning": "", "actions": [{"action": "close", "symbol": "BTC"}]}', rules=rules
    ).decision
    assert [r.code for r in decision.rejected] == ["unknown_symbol"]


_JSONISH = st.text(alphabet="{}[]\":,'\\ abcdefghijklmnopqrstuvwxyz0123456789.-_/\n", max_size=400)


@hypothesis_settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=400), _JSONISH))
def test_no_text_makes_the_parser_raise(text):
    result = parse_response(text, rules=RULES)
    assert result.status in ("success", "invalid_response")
    if result.status == "invalid_response":
        assert result.decision.is_hold and result.error


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    payload=st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=20),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
        ),
        max_leaves=20,
    ),
    action=st.sampled_from(["open", "close", "update_exit", "hold", "buy", "x"]),
)
def test_any_action_fields_are_validated_or_rejected_never_raised(payload, action):
    fields = payload if isinstance(payload, dict) else {"quantity": payload}
    structured = {"reasoning": "", "actions": [{**fields, "action": action}]}
    result = parse_response(None, rules=RULES, structured=structured)
    assert result.status == "success"
    assert len(result.decision.actions) + len(result.decision.rejected) == 1


# ---------------------------------------------------------------------------------------------
# The whole-text shortcut gives exactly what the scan gives

WHOLE_TEXT_REPLIES = [
    (
        '{"reasoning": "up", "actions": [{"action": "open", "symbol": "BTC/USDT", "side": "long", '
        '"notional_usd": 1000, "leverage": 2}]}'
    ),
    '  \n{"reasoning": "it\'s {not} a [bracket] \\"quote\\"", "actions": [{"action": "hold"}]}\n',
    (
        '{"reasoning": "see ```json {\\"actions\\": [{\\"action\\": \\"close\\", \\"symbol\\": \\"ETH/USDT\\"}]}```",'
        ' "actions": [{"action": "hold"}]}'
    ),
    '{"analysis": "wrapped", "decision": {"reasoning": "", "actions": [{"action": "close", "symbol": "SOL"}]}}',
    '{"reasoning": "x", "actions": [{"action": "open", "symbol": "BTC", "side": "short", "quantity": "NaN"}]}',
    '{"reasoning": "two"} {"reasoning": "objects", "actions": [{"action": "hold"}]}',
    '{"reasoning": "nan", "actions": [{"action": "open", "symbol": "BTC", "side": "long", "quantity": NaN}]}',
]


def _scan_only(text, structured=None):
    from agents import parser

    original = parser._whole_text_payload
    parser._whole_text_payload = lambda _text: None
    try:
        return parse_response(text, rules=RULES, structured=structured)
    finally:
        parser._whole_text_payload = original


@pytest.mark.parametrize(
    "text", WHOLE_TEXT_REPLIES + [build_text(case) for case in CORPUS], ids=lambda t: t[:40]
)
def test_the_whole_text_shortcut_parses_exactly_like_the_full_scan(text):
    assert parse_response(text, rules=RULES) == _scan_only(text)


def test_a_baseline_reply_takes_the_shortcut():
    from agents import parser

    text = '{"reasoning": "flat", "actions": [{"action": "hold"}]}'
    assert parser._whole_text_payload(text) == {"reasoning": "flat", "actions": [{"action": "hold"}]}
    assert parser._whole_text_payload("Sure: " + text) is None  # prose first: the scan decides
    assert parser._whole_text_payload(text.replace("flat", "```json```")) is None
