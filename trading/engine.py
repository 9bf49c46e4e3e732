"""The CFD engine: account state + prices + an order or a price move -> new state + events.

Pure on purpose (decimal, dataclasses, typing, datetime, enum only): every rule of
docs/engine.md lives here and is tested without a database. The values it computes with
(rules, states, events, quantization) are in trading/values.py and reached as engine.<name>.
The Book (trading/services.py) loads rows into these values through trading/ledger.py,
calls the engine, and persists the events.

States are immutable: every function returns a new `Account` (positions are copied on write)
and never mutates its arguments. Cash amounts are quantized to MONEY so the ledger sums
exactly; prices and quantities to PRICE / QUANTITY so they match the database columns.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Callable, Iterable, Mapping

# the engine's vocabulary, reached as engine.<name> by every caller
from trading.values import (  # noqa: F401
    MONEY_PLACES, PRICE_PLACES, QUANTITY_PLACES, MONEY, PRICE, QUANTITY, ZERO, ONE, HUNDRED,
    SANITY_NOTIONAL_MULTIPLE, DAYS_PER_YEAR, FUNDING_HOURS_UTC, FINANCING_HOUR_UTC, CRYPTO, money,
    to_price, OrderSide, PositionSide, FillReason, LedgerKind, FundingKind, RejectCode, SIGN,
    SIDE_ALIASES, Rules, Instrument, OrderRequest, Bar, Position, Account, Fill, LedgerEvent,
    PositionClosed, ExitPlanChanged, Rejection, Event, Result, Metrics, MarkResult, MissingPrice,
)


# --- account arithmetic ---


def metrics(account: Account, prices: Mapping[str, Decimal], rules: Rules | None = None) -> Metrics:
    """equity = cash + sum(unrealised); used margin = sum(initial margin); free = equity - used."""
    unrealised = ZERO
    used = ZERO
    notional = ZERO
    long = PositionSide.LONG
    for position in account.positions.values():
        try:
            mark = prices[position.symbol]
        except KeyError:
            raise MissingPrice(position.symbol) from None
        quantity = position.quantity
        if position.side is long:
            unrealised += (mark - position.entry_price) * quantity
        else:
            unrealised += (position.entry_price - mark) * quantity
        used += position.initial_margin
        notional += mark * quantity
    cash = account.cash
    maintenance = notional * rules.maintenance_rate if rules is not None else ZERO
    return Metrics(cash, unrealised, cash + unrealised, used, maintenance)


def fill_price(mid: Decimal, side: OrderSide, rules: Rules) -> Decimal:
    factor = rules.buy_factor if side is OrderSide.BUY else rules.sell_factor
    return to_price(mid * factor)


def fee_for(quantity: Decimal, price: Decimal, rules: Rules) -> Decimal:
    # fee = fee_pct / 100 x fill notional, at open and at close
    return money(quantity * price * rules.fee_pct / HUNDRED)


def _closing_side(position: Position) -> OrderSide:
    return OrderSide.SELL if position.side is PositionSide.LONG else OrderSide.BUY


def _apply_close(
    positions: dict[str, Position],
    position: Position,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    reason: FillReason,
    at: datetime,
    events: list[Event],
) -> Decimal:
    """Reduce `position` by `quantity` at `price`.

    Mutates the working `positions` dict, appends the events, returns the cash delta.
    """
    # realised PnL on the closed part = side x (exit - entry) x closed size; entry unchanged
    realised = money(SIGN[position.side] * (price - position.entry_price) * quantity)
    remaining = position.quantity - quantity
    if remaining > 0:
        # margin released pro rata to the closed size
        margin_left = money(position.initial_margin * remaining / position.quantity)
    else:
        margin_left = ZERO
    fill = Fill(
        symbol=position.symbol,
        side=_closing_side(position),
        quantity=quantity,
        price=price,
        fee=fee,
        realised_pnl=realised,
        reason=reason,
        at=at,
        position_side=position.side,
        closes=True,
        initial_margin=position.initial_margin - margin_left,
    )
    events.append(fill)
    if realised:
        events.append(LedgerEvent(LedgerKind.REALISED_PNL, realised, at, position.symbol, fill))
    if fee:
        events.append(LedgerEvent(LedgerKind.FEE, -fee, at, position.symbol, fill))
    updated = replace(
        position,
        quantity=remaining,
        initial_margin=margin_left,
        realised_pnl=position.realised_pnl + realised,
        fees=position.fees + fee,
        closed_quantity=position.closed_quantity + quantity,
        closed_value=position.closed_value + quantity * price,
    )
    if remaining > 0:
        positions[position.symbol] = updated
    else:
        del positions[position.symbol]
        events.append(PositionClosed(replace(updated, quantity=position.quantity), at, reason))
    return realised - fee


def close_position(
    account: Account,
    symbol: str,
    *,
    price: Decimal,
    rules: Rules,
    at: datetime,
    reason: FillReason,
    apply_costs: bool = True,
) -> Result:
    """Close a whole position at `price` (a mid when apply_costs, else the execution price itself)."""
    position = account.positions[symbol]
    side = _closing_side(position)
    execution = fill_price(price, side, rules) if apply_costs else to_price(price)
    fee = fee_for(position.quantity, execution, rules)
    positions = dict(account.positions)
    events: list[Event] = []
    delta = _apply_close(positions, position, position.quantity, execution, fee, reason, at, events)
    return Result(replace(account, cash=account.cash + delta, positions=positions), tuple(events))


# --- orders ---


def _reject(account: Account, code: RejectCode, reason: str) -> Result:
    return Result(account, (), Rejection(code, reason))


def _decimal_or_none(value: object) -> Decimal | None:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None  # floats are refused: money never travels as a binary float


def _exit_plan_error(
    side: PositionSide, reference: Decimal, stop_loss: Decimal | None, take_profit: Decimal | None
) -> Rejection | None:
    """A long's stop sits below the price and its take-profit above; a short's the other way round."""
    for value, code, label in (
        (stop_loss, RejectCode.INVALID_STOP_LOSS, "stop-loss"),
        (take_profit, RejectCode.INVALID_TAKE_PROFIT, "take-profit"),
    ):
        if value is not None and (not isinstance(value, Decimal) or not value.is_finite() or value <= 0):
            return Rejection(code, f"{label} must be a positive finite price, got {value!r}")
    if side is PositionSide.LONG:
        if stop_loss is not None and stop_loss >= reference:
            return Rejection(
                RejectCode.INVALID_STOP_LOSS, f"a long's stop-loss {stop_loss} must be below {reference}"
            )
        if take_profit is not None and take_profit <= reference:
            return Rejection(
                RejectCode.INVALID_TAKE_PROFIT,
                f"a long's take-profit {take_profit} must be above {reference}",
            )
    else:
        if stop_loss is not None and stop_loss <= reference:
            return Rejection(
                RejectCode.INVALID_STOP_LOSS, f"a short's stop-loss {stop_loss} must be above {reference}"
            )
        if take_profit is not None and take_profit >= reference:
            return Rejection(
                RejectCode.INVALID_TAKE_PROFIT,
                f"a short's take-profit {take_profit} must be below {reference}",
            )
    return None


def place_order(
    account: Account,
    order: OrderRequest,
    *,
    rules: Rules,
    instrument: Instrument,
    prices: Mapping[str, Decimal],
    at: datetime,
    competition_active: bool = True,
    participant_active: bool = True,
    market_open: bool | Callable[[str], bool] = True,
) -> Result:
    """Fill a market order at the mid of its symbol with costs, or reject it and change nothing.

    The part of an order that reduces an existing opposite position always passes the money
    checks (de-risking is never blocked); the part that opens exposure is checked against the
    account as it stands after the reducing part.
    """
    symbol = order.symbol
    if not competition_active:
        return _reject(account, RejectCode.COMPETITION_INACTIVE, "the competition is not running")
    if not participant_active:
        return _reject(account, RejectCode.PARTICIPANT_INACTIVE, "this participant may no longer trade")
    if rules.symbols and symbol not in rules.symbols:
        return _reject(account, RejectCode.SYMBOL_NOT_ALLOWED, f"{symbol} is not traded in this competition")
    if rules.allowed_asset_classes and instrument.asset_class not in rules.allowed_asset_classes:
        return _reject(
            account,
            RejectCode.ASSET_CLASS_NOT_ALLOWED,
            f"{symbol} is {instrument.asset_class}, not allowed in this competition",
        )
    if rules.market_hours_only:
        is_open = market_open(symbol) if callable(market_open) else market_open
        if not is_open:
            return _reject(account, RejectCode.MARKET_CLOSED, f"the market for {symbol} is closed")
    mid = prices.get(symbol)
    if mid is None or not mid.is_finite() or mid <= 0:
        return _reject(account, RejectCode.NO_PRICE, f"no usable price for {symbol}")
    side = SIDE_ALIASES.get(order.side) if isinstance(order.side, str) else None
    if side is None:
        return _reject(
            account,
            RejectCode.INVALID_SIDE,
            f"side must be buy/long or sell/short, got {str(order.side)[:20]!r}",
        )

    if (order.quantity is None) == (order.notional_usd is None):
        return _reject(account, RejectCode.INVALID_SIZE, "give exactly one of quantity or notional_usd")
    raw = _decimal_or_none(order.quantity if order.quantity is not None else order.notional_usd)
    if raw is None or not raw.is_finite():
        return _reject(account, RejectCode.INVALID_SIZE, "the order size is not a finite decimal number")
    if raw <= 0:
        return _reject(account, RejectCode.QUANTITY_NOT_POSITIVE, f"the order size must be > 0, got {raw}")

    before = metrics(account, prices, rules)
    requested_notional = raw if order.notional_usd is not None else raw * mid
    ceiling = SANITY_NOTIONAL_MULTIPLE * max(before.equity, account.initial_capital)
    if requested_notional > ceiling:
        return _reject(
            account,
            RejectCode.ORDER_TOO_LARGE,
            f"notional {requested_notional:.2f} exceeds {SANITY_NOTIONAL_MULTIPLE}x the account's equity",
        )
    # notional sizing converts at the mid; quantities round down to the instrument's step
    quantity = raw if order.notional_usd is None else raw / mid
    step = instrument.quantity_step if instrument.quantity_step and instrument.quantity_step > 0 else QUANTITY
    try:
        quantity = (quantity / step).to_integral_value(rounding=ROUND_DOWN) * step
        quantity = quantity.quantize(QUANTITY, rounding=ROUND_DOWN)
    except InvalidOperation:
        return _reject(account, RejectCode.ORDER_TOO_LARGE, "the quantity has more digits than can be held")
    minimum = instrument.min_quantity or ZERO
    if quantity <= 0 or quantity < minimum:
        return _reject(
            account,
            RejectCode.QUANTITY_BELOW_MINIMUM,
            f"quantity {quantity} (rounded down to step {step}) is below the minimum {max(minimum, step)}",
        )

    execution = fill_price(mid, side, rules)
    order_side = PositionSide.LONG if side is OrderSide.BUY else PositionSide.SHORT
    existing = account.positions.get(symbol)
    positions = dict(account.positions)
    events: list[Event] = []
    cash = account.cash

    close_quantity = ZERO
    if existing is not None and existing.side is not order_side:
        close_quantity = min(quantity, existing.quantity)
    open_quantity = quantity - close_quantity

    if open_quantity > 0:
        leverage = _decimal_or_none(order.leverage)
        if leverage is None or not leverage.is_finite() or not ONE <= leverage <= rules.max_order_leverage:
            return _reject(
                account,
                RejectCode.LEVERAGE_OUT_OF_RANGE,
                f"leverage must be between 1 and {rules.max_order_leverage}, got {order.leverage}",
            )
        # a new exit plan is judged against the mid the order fills around
        error = _exit_plan_error(order_side, mid, order.stop_loss, order.take_profit)
        if error is not None:
            return Result(account, (), error)

    if close_quantity > 0:
        fee = fee_for(close_quantity, execution, rules)
        cash += _apply_close(
            positions, existing, close_quantity, execution, fee, FillReason.AGENT, at, events
        )

    if open_quantity > 0:
        base = metrics(replace(account, cash=cash, positions=positions), prices, rules) if events else before
        margin = money(open_quantity * execution / leverage)
        fee = fee_for(open_quantity, execution, rules)
        # pre-trade margin check: initial margin + fee <= free margin
        if margin + fee > base.free_margin:
            return _reject(
                account,
                RejectCode.INSUFFICIENT_MARGIN,
                f"needs margin {margin} + fee {fee} but free margin is {money(base.free_margin)}",
            )
        current = positions.get(symbol)
        margin_after = margin + (current.initial_margin if current is not None else ZERO)
        # position limit: the position's initial margin <= max_position_size_pct % of equity
        limit = base.equity * rules.max_position_size_pct / HUNDRED
        if margin_after > limit:
            return _reject(
                account,
                RejectCode.POSITION_LIMIT,
                f"the position's margin would be {margin_after}, above "
                f"{rules.max_position_size_pct}% of equity ({money(limit)})",
            )
        fill = Fill(
            symbol=symbol,
            side=side,
            quantity=open_quantity,
            price=execution,
            fee=fee,
            realised_pnl=ZERO,
            reason=FillReason.AGENT,
            at=at,
            position_side=order_side,
            closes=False,
            initial_margin=margin,
        )
        events.append(fill)
        if fee:
            events.append(LedgerEvent(LedgerKind.FEE, -fee, at, symbol, fill))
        cash -= fee
        if current is None:
            positions[symbol] = Position(
                symbol=symbol,
                side=order_side,
                quantity=open_quantity,
                entry_price=execution,
                initial_margin=margin,
                opened_at=at,
                asset_class=instrument.asset_class,
                stop_loss=order.stop_loss,
                take_profit=order.take_profit,
                fees=fee,
            )
        else:
            total = current.quantity + open_quantity
            positions[symbol] = replace(
                current,
                quantity=total,
                # adding on the same side: size-weighted average entry
                entry_price=to_price(
                    (current.quantity * current.entry_price + open_quantity * execution) / total
                ),
                initial_margin=margin_after,
                fees=current.fees + fee,
                stop_loss=order.stop_loss if order.stop_loss is not None else current.stop_loss,
                take_profit=order.take_profit if order.take_profit is not None else current.take_profit,
            )
    return Result(replace(account, cash=cash, positions=positions), tuple(events))


def update_exit_plan(
    account: Account,
    symbol: str,
    *,
    stop_loss: Decimal | None,
    take_profit: Decimal | None,
    prices: Mapping[str, Decimal],
    at: datetime,
) -> Result:
    """Replace a position's stop-loss and take-profit (None clears one), validated against the mark."""
    position = account.positions.get(symbol)
    if position is None:
        return _reject(account, RejectCode.NO_POSITION, f"there is no open position in {symbol}")
    mark = prices.get(symbol)
    if mark is None or not mark.is_finite() or mark <= 0:
        return _reject(account, RejectCode.NO_PRICE, f"no usable price for {symbol}")
    error = _exit_plan_error(position.side, mark, stop_loss, take_profit)
    if error is not None:
        return Result(account, (), error)
    positions = dict(account.positions)
    positions[symbol] = replace(position, stop_loss=stop_loss, take_profit=take_profit)
    return Result(
        replace(account, positions=positions), (ExitPlanChanged(symbol, stop_loss, take_profit, at),)
    )


