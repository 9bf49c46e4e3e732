"""The decision an agent returns each round: one JSON Schema and the parsed dataclasses.

This module is the single source of the decision format. Providers send DECISION_SCHEMA as
structured output (Anthropic tool input_schema, OpenAI response_format json_schema), the
prompt prints it, the docs quote it and `decision_validate` checks payloads against the same
rules. Pure: no Django, no SDK.

Validation is per action: an invalid action becomes a `RejectedAction` with a code and a
reason, the valid ones proceed. Only a payload that is not decision-shaped at all raises
`DecisionShapeError` (the parser then records `invalid_response` and the agent holds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Union

from agents.boundary import json_storable

SCHEMA_VERSION = "1"

ACTION_OPEN = "open"
ACTION_CLOSE = "close"
ACTION_UPDATE_EXIT = "update_exit"
ACTION_HOLD = "hold"
ACTIONS = (ACTION_OPEN, ACTION_CLOSE, ACTION_UPDATE_EXIT, ACTION_HOLD)
SIDES = ("long", "short")

# A decision with more actions than this is cut: the extra ones are rejected, not executed.
MAX_ACTIONS = 20
MAX_TEXT_FIELD_CHARS = 2000
MAX_REASONING_CHARS = 20000
# No quantity, notional or price in any market comes near 10^15, and the ledger's columns
# (28 digits, 10 places) overflow not far above: a bigger number is a model's mistake
# (1e400, a string of 40 nines), rejected here with a reason instead of failing the round.
MAX_DECISION_NUMBER = Decimal("1e15")
# A positive size or price this small rounds to nothing in the ledger.
MIN_POSITIVE_NUMBER = Decimal("1e-12")


def _nullable(json_type: str, description: str) -> dict:
    return {"type": [json_type, "null"], "description": description}


# Written for OpenAI strict mode (every property required, optional ones nullable,
# additionalProperties false), which Anthropic's tool input_schema accepts as well.
# The validator is more lenient than the schema: an omitted optional field counts as null.
DECISION_SCHEMA: dict = {
    "type": "object",
    "title": "decision",
    "description": "One trading decision for this round: your reasoning and a list of actions.",
    "properties": {
        "reasoning": {"type": "string", "description": "Short explanation of the decision."},
        "actions": {
            "type": "array",
            "description": 'Actions executed in order. Use [{"action": "hold"}] to do nothing.',
            "items": {
                "anyOf": [
                    {
                        "type": "object",
                        "description": "Open or add to a position (market order).",
                        "properties": {
                            "action": {"type": "string", "enum": [ACTION_OPEN]},
                            "symbol": {"type": "string", "description": "One of the allowed symbols."},
                            "side": {"type": "string", "enum": list(SIDES)},
                            "quantity": _nullable(
                                "number",
                                "Units of the base asset; give exactly one of quantity and notional_usd.",
                            ),
                            "notional_usd": _nullable(
                                "number",
                                "Position value in USD; give exactly one of quantity and notional_usd.",
                            ),
                            "leverage": {
                                "type": "number",
                                "description": "From 1 to the competition maximum.",
                            },
                            "stop_loss": _nullable("number", "Price that closes the position at a loss."),
                            "take_profit": _nullable("number", "Price that closes the position at a profit."),
                            "invalidation": _nullable("string", "What would prove this trade wrong."),
                            "confidence": _nullable("number", "From 0 to 1."),
                        },
                        "required": [
                            "action",
                            "symbol",
                            "side",
                            "quantity",
                            "notional_usd",
                            "leverage",
                            "stop_loss",
                            "take_profit",
                            "invalidation",
                            "confidence",
                        ],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "description": "Close a position, fully (quantity null) or partly.",
                        "properties": {
                            "action": {"type": "string", "enum": [ACTION_CLOSE]},
                            "symbol": {"type": "string"},
                            "quantity": _nullable("number", "Units to close; null closes all."),
                        },
                        "required": ["action", "symbol", "quantity"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "description": "Change the stop loss and/or take profit of an open position.",
                        "properties": {
                            "action": {"type": "string", "enum": [ACTION_UPDATE_EXIT]},
                            "symbol": {"type": "string"},
                            "stop_loss": _nullable("number", "New stop loss price; null keeps it."),
                            "take_profit": _nullable("number", "New take profit price; null keeps it."),
                        },
                        "required": ["action", "symbol", "stop_loss", "take_profit"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "description": "Do nothing this round.",
                        "properties": {"action": {"type": "string", "enum": [ACTION_HOLD]}},
                        "required": ["action"],
                        "additionalProperties": False,
                    },
                ]
            },
        },
    },
    "required": ["reasoning", "actions"],
    "additionalProperties": False,
}

EXAMPLE_DECISION: dict = {
    "reasoning": "BTC broke above its 4h range on rising volume; risk 1% with a stop under the range.",
    "actions": [
        {
            "action": "open",
            "symbol": "BTC/USDT",
            "side": "long",
            "quantity": None,
            "notional_usd": 2000,
            "leverage": 2,
            "stop_loss": 58500,
            "take_profit": 64000,
            "invalidation": "4h close back inside the range",
            "confidence": 0.6,
        },
        {"action": "update_exit", "symbol": "ETH/USDT", "stop_loss": 3050, "take_profit": None},
    ],
}

HOLD_DECISION_JSON = '{"reasoning": "", "actions": [{"action": "hold"}]}'


class DecisionShapeError(ValueError):
    """The payload is not a decision at all (not an object with a list of actions)."""


@dataclass(frozen=True)
class DecisionRules:
    """What the validator needs from the competition, as plain values."""

    allowed_symbols: tuple[str, ...]
    max_leverage: Decimal
    min_leverage: Decimal = Decimal("1")


@dataclass(frozen=True)
class OpenAction:
    symbol: str
    side: str
    leverage: Decimal
    quantity: Decimal | None = None
    notional_usd: Decimal | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    invalidation: str | None = None
    confidence: Decimal | None = None
    action: str = ACTION_OPEN


@dataclass(frozen=True)
class CloseAction:
    symbol: str
    quantity: Decimal | None = None
    action: str = ACTION_CLOSE


@dataclass(frozen=True)
class UpdateExitAction:
    symbol: str
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    action: str = ACTION_UPDATE_EXIT


@dataclass(frozen=True)
class HoldAction:
    action: str = ACTION_HOLD


Action = Union[OpenAction, CloseAction, UpdateExitAction, HoldAction]


@dataclass(frozen=True)
class RejectedAction:
    """An action the validator refused; `index` is its position in the model's list."""

    index: int
    code: str
    reason: str
    raw: Any = None


