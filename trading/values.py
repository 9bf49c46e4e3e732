"""The CFD engine's vocabulary: quantization rules, sides and reasons, the rules of a
competition, account and position states, and the events the engine returns.

Pure (decimal, dataclasses, datetime, enum, typing only), like trading/engine.py, which
computes with these values; callers reach them through `trading.engine` as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from typing import Mapping

# --- quantization rules (the one place they live; the model columns follow them) ---
MONEY_PLACES = 8
PRICE_PLACES = 16
QUANTITY_PLACES = 12
MONEY = Decimal(1).scaleb(-MONEY_PLACES)
PRICE = Decimal(1).scaleb(-PRICE_PLACES)
QUANTITY = Decimal(1).scaleb(-QUANTITY_PLACES)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
# An order whose notional exceeds this multiple of max(equity, initial capital) is nonsense input.
SANITY_NOTIONAL_MULTIPLE = Decimal(1000)
DAYS_PER_YEAR = Decimal(365)
FUNDING_HOURS_UTC = (0, 8, 16)
FINANCING_HOUR_UTC = 22
CRYPTO = "crypto"


def money(amount: Decimal) -> Decimal:
    """Round a cash amount to the ledger's quantum (banker's rounding, unbiased over many fills)."""
    return amount.quantize(MONEY, rounding=ROUND_HALF_EVEN)


def to_price(value: Decimal) -> Decimal:
    return value.quantize(PRICE, rounding=ROUND_HALF_EVEN)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"


class FillReason(StrEnum):
    AGENT = "agent"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    COMPETITION_END = "competition_end"


class LedgerKind(StrEnum):
    REALISED_PNL = "realised_pnl"
    FEE = "fee"
    FUNDING = "funding"
    FINANCING = "financing"
    NBP_CREDIT = "nbp_credit"


class FundingKind(StrEnum):
    FUNDING = "funding"  # crypto perpetual funding, every 8 h
    FINANCING = "financing"  # overnight financing of other classes, daily


class RejectCode(StrEnum):
    COMPETITION_INACTIVE = "competition_inactive"
    PARTICIPANT_INACTIVE = "participant_inactive"
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"
    ASSET_CLASS_NOT_ALLOWED = "asset_class_not_allowed"
    MARKET_CLOSED = "market_closed"
    NO_PRICE = "no_price"
    INVALID_SIDE = "invalid_side"
    INVALID_SIZE = "invalid_size"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    ORDER_TOO_LARGE = "order_too_large"
    QUANTITY_BELOW_MINIMUM = "quantity_below_minimum"
    LEVERAGE_OUT_OF_RANGE = "leverage_out_of_range"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    POSITION_LIMIT = "position_limit"
    INVALID_STOP_LOSS = "invalid_stop_loss"
    INVALID_TAKE_PROFIT = "invalid_take_profit"
    NO_POSITION = "no_position"


SIGN = {PositionSide.LONG: ONE, PositionSide.SHORT: -ONE}
# an order's side may be named by the position it opens (the agents' decision schema does)
SIDE_ALIASES = {
    "buy": OrderSide.BUY,
    "long": OrderSide.BUY,
    "sell": OrderSide.SELL,
    "short": OrderSide.SELL,
}


# --- values in ---


@dataclass(frozen=True, slots=True)
class Rules:
    """A competition's trading rules and cost model (all percentages in %, spreads in bps)."""

    max_leverage: Decimal
    margin_requirement_pct: Decimal
    maintenance_margin_pct: Decimal
    max_position_size_pct: Decimal = HUNDRED
    fee_pct: Decimal = ZERO
    spread_bps: Decimal = ZERO
    slippage_bps: Decimal = ZERO
    funding_rate_pct_8h: Decimal = ZERO
    financing_rate_pct_annual: Decimal = ZERO
    allowed_asset_classes: frozenset[str] = frozenset()  # empty: every class
    symbols: frozenset[str] = frozenset()  # empty: every symbol
    market_hours_only: bool = False
    # derived once (every fill reads them)
    max_order_leverage: Decimal = field(init=False, repr=False, compare=False)
    buy_factor: Decimal = field(init=False, repr=False, compare=False)
    sell_factor: Decimal = field(init=False, repr=False, compare=False)
    maintenance_rate: Decimal = field(init=False, repr=False, compare=False)  # maintenance_margin_pct / 100

    def __post_init__(self):
        # leverage cap: min(max_leverage, 100 / margin_requirement_pct)
        cap = self.max_leverage
        if self.margin_requirement_pct > 0:
            cap = min(cap, HUNDRED / self.margin_requirement_pct)
        # buy at p * (1 + spread/20000 + slippage/10000): half the spread plus slippage; sell mirrored
        half_spread_and_slippage = self.spread_bps / 20000 + self.slippage_bps / 10000
        object.__setattr__(self, "max_order_leverage", cap)
        object.__setattr__(self, "buy_factor", ONE + half_spread_and_slippage)
        object.__setattr__(self, "sell_factor", ONE - half_spread_and_slippage)
        object.__setattr__(self, "maintenance_rate", self.maintenance_margin_pct / HUNDRED)