# --- stops and take-profits ---


def exit_trigger(position: Position, bar: Bar) -> tuple[FillReason, Decimal] | None:
    """Which exit a bar triggers and at what execution price.

    Intrabar from the bar's low/high; the fill is at the trigger price, or at the open when the
    bar opened beyond it (a gap). When both trigger in one bar the stop-loss is taken, unless the
    bar opened beyond the take-profit: then the open is the first price of the bar and the
    take-profit fills there.
    """
    stop, target = position.stop_loss, position.take_profit
    if position.side is PositionSide.LONG:
        if target is not None and bar.open >= target:
            return FillReason.TAKE_PROFIT, bar.open
        if stop is not None and bar.low <= stop:
            return FillReason.STOP_LOSS, min(stop, bar.open)
        if target is not None and bar.high >= target:
            return FillReason.TAKE_PROFIT, target
    else:
        if target is not None and bar.open <= target:
            return FillReason.TAKE_PROFIT, bar.open
        if stop is not None and bar.high >= stop:
            return FillReason.STOP_LOSS, max(stop, bar.open)
        if target is not None and bar.low <= target:
            return FillReason.TAKE_PROFIT, target
    return None


def process_bar(account: Account, bars: Mapping[str, Bar], *, rules: Rules, at: datetime) -> Result:
    """Run every position's exit plan against its symbol's bar.

    Stops and take-profits fill at the execution price itself (no spread or slippage added:
    the trigger or the gapped open is the price obtained); the fee is charged.
    """
    result_account = account
    events: list[Event] = []
    for symbol in sorted(account.positions):
        position = account.positions[symbol]
        bar = bars.get(symbol)
        if bar is None or (position.stop_loss is None and position.take_profit is None):
            continue
        trigger = exit_trigger(position, bar)
        if trigger is None:
            continue
        reason, price = trigger
        result = close_position(
            result_account, symbol, price=price, rules=rules, at=at, reason=reason, apply_costs=False
        )
        result_account = result.account
        events.extend(result.events)
    return Result(result_account, tuple(events))