@dataclass(frozen=True)
class Decision:
    reasoning: str
    actions: tuple[Action, ...]
    rejected: tuple[RejectedAction, ...] = ()
    # Index of each valid action in the model's original list (parallel to `actions`).
    indexes: tuple[int, ...] = field(default=())

    @property
    def trading_actions(self) -> tuple[Action, ...]:
        """The actions the round should execute (holds dropped), in the model's order."""
        return tuple(a for a in self.actions if not isinstance(a, HoldAction))

    @property
    def is_hold(self) -> bool:
        return not self.trading_actions

    def to_dict(self) -> dict:
        """JSON-safe form (Decimals as strings) stored in Invocation.parsed_decision."""
        return {
            "reasoning": self.reasoning,
            "actions": [action_to_dict(a) for a in self.actions],
            "action_indexes": list(self.indexes),
            "rejected": [
                {"index": r.index, "code": r.code, "reason": r.reason, "raw": _json_safe(r.raw)}
                for r in self.rejected
            ],
        }


def hold_decision(reasoning: str = "") -> Decision:
    return Decision(reasoning=reasoning, actions=(HoldAction(),), indexes=(0,))


def action_to_dict(action: Action) -> dict:
    out: dict = {"action": action.action}
    for name, value in vars(action).items():
        if name == "action":
            continue
        out[name] = str(value) if isinstance(value, Decimal) else value
    return out


def action_summary(action: Action) -> str:
    """One line for histories and pages: 'open long BTC/USDT notional 2000 x2 SL 58500'."""
    if isinstance(action, OpenAction):
        size = f"qty {action.quantity}" if action.quantity is not None else f"notional ${action.notional_usd}"
        text = f"open {action.side} {action.symbol} {size} x{action.leverage}"
        if action.stop_loss is not None:
            text += f" SL {action.stop_loss}"
        if action.take_profit is not None:
            text += f" TP {action.take_profit}"
        return text
    if isinstance(action, CloseAction):
        return f"close {action.symbol}" + (
            f" qty {action.quantity}" if action.quantity is not None else " (all)"
        )
    if isinstance(action, UpdateExitAction):
        return f"update_exit {action.symbol} SL {action.stop_loss} TP {action.take_profit}"
    return "hold"


def _json_safe(value: Any) -> Any:
    """A rejected action's raw value as stored: JSON every backend takes (agents.boundary),
    long strings cut."""
    stored, _ = json_storable(value)
    return _cut_strings(stored, 0)


