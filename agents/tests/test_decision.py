"""The decision schema (one source) and per-action validation."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from agents.decision import (
    DECISION_SCHEMA,
    EXAMPLE_DECISION,
    CloseAction,
    DecisionRules,
    DecisionShapeError,
    OpenAction,
    UpdateExitAction,
    action_summary,
    decision_validate,
    symbol_resolve,
)

RULES = DecisionRules(allowed_symbols=("BTC/USDT", "ETH/USDT"), max_leverage=Decimal("5"))


def _objects(schema):
    if isinstance(schema, dict):
        if schema.get("type") == "object":
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _objects(value)


def test_schema_is_openai_strict_compatible():
    # strict mode: every object closes additionalProperties and requires all its properties
    objects = list(_objects(DECISION_SCHEMA))
    assert len(objects) == 5  # the decision and its four action kinds
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert set(obj["required"]) == set(obj["properties"])
    json.dumps(DECISION_SCHEMA)


def test_the_example_in_the_prompt_is_a_valid_decision():
    decision = decision_validate(EXAMPLE_DECISION, RULES)
    assert decision.rejected == ()
    assert decision.actions == (
        OpenAction(
            symbol="BTC/USDT",
            side="long",
            leverage=Decimal("2"),
            notional_usd=Decimal("2000"),
            stop_loss=Decimal("58500"),
            take_profit=Decimal("64000"),
            invalidation="4h close back inside the range",
            confidence=Decimal("0.6"),
        ),
        UpdateExitAction(symbol="ETH/USDT", stop_loss=Decimal("3050")),
    )


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("BTC/USDT", "BTC/USDT"),
        ("btc/usdt", "BTC/USDT"),
        ("BTCUSDT", "BTC/USDT"),
        ("BTC-USDT", "BTC/USDT"),
        ("btc_usdt", "BTC/USDT"),
        ("BTC", "BTC/USDT"),
        ("BTC/USDT:USDT", "BTC/USDT"),
        ("eth", "ETH/USDT"),
        ("SOL", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_symbol_aliases(raw, expected):
    assert symbol_resolve(raw, RULES.allowed_symbols) == expected


def test_leverage_limits_are_inclusive_and_fractional_leverage_is_allowed():
    def lev(value):
        return decision_validate(
            {
                "actions": [
                    {"action": "open", "symbol": "BTC", "side": "long", "quantity": 1, "leverage": value}
                ]
            },
            RULES,
        )

    assert lev(1).actions[0].leverage == 1
    assert lev(5).actions[0].leverage == 5
    assert lev("2.5").actions[0].leverage == Decimal("2.5")
    assert lev(0.99).rejected[0].code == "invalid_leverage"
    assert lev(5.01).rejected[0].code == "invalid_leverage"


def test_numbers_keep_their_decimal_value_exactly():
    decision = decision_validate(
        {
            "actions": [
                {
                    "action": "open",
                    "symbol": "ETH",
                    "side": "short",
                    "quantity": 0.1,
                    "leverage": 3,
                    "take_profit": "2999.99",
                }
            ]
        },
        RULES,
    )
    action = decision.actions[0]
    assert action.quantity == Decimal("0.1")  # not 0.1000000000000000055...
    assert action.take_profit == Decimal("2999.99")


def test_a_payload_that_is_not_a_decision_raises_shape_error():
    for payload in ([1, 2, 3], "hold", {"reasoning": "x"}, {"actions": "hold"}, None):
        with pytest.raises(DecisionShapeError):
            decision_validate(payload, RULES)


def test_to_dict_is_json_safe_with_decimals_as_strings():
    decision = decision_validate(
        {
            "reasoning": "r",
            "actions": [
                {"action": "close", "symbol": "BTC", "quantity": 0.5},
                {"action": "fly", "symbol": "BTC"},
            ],
        },
        RULES,
    )
    data = json.loads(json.dumps(decision.to_dict()))
    assert data["actions"] == [{"action": "close", "symbol": "BTC/USDT", "quantity": "0.5"}]
    assert data["rejected"][0]["code"] == "unknown_action"
    assert data["action_indexes"] == [0]


def test_summaries_read_like_a_trade_log():
    assert (
        action_summary(
            OpenAction("BTC/USDT", "short", Decimal("3"), quantity=Decimal("0.2"), stop_loss=Decimal("65000"))
        )
        == "open short BTC/USDT qty 0.2 x3 SL 65000"
    )
    assert action_summary(CloseAction("ETH/USDT")) == "close ETH/USDT (all)"
    assert action_summary(CloseAction("ETH/USDT", Decimal("1"))) == "close ETH/USDT qty 1"


def test_the_docs_quote_the_schema_exactly():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "agents.md").read_text()
    assert "```json\n" + json.dumps(DECISION_SCHEMA, indent=2) + "\n```" in docs