def process_price(account: Account, prices: Mapping[str, Decimal], *, rules: Rules, at: datetime) -> Result:
    """Live exits: a stop or take-profit fires when the last price crosses it, filling at that price."""
    bars = {symbol: Bar(price, price, price, price) for symbol, price in prices.items()}
    return process_bar(account, bars, rules=rules, at=at)


# --- funding and financing ---


@dataclass(frozen=True, slots=True, order=True)
class FundingMoment:
    at: datetime
    kind: FundingKind


def funding_moments(previous: datetime, current: datetime) -> list[FundingMoment]:
    """Funding (00:00, 08:00, 16:00 UTC) and financing (22:00 UTC) moments in (previous, current]."""
    moments: list[FundingMoment] = []
    if current <= previous:
        return moments
    hour = previous.replace(minute=0, second=0, microsecond=0)
    if hour <= previous:
        hour += timedelta(hours=1)
    while hour <= current:
        utc_hour = hour.utctimetuple().tm_hour
        if utc_hour in FUNDING_HOURS_UTC:
            moments.append(FundingMoment(hour, FundingKind.FUNDING))
        if utc_hour == FINANCING_HOUR_UTC:
            moments.append(FundingMoment(hour, FundingKind.FINANCING))
        hour += timedelta(hours=1)
    return moments