def _cut_strings(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return value[:MAX_TEXT_FIELD_CHARS] + "..." if len(value) > MAX_TEXT_FIELD_CHARS else value
    if isinstance(value, dict):
        return {k: _cut_strings(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, depth + 1) for v in value]
    return value


# ---------------------------------------------------------------------------------------------
# Validation


class _Reject(Exception):
    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _symbol_key(text: str) -> str:
    text = text.strip().upper()
    text = text.split(":", 1)[0]  # ccxt perpetual suffix: BTC/USDT:USDT
    return re.sub(r"[^A-Z0-9]", "", text)


def symbol_resolve(raw: Any, allowed_symbols: tuple[str, ...] | list[str]) -> str | None:
    """Map a model's spelling of a symbol to an allowed one, or None.

    Accepts the exact symbol, any case, any separator (BTCUSDT, btc-usdt, BTC_USDT,
    BTC/USDT:USDT) and the bare base asset (BTC) when exactly one allowed symbol has it.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    if raw in allowed_symbols:
        return raw
    key = _symbol_key(raw)
    if not key:
        return None
    for symbol in allowed_symbols:
        if _symbol_key(symbol) == key:
            return symbol
    by_base = [s for s in allowed_symbols if _symbol_key(s.split("/", 1)[0]) == key]
    if len(by_base) == 1:
        return by_base[0]
    return None


def _decimal(value: Any, name: str, *, code: str, required: bool = False) -> Decimal | None:
    """Numbers may come as JSON numbers or numeric strings ("0.5", "1,000", "$2000")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "null", "none"}):
        if required:
            raise _Reject(code, f"{name} is required")
        return None
    if isinstance(value, bool):
        raise _Reject(code, f"{name} must be a number, got {value!r}")
    if isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "").lstrip("$").removesuffix("x").removesuffix("X").strip()
    else:
        raise _Reject(code, f"{name} must be a number, got {type(value).__name__}")
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        raise _Reject(code, f"{name} must be a number, got {str(value)[:40]!r}") from None
    if not number.is_finite():
        raise _Reject(code, f"{name} must be finite, got {str(value)[:40]!r}")
    if abs(number) > MAX_DECISION_NUMBER:
        raise _Reject(
            code, f"{name} is out of range, got {str(value)[:40]!r} (at most {MAX_DECISION_NUMBER:.0E})"
        )
    return number


def _positive(value: Any, name: str, *, code: str, required: bool = False) -> Decimal | None:
    number = _decimal(value, name, code=code, required=required)
    if number is not None and number <= 0:
        raise _Reject(code, f"{name} must be greater than 0, got {number}")
    if number is not None and number < MIN_POSITIVE_NUMBER:
        raise _Reject(code, f"{name} is too small, got {number} (at least {MIN_POSITIVE_NUMBER:.0E})")
    return number


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    return value[:MAX_TEXT_FIELD_CHARS]


def _symbol(raw: dict, rules: DecisionRules) -> str:
    value = raw.get("symbol")
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _Reject("missing_symbol", "symbol is required")
    symbol = symbol_resolve(value, rules.allowed_symbols)
    if symbol is None:
        allowed = ", ".join(rules.allowed_symbols)
        raise _Reject("unknown_symbol", f"symbol {str(value)[:40]!r} is not traded here (allowed: {allowed})")
    return symbol


def _validate_open(raw: dict, rules: DecisionRules) -> OpenAction:
    symbol = _symbol(raw, rules)
    side = raw.get("side")
    side = side.strip().lower() if isinstance(side, str) else None  # a list or an object is no side
    side = {"buy": "long", "sell": "short"}.get(side, side)
    if side not in SIDES:
        raise _Reject("invalid_side", f"side must be 'long' or 'short', got {str(raw.get('side'))[:20]!r}")
    quantity = _positive(raw.get("quantity"), "quantity", code="invalid_size")
    notional = _positive(raw.get("notional_usd"), "notional_usd", code="invalid_size")
    if quantity is None and notional is None:
        raise _Reject("missing_size", "give exactly one of quantity and notional_usd")
    if quantity is not None and notional is not None:
        raise _Reject("ambiguous_size", "give exactly one of quantity and notional_usd, not both")
    leverage = _decimal(raw.get("leverage"), "leverage", code="invalid_leverage")
    if leverage is None:
        leverage = rules.min_leverage  # documented default: an omitted leverage means 1x
    if leverage < rules.min_leverage or leverage > rules.max_leverage:
        raise _Reject(
            "invalid_leverage",
            f"leverage must be between {rules.min_leverage} and {rules.max_leverage}, got {leverage}",
        )
    stop_loss = _positive(raw.get("stop_loss"), "stop_loss", code="invalid_exit")
    take_profit = _positive(raw.get("take_profit"), "take_profit", code="invalid_exit")
    confidence = _decimal(raw.get("confidence"), "confidence", code="invalid_confidence")
    if confidence is not None and not (0 <= confidence <= 1):
        if 1 < confidence <= 100:
            confidence = confidence / 100  # a percentage: 70 means 0.7
        else:
            raise _Reject("invalid_confidence", f"confidence must be between 0 and 1, got {confidence}")
    return OpenAction(
        symbol=symbol,
        side=side,
        leverage=leverage,
        quantity=quantity,
        notional_usd=notional,
        stop_loss=stop_loss,
        take_profit=take_profit,
        invalidation=_text(raw.get("invalidation"), "invalidation"),
        confidence=confidence,
    )


