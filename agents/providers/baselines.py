"""Built-in benchmark strategies (llm_provider "baseline", llm_model names the strategy).

They read the same snapshot and account as the LLMs and answer with raw decision JSON
text that goes through the same parser and validator, so they are honest benchmarks.

Sizing (all strategies that trade): each position gets an equal share of equity,
`equity x min(0.95 / number of symbols, 0.95 x max_position_size_pct / 100)` as notional at
1x leverage, which keeps fees and the size cap satisfied.

- buy_and_hold: on its first invocation (or later while flat with no history) opens one
  long per allowed symbol, then holds forever.
- momentum: on the competition timeframe, EMA20 above EMA50 -> be long, below -> be short
  (closes the opposite position first). Needs both EMAs (50 bars of history), else holds.
- mean_reversion: RSI14 on the competition timeframe; flat and RSI < 30 -> long, flat and
  RSI > 70 -> short; long and RSI >= 50 -> close; short and RSI <= 50 -> close.
- random: per symbol, flat -> 10% long, 10% short; open -> 15% close. Seeded by the
  competition seed, the participant's name and the invocation index: deterministic, and the
  same draws when a tournament plays the lineup again (new participants, new ids, same
  names). Without a name (a bare context) the participant id stands in.
- flat: always hold.
"""

from __future__ import annotations

import json
import math
import random as random_module
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from agents.context import AgentContext
from agents.providers.base import AgentResponse

STRATEGIES = ("buy_and_hold", "momentum", "mean_reversion", "random", "flat")
CASH_BUFFER = Decimal("0.95")
RSI_LOW, RSI_HIGH, RSI_EXIT = 30.0, 70.0, 50.0
RANDOM_OPEN_PROBABILITY = 0.10
RANDOM_CLOSE_PROBABILITY = 0.15


def _indicator(context: AgentContext, symbol: str, name: str) -> float | None:
    """The snapshot's indicator on the competition timeframe, else computed from its candles."""
    snap = context.snapshot.symbols.get(symbol)
    if snap is None:
        return None
    value = snap.indicators.get(context.rules.timeframe, {}).get(name)
    if value is not None and math.isfinite(float(value)):
        return float(value)
    candles = snap.candles.get(context.rules.timeframe, [])
    if not candles:
        return None
    from marketdata import indicators

    closes = [float(c.close) for c in candles]
    series = {
        "ema_20": lambda: indicators.ema(closes, 20),
        "ema_50": lambda: indicators.ema(closes, 50),
        "rsi_14": lambda: indicators.rsi(closes, 14),
    }.get(name)
    if series is None:
        return None
    last = float(series()[-1])
    return last if math.isfinite(last) else None


def position_notional(context: AgentContext) -> Decimal:
    rules = context.rules
    count = max(1, len(rules.symbols))
    share = min(CASH_BUFFER / count, CASH_BUFFER * Decimal(rules.max_position_size_pct) / 100)
    return (Decimal(context.account.equity) * share).quantize(Decimal("0.01"), rounding=ROUND_DOWN)


def _open(symbol: str, side: str, notional: Decimal) -> dict:
    return {"action": "open", "symbol": symbol, "side": side, "notional_usd": str(notional), "leverage": 1}


def _tradable(context: AgentContext) -> list[str]:
    return [s for s in context.rules.symbols if s in context.snapshot.symbols]


def buy_and_hold(context: AgentContext) -> tuple[list[dict], str]:
    if context.account.positions or (context.invocation_index > 0 and context.history):
        return [], "buy and hold: already invested"
    symbols = _tradable(context)
    notional = position_notional(context)
    return [
        _open(s, "long", notional) for s in symbols
    ], f"buy and hold: equal weight long {len(symbols)} symbols"


def momentum(context: AgentContext) -> tuple[list[dict], str]:
    actions, notes = [], []
    notional = position_notional(context)
    for symbol in _tradable(context):
        fast, slow = _indicator(context, symbol, "ema_20"), _indicator(context, symbol, "ema_50")
        if fast is None or slow is None or fast == slow:
            continue
        want = "long" if fast > slow else "short"
        position = context.account.position(symbol)
        if position is not None and position.side == want:
            continue
        if position is not None:
            actions.append({"action": "close", "symbol": symbol})
        actions.append(_open(symbol, want, notional))
        notes.append(f"{symbol} EMA20 {fast:.6g} {'>' if want == 'long' else '<'} EMA50 {slow:.6g} -> {want}")
    return actions, "momentum: " + ("; ".join(notes) or "no new crossover")


def mean_reversion(context: AgentContext) -> tuple[list[dict], str]:
    actions, notes = [], []
    notional = position_notional(context)
    for symbol in _tradable(context):
        value = _indicator(context, symbol, "rsi_14")
        if value is None:
            continue
        position = context.account.position(symbol)
        if position is None:
            if value < RSI_LOW:
                actions.append(_open(symbol, "long", notional))
                notes.append(f"{symbol} RSI {value:.1f} < {RSI_LOW:g} -> long")
            elif value > RSI_HIGH:
                actions.append(_open(symbol, "short", notional))
                notes.append(f"{symbol} RSI {value:.1f} > {RSI_HIGH:g} -> short")
        elif (position.side == "long" and value >= RSI_EXIT) or (
            position.side == "short" and value <= RSI_EXIT
        ):
            actions.append({"action": "close", "symbol": symbol})
            notes.append(f"{symbol} RSI {value:.1f} back to {RSI_EXIT:g} -> close {position.side}")
    return actions, "mean reversion: " + ("; ".join(notes) or "no signal")


def random_strategy(context: AgentContext) -> tuple[list[dict], str]:
    who = context.participant_name or str(context.participant_id)
    seed = f"{context.rules.seed}:{who}:{context.invocation_index}"
    rng = random_module.Random(seed)
    actions = []
    notional = position_notional(context)
    for symbol in _tradable(context):
        draw = rng.random()
        if context.account.position(symbol) is None:
            if draw < RANDOM_OPEN_PROBABILITY:
                actions.append(_open(symbol, "long", notional))
            elif draw < 2 * RANDOM_OPEN_PROBABILITY:
                actions.append(_open(symbol, "short", notional))
        elif draw < RANDOM_CLOSE_PROBABILITY:
            actions.append({"action": "close", "symbol": symbol})
    return actions, f"random (seed {seed})"


def flat(context: AgentContext) -> tuple[list[dict], str]:
    return [], "flat: never trades"


STRATEGY_FUNCTIONS: dict[str, Callable[[AgentContext], tuple[list[dict], str]]] = {
    "buy_and_hold": buy_and_hold,
    "momentum": momentum,
    "mean_reversion": mean_reversion,
    "random": random_strategy,
    "flat": flat,
}


class BaselineAgent:
    provider = "baseline"

    def __init__(self, *, model: str, config: dict | None = None, api_key: str | None = None):
        self.model = model
        self.config = config or {}

    def decide(self, context: AgentContext) -> AgentResponse:
        strategy = STRATEGY_FUNCTIONS.get(self.model)
        if strategy is None:
            return AgentResponse(
                raw_text="",
                status="error",
                error=f"unknown baseline strategy {self.model!r} (known: {', '.join(STRATEGIES)})",
            )
        actions, reasoning = strategy(context)
        payload: dict[str, Any] = {"reasoning": reasoning, "actions": actions or [{"action": "hold"}]}
        return AgentResponse(raw_text=json.dumps(payload))