def apply_funding(
    account: Account, moment: FundingMoment, *, prices: Mapping[str, Decimal], rules: Rules
) -> Result:
    """Charge the positions open at a funding or financing moment, marked at `prices`.

    Funding (crypto only): size x mark x rate_8h / 100, longs pay, shorts receive (a negative
    rate reverses). Financing (every other class): size x mark x rate_annual / 100 / 365,
    paid by longs and shorts alike.
    """
    events: list[Event] = []
    positions = dict(account.positions)
    cash = account.cash
    for symbol in sorted(account.positions):
        position = account.positions[symbol]
        if symbol not in prices:
            raise MissingPrice(symbol)
        is_crypto = position.asset_class == CRYPTO
        if moment.kind is FundingKind.FUNDING and is_crypto:
            kind = LedgerKind.FUNDING
            payment = position.quantity * prices[symbol] * rules.funding_rate_pct_8h / HUNDRED
            amount = money(-payment if position.side is PositionSide.LONG else payment)
        elif moment.kind is FundingKind.FINANCING and not is_crypto:
            kind = LedgerKind.FINANCING
            payment = (
                position.quantity * prices[symbol] * rules.financing_rate_pct_annual / HUNDRED / DAYS_PER_YEAR
            )
            amount = money(-payment)
        else:
            continue
        if not amount:
            continue
        events.append(LedgerEvent(kind, amount, moment.at, symbol))
        positions[symbol] = replace(position, funding=position.funding + amount)
        cash += amount
    if not events:
        return Result(account)
    return Result(replace(account, cash=cash, positions=positions), tuple(events))