def _validate_close(raw: dict, rules: DecisionRules) -> CloseAction:
    return CloseAction(
        symbol=_symbol(raw, rules),
        quantity=_positive(raw.get("quantity"), "quantity", code="invalid_size"),
    )


def _validate_update_exit(raw: dict, rules: DecisionRules) -> UpdateExitAction:
    symbol = _symbol(raw, rules)
    stop_loss = _positive(raw.get("stop_loss"), "stop_loss", code="invalid_exit")
    take_profit = _positive(raw.get("take_profit"), "take_profit", code="invalid_exit")
    if stop_loss is None and take_profit is None:
        raise _Reject("missing_exit", "update_exit needs a stop_loss or a take_profit")
    return UpdateExitAction(symbol=symbol, stop_loss=stop_loss, take_profit=take_profit)


_VALIDATORS = {
    ACTION_OPEN: _validate_open,
    ACTION_CLOSE: _validate_close,
    ACTION_UPDATE_EXIT: _validate_update_exit,
    ACTION_HOLD: lambda raw, rules: HoldAction(),
}

_ACTION_ALIASES = {
    "buy": (ACTION_OPEN, "long"),
    "long": (ACTION_OPEN, "long"),
    "sell": (ACTION_OPEN, "short"),
    "short": (ACTION_OPEN, "short"),
    "open_long": (ACTION_OPEN, "long"),
    "open_short": (ACTION_OPEN, "short"),
    "exit": (ACTION_CLOSE, None),
    "close_position": (ACTION_CLOSE, None),
    "wait": (ACTION_HOLD, None),
    "none": (ACTION_HOLD, None),
    "no_action": (ACTION_HOLD, None),
}


def action_validate(raw: Any, rules: DecisionRules) -> Action:
    """Validate one action object; raises `ActionRejected` with a code and reason."""
    if not isinstance(raw, dict):
        raise ActionRejected("not_an_object", f"an action must be an object, got {type(raw).__name__}")
    name = raw.get("action", raw.get("type"))
    if not isinstance(name, str) or not name.strip():
        raise ActionRejected(
            "missing_action", "each action needs an 'action' field (open, close, update_exit, hold)"
        )
    name = name.strip().lower().replace("-", "_").replace(" ", "_")
    if name in _ACTION_ALIASES:
        name, side = _ACTION_ALIASES[name]
        if side and not raw.get("side"):
            raw = {**raw, "side": side}
    validator = _VALIDATORS.get(name)
    if validator is None:
        raise ActionRejected(
            "unknown_action", f"action {name[:30]!r} is not one of open, close, update_exit, hold"
        )
    try:
        return validator(raw, rules)
    except _Reject as rejection:
        raise ActionRejected(rejection.code, rejection.reason) from None


class ActionRejected(ValueError):
    def __init__(self, code: str, reason: str):
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def is_decision_shaped(payload: Any) -> bool:
    """An object with an 'actions' list, or a single action object (has 'action')."""
    if not isinstance(payload, dict):
        return False
    if isinstance(payload.get("actions"), list):
        return True
    return isinstance(payload.get("action"), str) and "actions" not in payload


def decision_validate(payload: Any, rules: DecisionRules) -> Decision:
    """Turn a decoded JSON payload into a Decision, rejecting invalid actions one by one.

    Raises DecisionShapeError when the payload is not decision-shaped at all.
    """
    if not is_decision_shaped(payload):
        raise DecisionShapeError("expected an object with an 'actions' list")
    if "actions" in payload:
        raw_actions = payload["actions"]
    else:
        raw_actions = [payload]  # a bare action object: treat it as a one-action decision
    reasoning = payload.get("reasoning", "")
    if not isinstance(reasoning, str):
        reasoning = "" if reasoning is None else str(reasoning)
    reasoning = reasoning[:MAX_REASONING_CHARS]

    actions: list[Action] = []
    indexes: list[int] = []
    rejected: list[RejectedAction] = []
    for index, raw in enumerate(raw_actions):
        if index >= MAX_ACTIONS:
            rejected.append(
                RejectedAction(
                    index, "too_many_actions", f"only the first {MAX_ACTIONS} actions are considered", raw
                )
            )
            continue
        try:
            actions.append(action_validate(raw, rules))
            indexes.append(index)
        except ActionRejected as rejection:
            rejected.append(RejectedAction(index, rejection.code, rejection.reason, raw))
    if not actions and not rejected:
        actions.append(HoldAction())  # an empty list is a hold
        indexes.append(0)
    return Decision(
        reasoning=reasoning, actions=tuple(actions), rejected=tuple(rejected), indexes=tuple(indexes)
    )