@dataclass(frozen=True, slots=True)
class Instrument:
    symbol: str
    asset_class: str = CRYPTO
    quantity_step: Decimal | None = None  # quantities are rounded down to a multiple of it
    min_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What an agent asked for: exactly one of quantity (units) or notional_usd."""

    symbol: str
    side: str  # "buy" | "sell" (or "long" | "short")
    quantity: Decimal | None = None
    notional_usd: Decimal | None = None
    leverage: Decimal = ONE
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Bar:
    """One closed bar of mid prices (replay) used for intrabar stops."""

    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


# --- state ---


@dataclass(frozen=True, slots=True)
class Position:
    symbol: str
    side: PositionSide
    quantity: Decimal
    entry_price: Decimal
    initial_margin: Decimal
    opened_at: datetime
    asset_class: str = CRYPTO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    # running totals over the position's life, for the Position record
    realised_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    closed_quantity: Decimal = ZERO
    closed_value: Decimal = ZERO  # sum of closed quantity x closing price, for the average exit

    @property
    def leverage(self) -> Decimal:
        # effective leverage: entry notional / initial margin (orders at several leverages blend)
        if self.initial_margin <= 0:
            return ONE
        return self.quantity * self.entry_price / self.initial_margin

    @property
    def exit_price(self) -> Decimal | None:
        if self.closed_quantity <= 0:
            return None
        return to_price(self.closed_value / self.closed_quantity)

    def unrealised_pnl(self, mark: Decimal) -> Decimal:
        # unrealised PnL = side x (mark - entry) x size
        if self.side is PositionSide.LONG:
            return (mark - self.entry_price) * self.quantity
        return (self.entry_price - mark) * self.quantity


@dataclass(frozen=True, slots=True)
class Account:
    initial_capital: Decimal
    cash: Decimal
    positions: Mapping[str, Position] = field(default_factory=dict)

    @classmethod
    def new(cls, initial_capital: Decimal) -> Account:
        return cls(initial_capital=initial_capital, cash=initial_capital, positions={})


# --- events out ---


@dataclass(frozen=True, slots=True)
class Fill:
    symbol: str
    side: OrderSide
    quantity: Decimal
    price: Decimal
    fee: Decimal
    realised_pnl: Decimal
    reason: FillReason
    at: datetime
    position_side: PositionSide  # side of the position this fill opened, added to or reduced
    closes: bool  # True when the fill reduces/closes a position, False when it opens/adds
    initial_margin: Decimal = ZERO  # margin reserved (opening) or released (closing) by this fill


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    kind: LedgerKind
    amount: Decimal  # signed: + into cash, - out of cash
    at: datetime
    symbol: str | None = None
    fill: Fill | None = None
    description: str = ""


@dataclass(frozen=True, slots=True)
class PositionClosed:
    position: Position  # final state (quantity is the quantity it had before the last fill)
    at: datetime
    reason: FillReason


@dataclass(frozen=True, slots=True)
class ExitPlanChanged:
    symbol: str
    stop_loss: Decimal | None
    take_profit: Decimal | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Rejection:
    code: RejectCode
    reason: str


Event = Fill | LedgerEvent | PositionClosed | ExitPlanChanged


@dataclass(frozen=True, slots=True)
class Result:
    account: Account
    events: tuple[Event, ...] = ()
    rejection: Rejection | None = None

    @property
    def fills(self) -> list[Fill]:
        return [event for event in self.events if isinstance(event, Fill)]

    @property
    def ledger(self) -> list[LedgerEvent]:
        return [event for event in self.events if isinstance(event, LedgerEvent)]

    @property
    def closed_positions(self) -> list[PositionClosed]:
        return [event for event in self.events if isinstance(event, PositionClosed)]


@dataclass(frozen=True, slots=True)
class Metrics:
    cash: Decimal
    unrealised_pnl: Decimal
    equity: Decimal
    used_margin: Decimal
    maintenance_requirement: Decimal

    @property
    def free_margin(self) -> Decimal:
        return self.equity - self.used_margin

    @property
    def margin_level(self) -> Decimal | None:
        """equity / used margin; None without open positions (computed on demand: marks skip it)."""
        return self.equity / self.used_margin if self.used_margin > 0 else None


@dataclass(frozen=True, slots=True)
class MarkResult:
    account: Account
    metrics: Metrics  # after close-out and negative balance protection
    events: tuple[Event, ...] = ()
    liquidated: bool = False

    @property
    def fills(self) -> list[Fill]:
        return [event for event in self.events if isinstance(event, Fill)]

    @property
    def ledger(self) -> list[LedgerEvent]:
        return [event for event in self.events if isinstance(event, LedgerEvent)]


class MissingPrice(KeyError):
    """A position cannot be marked without a price for its symbol."""