# --- mark, close-out, negative balance protection ---


def mark(account: Account, prices: Mapping[str, Decimal], *, rules: Rules, at: datetime) -> MarkResult:
    """Mark at mid; margin close-out while equity <= maintenance requirement; then NBP.

    Close-out: maintenance requirement = sum(size x mark) x maintenance_margin_pct / 100; while
    equity <= it, close the position with the largest unrealised loss at mark with costs.
    Negative balance protection: cash below zero with no position left is credited back to zero.
    The account is liquidated when its equity is zero (or less) after all this.
    """
    current = metrics(account, prices, rules)
    if current.equity > current.maintenance_requirement:
        return MarkResult(account, current)  # the common path: nothing to do
    events: list[Event] = []
    while account.positions and current.equity <= current.maintenance_requirement:
        # worst loser first; ties broken by symbol so replays are deterministic
        symbol = min(
            account.positions.values(),
            key=lambda position: (position.unrealised_pnl(prices[position.symbol]), position.symbol),
        ).symbol
        result = close_position(
            account, symbol, price=prices[symbol], rules=rules, at=at, reason=FillReason.LIQUIDATION
        )
        account = result.account
        events.extend(result.events)
        current = metrics(account, prices, rules)
    if not account.positions and account.cash < 0:
        credit = -account.cash
        events.append(
            LedgerEvent(LedgerKind.NBP_CREDIT, credit, at, None, None, "negative balance protection")
        )
        account = replace(account, cash=ZERO)
        current = metrics(account, prices, rules)
    return MarkResult(account, current, tuple(events), liquidated=current.equity <= 0)


