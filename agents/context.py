"""What an agent is handed each round, as plain dataclasses (no Django, no trading import).

The round (competitions) fills these from the Competition row and trading selectors:
`CompetitionRules.from_competition(competition)`, `AccountView`/`PositionView` from the
account, `DecisionHistoryItem`s from past invocations and their outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from agents.decision import DecisionRules

_RULE_FIELDS = (
    "name",
    "initial_capital",
    "max_leverage",
    "max_position_size_pct",
    "margin_requirement_pct",
    "maintenance_margin_pct",
    "fee_pct",
    "spread_bps",
    "slippage_bps",
    "funding_rate_pct_8h",
    "financing_rate_pct_annual",
    "symbols",
    "timeframe",
    "start_time",
    "end_time",
    "invocation_interval_minutes",
    "prompt_leaderboard",
    "seed",
)


_DECIMAL_FIELDS = (
    "initial_capital",
    "max_leverage",
    "max_position_size_pct",
    "margin_requirement_pct",
    "maintenance_margin_pct",
    "fee_pct",
    "spread_bps",
    "slippage_bps",
    "funding_rate_pct_8h",
    "financing_rate_pct_annual",
)


@dataclass(frozen=True)
class CompetitionRules:
    """The rules of one competition, as plain values (field names as on Competition)."""

    name: str
    initial_capital: Decimal
    max_leverage: Decimal
    max_position_size_pct: Decimal
    margin_requirement_pct: Decimal
    maintenance_margin_pct: Decimal
    fee_pct: Decimal
    spread_bps: Decimal
    slippage_bps: Decimal
    funding_rate_pct_8h: Decimal
    financing_rate_pct_annual: Decimal
    symbols: tuple[str, ...]
    timeframe: str
    start_time: datetime
    end_time: datetime
    invocation_interval_minutes: int = 60
    prompt_leaderboard: bool = False
    seed: int = 0
    # a masked replay (docs/memory.md): the prompt shows no real instrument, even in its example
    masked: bool = False

    @classmethod
    def from_competition(cls, competition: Any) -> CompetitionRules:
        """Read the same-named attributes off a Competition (or anything shaped like one)."""
        values = {name: getattr(competition, name) for name in _RULE_FIELDS}
        values["symbols"] = tuple(values["symbols"] or ())
        if getattr(competition, "masked", False):  # its name may say what market it replays
            values["name"] = f"Masked market {values['seed']}"
            values["masked"] = True
        for name in _DECIMAL_FIELDS:
            values[name] = Decimal(str(values[name]))
        return cls(**values)

    @property
    def effective_max_leverage(self) -> Decimal:
        """The engine's cap: min(max_leverage, 100 / margin_requirement_pct) (docs/engine.md)."""
        cap = Decimal(self.max_leverage)
        if self.margin_requirement_pct and Decimal(self.margin_requirement_pct) > 0:
            cap = min(cap, Decimal(100) / Decimal(self.margin_requirement_pct))
        return cap

    def decision_rules(self) -> DecisionRules:
        return DecisionRules(allowed_symbols=tuple(self.symbols), max_leverage=self.effective_max_leverage)


@dataclass(frozen=True)
class PositionView:
    symbol: str
    side: str  # long | short
    size: Decimal  # units of the base asset, positive
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    leverage: Decimal
    initial_margin: Decimal
    liquidation_price: Decimal | None = None  # estimate
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    opened_at: datetime | None = None


@dataclass(frozen=True)
class AccountView:
    cash: Decimal
    equity: Decimal
    used_margin: Decimal
    free_margin: Decimal
    margin_level_pct: Decimal | None  # equity / used margin x 100; None when flat
    return_pct: Decimal  # since the start of the competition
    positions: tuple[PositionView, ...] = ()
    realized_pnl: Decimal = Decimal("0")
    fees_paid: Decimal = Decimal("0")

    def position(self, symbol: str) -> PositionView | None:
        for position in self.positions:
            if position.symbol == symbol:
                return position
        return None

    @classmethod
    def flat(cls, capital: Decimal) -> AccountView:
        """A fresh account: all cash, no positions."""
        return cls(
            cash=capital,
            equity=capital,
            used_margin=Decimal("0"),
            free_margin=capital,
            margin_level_pct=None,
            return_pct=Decimal("0"),
        )


@dataclass(frozen=True)
class DecisionHistoryItem:
    """One past action of this agent and what became of it."""

    round_number: int
    at: datetime
    action: str  # action_summary(), e.g. "open long BTC/USDT notional $2000 x2"
    outcome: str  # filled | rejected | stopped_out | liquidated | invalid_response | error | hold
    detail: str = ""  # rejection reason, fill price, realised PnL...


@dataclass(frozen=True)
class LeaderboardLine:
    rank: int
    name: str
    equity: Decimal
    return_pct: Decimal
    is_you: bool = False


@dataclass(frozen=True)
class AgentContext:
    """Everything one agent gets for one round; providers read the prompts, baselines the state."""

    rules: CompetitionRules
    snapshot: Any  # marketdata.snapshot.MarketSnapshot
    account: AccountView
    now: datetime
    system_prompt: str = ""
    user_prompt: str = ""
    prompt_version: str = ""
    history: tuple[DecisionHistoryItem, ...] = ()
    participant_id: int = 0
    # The participant's name: what stays the same when a tournament plays the lineup again
    # (ids do not), so seeded baselines repeat their draws run after run.
    participant_name: str = ""
    # How many times this participant has been invoked before (scripted index, baselines' round 0).
    invocation_index: int = 0
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PastInvocation:
    """What the decision history reads of one earlier Invocation row."""

    status: str
    error: str
    action_outcomes: list
    round_number: int
    market_time: datetime


def decision_history(invocations, limit: int) -> list[DecisionHistoryItem]:
    """An agent's last `limit` actions and what became of them, oldest first, from its past
    invocations (oldest first): the one wording the prompt shows (agents.prompt)."""
    items: list[DecisionHistoryItem] = []
    for invocation in invocations:
        if invocation.status != "success":  # agents.models.InvocationStatus.SUCCESS
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time, action="(none)",
                    outcome=invocation.status, detail=(invocation.error or "")[:200],
                )
            )
            continue
        outcomes = invocation.action_outcomes or []
        if not outcomes:
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time, action="hold", outcome="hold"
                )
            )
        for outcome in outcomes:
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time,
                    action=outcome.get("summary", ""), outcome=outcome.get("status", ""),
                    detail=outcome.get("reason", "") or outcome.get("detail", ""),
                )
            )
    return items[-limit:]