def close_all(
    account: Account, prices: Mapping[str, Decimal], *, rules: Rules, at: datetime, reason: FillReason
) -> Result:
    """Close every position at its mark with costs (competition end), then apply NBP."""
    events: list[Event] = []
    for symbol in sorted(account.positions):
        result = close_position(account, symbol, price=prices[symbol], rules=rules, at=at, reason=reason)
        account = result.account
        events.extend(result.events)
    if account.cash < 0:
        events.append(
            LedgerEvent(LedgerKind.NBP_CREDIT, -account.cash, at, None, None, "negative balance protection")
        )
        account = replace(account, cash=ZERO)
    return Result(account, tuple(events))


def liquidation_price(
    account: Account, symbol: str, prices: Mapping[str, Decimal], *, rules: Rules
) -> Decimal | None:
    """The mark of `symbol` at which equity == maintenance requirement, other prices held constant.

    With m the mark, s = +1 long / -1 short, q size, e entry, r = maintenance_margin_pct / 100,
    C cash, U and N the other positions' unrealised PnL and notional:
    C + U + s*q*(m - e) = r*(N + q*m)  =>  m = (r*N - C - U + s*q*e) / (q*(s - r)).
    None when no positive price satisfies it (e.g. a long that equity covers down to zero).
    """
    position = account.positions[symbol]
    rate = rules.maintenance_margin_pct / HUNDRED
    others_unrealised = ZERO
    others_notional = ZERO
    for other in account.positions.values():
        if other.symbol == symbol:
            continue
        others_unrealised += other.unrealised_pnl(prices[other.symbol])
        others_notional += other.quantity * prices[other.symbol]
    sign = SIGN[position.side]
    denominator = position.quantity * (sign - rate)
    if denominator == 0:
        return None
    numerator = (
        rate * others_notional
        - account.cash
        - others_unrealised
        + sign * position.quantity * position.entry_price
    )
    price = numerator / denominator
    if price <= 0:
        return None
    return to_price(price)


def ledger_total(events: Iterable[Event]) -> Decimal:
    """Sum of the cash movements among `events` (for invariant checks)."""
    return sum((event.amount for event in events if isinstance(event, LedgerEvent)), ZERO)
