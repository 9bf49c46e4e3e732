"""Table-driven engine cases; every number is worked by hand in the comment next to it."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from trading import engine
from trading.engine import (
    Account,
    Bar,
    FillReason,
    FundingKind,
    FundingMoment,
    Instrument,
    LedgerKind,
    OrderRequest,
    PositionSide,
    RejectCode,
    Rules,
)

T0 = datetime(2024, 1, 1, 12, tzinfo=UTC)
BTC = Instrument("BTC/USDT", "crypto")
ETH = Instrument("ETH/USDT", "crypto")
SPX = Instrument("SPX500", "indices")
FREE = Rules(max_leverage=D(100), margin_requirement_pct=D(1), maintenance_margin_pct=D(0))
COSTLY = replace(FREE, fee_pct=D("0.1"), spread_bps=D(10), slippage_bps=D(5))


def place(account, symbol, side, quantity=None, price=D(100), rules=FREE, instrument=None, **kwargs):
    order_kwargs = {
        key: kwargs.pop(key)
        for key in ("leverage", "stop_loss", "take_profit", "notional_usd")
        if key in kwargs
    }
    order = OrderRequest(symbol=symbol, side=side, quantity=quantity, **order_kwargs)
    prices = kwargs.pop("prices", None) or {symbol: price}
    for position in account.positions.values():
        prices.setdefault(position.symbol, position.entry_price)
    return engine.place_order(
        account,
        order,
        rules=rules,
        instrument=instrument or Instrument(symbol, "indices" if symbol == "SPX500" else "crypto"),
        prices=prices,
        at=T0,
        **kwargs,
    )


def filled(account, *steps, rules=FREE):
    """Apply (symbol, side, quantity, price[, leverage]) orders that must all fill."""
    for symbol, side, quantity, price, *rest in steps:
        result = place(
            account, symbol, side, D(quantity), D(price), rules=rules, leverage=D(rest[0]) if rest else D(1)
        )
        assert result.rejection is None, result.rejection
        account = result.account
    return account


def assert_invariant(account, events_so_far):
    assert account.cash == account.initial_capital + engine.ledger_total(events_so_far)


# --- prices and costs ---


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # 1 + 10/20000 + 5/10000 = 1.001 -> 100 * 1.001
        ("buy", D("100.1")),
        # 1 - 0.0005 - 0.0005 = 0.999
        ("sell", D("99.9")),
    ],
)
def test_fill_price_adds_half_spread_and_slippage_against_the_taker(side, expected):
    assert engine.fill_price(D(100), engine.OrderSide(side), COSTLY) == expected


def test_opening_long_with_costs_reserves_margin_and_pays_only_the_fee():
    account = Account.new(D(10000))
    result = place(account, "BTC/USDT", "buy", D(2), D(100), rules=COSTLY, leverage=D(2))
    (fill,) = result.fills
    position = result.account.positions["BTC/USDT"]
    assert fill.price == D("100.1")
    assert fill.fee == D("0.2002")  # 2 x 100.1 x 0.1 %
    assert position.initial_margin == D("100.1")  # 200.2 / 2
    assert position.entry_price == D("100.1")
    assert position.leverage == D(2)
    assert result.account.cash == D("9999.7998")  # margin is reserved, not spent
    assert [(e.kind, e.amount) for e in result.ledger] == [(LedgerKind.FEE, D("-0.2002"))]
    metrics = engine.metrics(result.account, {"BTC/USDT": D(100)}, COSTLY)
    # unrealised at mid: (100 - 100.1) x 2 = -0.2
    assert metrics.unrealised_pnl == D("-0.2")
    assert metrics.equity == D("9999.5998")
    assert metrics.used_margin == D("100.1")
    assert metrics.free_margin == D("9899.4998")


def test_opening_short_with_costs_fills_at_the_bid():
    result = place(Account.new(D(10000)), "BTC/USDT", "sell", D(2), D(100), rules=COSTLY)
    position = result.account.positions["BTC/USDT"]
    assert position.side is PositionSide.SHORT
    assert position.entry_price == D("99.9")
    assert result.fills[0].fee == D("0.1998")  # 199.8 x 0.1 %
    assert result.account.cash == D("9999.8002")
    # short unrealised at mid 100: (99.9 - 100) x 2 = -0.2
    assert position.unrealised_pnl(D(100)) == D("-0.2")


# --- netting: REFERENCE.md vectors (zero fees) ---


def test_reference_vectors_size_weighted_entry_and_realised_pnl():
    account = Account.new(D(100000))
    events = []
    steps = [
        # (side, qty, price, expected size, expected entry, expected realised of this order, margin after)
        ("buy", 100, 10, D(100), D(10), D(0), D(1000)),
        ("buy", 100, 15, D(200), D("12.5"), D(0), D(2500)),  # (1000 + 1500) / 200
        ("sell", 50, 12, D(150), D("12.5"), D(-25), D(1875)),  # 50 x (12 - 12.5); margin 2500 x 150/200
        ("sell", 100, 20, D(50), D("12.5"), D(750), D(625)),  # 100 x (20 - 12.5); margin 1875 x 50/150
    ]
    for side, qty, price, size, entry, realised, margin in steps:
        result = place(account, "X/USDT", side, D(qty), D(price))
        assert result.rejection is None
        events.extend(result.events)
        account = result.account
        position = account.positions["X/USDT"]
        assert (position.quantity, position.entry_price, position.initial_margin) == (size, entry, margin)
        assert sum(f.realised_pnl for f in result.fills) == realised
        assert_invariant(account, events)
    assert account.cash == D(100725)  # 100000 - 25 + 750


def test_reference_vector_flip_makes_two_fills():
    account = filled(Account.new(D(10000)), ("X/USDT", "buy", 1, 100))
    result = place(account, "X/USDT", "sell", D(3), D(110))
    close, open_ = result.fills
    assert (close.quantity, close.realised_pnl, close.closes) == (D(1), D(10), True)
    assert (open_.quantity, open_.price, open_.closes, open_.position_side) == (
        D(2),
        D(110),
        False,
        PositionSide.SHORT,
    )
    position = result.account.positions["X/USDT"]
    assert (position.side, position.quantity, position.entry_price) == (PositionSide.SHORT, D(2), D(110))
    assert result.account.cash == D(10010)
    (closed,) = result.closed_positions
    assert (closed.position.quantity, closed.position.exit_price, closed.position.realised_pnl) == (
        D(1),
        D(110),
        D(10),
    )


@pytest.mark.parametrize(
    ("opening", "closing", "close_price", "realised", "fees", "cash"),
    [
        # long 2 @ 100 closed @ 110, no costs: +20
        ("buy", "sell", 110, D(20), D(0), D(10020)),
        # short 2 @ 100 closed @ 110, no costs: -20
        ("sell", "buy", 110, D(-20), D(0), D(9980)),
        # short 2 @ 100 closed @ 90: +20
        ("sell", "buy", 90, D(20), D(0), D(10020)),
    ],
)
def test_close_without_costs(opening, closing, close_price, realised, fees, cash):
    account = filled(Account.new(D(10000)), ("X/USDT", opening, 2, 100))
    result = place(account, "X/USDT", closing, D(2), D(close_price))
    assert result.account.positions == {}
    assert result.fills[0].realised_pnl == realised
    assert result.account.cash == cash
    (closed,) = result.closed_positions
    assert closed.position.exit_price == D(close_price)
    assert closed.reason is FillReason.AGENT


def test_round_trip_with_costs_pays_spread_slippage_and_two_fees():
    account = Account.new(D(10000))
    opened = place(account, "X/USDT", "buy", D(2), D(100), rules=COSTLY)  # fill 100.1, fee 0.2002
    closed = place(opened.account, "X/USDT", "sell", D(2), D(110), rules=COSTLY)
    (fill,) = closed.fills
    assert fill.price == D("109.89")  # 110 x 0.999
    assert fill.realised_pnl == D("19.58")  # (109.89 - 100.1) x 2
    assert fill.fee == D("0.21978")  # 219.78 x 0.1 %
    # 10000 - 0.2002 + 19.58 - 0.21978
    assert closed.account.cash == D("10019.16002")
    assert closed.closed_positions[0].position.fees == D("0.41998")
    assert_invariant(closed.account, opened.events + closed.events)


def test_reducing_a_short_keeps_entry_and_releases_margin_pro_rata():
    account = filled(Account.new(D(10000)), ("X/USDT", "sell", 4, 50, 2))  # margin 4 x 50 / 2 = 100
    result = place(account, "X/USDT", "buy", D(1), D(40))
    position = result.account.positions["X/USDT"]
    assert (position.quantity, position.entry_price, position.initial_margin) == (D(3), D(50), D(75))
    assert result.fills[0].realised_pnl == D(10)  # (50 - 40) x 1
    assert result.fills[0].initial_margin == D(25)  # released


def test_adding_at_another_leverage_blends_margin():
    account = filled(Account.new(D(10000)), ("X/USDT", "buy", 1, 100, 1), ("X/USDT", "buy", 1, 100, 4))
    position = account.positions["X/USDT"]
    assert position.initial_margin == D(125)  # 100 / 1 + 100 / 4
    assert position.leverage == D("1.6")  # 200 / 125


def test_notional_sizing_converts_at_mid_and_rounds_down_to_the_step():
    instrument = Instrument("BTC/USDT", "crypto", quantity_step=D("0.001"), min_quantity=D("0.001"))
    result = place(
        Account.new(D(10000)), "BTC/USDT", "buy", notional_usd=D(1000), price=D(30000), instrument=instrument
    )
    # 1000 / 30000 = 0.0333.. -> 0.033
    assert result.fills[0].quantity == D("0.033")


# --- rejections: each leaves the account untouched ---


LIMITED = Rules(
    max_leverage=D(10),
    margin_requirement_pct=D(20),  # leverage cap 100 / 20 = 5
    maintenance_margin_pct=D(5),
    max_position_size_pct=D(20),
    fee_pct=D("0.1"),
    symbols=frozenset({"BTC/USDT", "ETH/USDT", "SPX500"}),
    allowed_asset_classes=frozenset({"crypto", "indices"}),
    market_hours_only=True,
)


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"competition_active": False}, RejectCode.COMPETITION_INACTIVE),
        ({"participant_active": False}, RejectCode.PARTICIPANT_INACTIVE),
        ({"symbol": "DOGE/USDT"}, RejectCode.SYMBOL_NOT_ALLOWED),
        ({"instrument": Instrument("BTC/USDT", "forex")}, RejectCode.ASSET_CLASS_NOT_ALLOWED),
        ({"market_open": False}, RejectCode.MARKET_CLOSED),
        ({"market_open": lambda symbol: symbol != "BTC/USDT"}, RejectCode.MARKET_CLOSED),
        ({"prices": {"ETH/USDT": D(100)}}, RejectCode.NO_PRICE),
        ({"side": "hold"}, RejectCode.INVALID_SIDE),
        ({"quantity": None}, RejectCode.INVALID_SIZE),
        ({"notional_usd": D(100)}, RejectCode.INVALID_SIZE),  # both given
        ({"quantity": 1.5}, RejectCode.INVALID_SIZE),  # a float
        ({"quantity": D("NaN")}, RejectCode.INVALID_SIZE),
        ({"quantity": D("Infinity")}, RejectCode.INVALID_SIZE),
        ({"quantity": "lots"}, RejectCode.INVALID_SIZE),
        ({"quantity": D(0)}, RejectCode.QUANTITY_NOT_POSITIVE),
        ({"quantity": D(-1)}, RejectCode.QUANTITY_NOT_POSITIVE),
        # 100001 x 100 = 10,000,100 > 1000 x 10000
        ({"quantity": D(100001)}, RejectCode.ORDER_TOO_LARGE),
        ({"quantity": D("1e40")}, RejectCode.ORDER_TOO_LARGE),
        (
            {"instrument": Instrument("BTC/USDT", "crypto", D("0.01"), D("0.05")), "quantity": D("0.049")},
            RejectCode.QUANTITY_BELOW_MINIMUM,
        ),
        ({"quantity": D("1e-13")}, RejectCode.QUANTITY_BELOW_MINIMUM),
        ({"leverage": D("0.5")}, RejectCode.LEVERAGE_OUT_OF_RANGE),
        ({"leverage": D(6)}, RejectCode.LEVERAGE_OUT_OF_RANGE),  # cap min(10, 100/20) = 5
        # margin 110 x 100 / 5 = 2200 (+ fee 11) fits free margin but exceeds 20 % x 10000 = 2000
        ({"quantity": D(110), "leverage": D(5)}, RejectCode.POSITION_LIMIT),
        ({"stop_loss": D(101)}, RejectCode.INVALID_STOP_LOSS),  # a long's stop above the price
        ({"take_profit": D(99)}, RejectCode.INVALID_TAKE_PROFIT),
        ({"side": "sell", "stop_loss": D(99)}, RejectCode.INVALID_STOP_LOSS),
        ({"side": "sell", "take_profit": D(101)}, RejectCode.INVALID_TAKE_PROFIT),
        ({"stop_loss": D(-5)}, RejectCode.INVALID_STOP_LOSS),
    ],
)
def test_each_pre_trade_check_rejects_with_a_code_and_changes_nothing(kwargs, code):
    account = Account.new(D(10000))
    order = {
        "symbol": kwargs.pop("symbol", "BTC/USDT"),
        "side": kwargs.pop("side", "buy"),
        "quantity": kwargs.pop("quantity", D(1)),
        "notional_usd": kwargs.pop("notional_usd", None),
        "leverage": kwargs.pop("leverage", D(1)),
        "stop_loss": kwargs.pop("stop_loss", None),
        "take_profit": kwargs.pop("take_profit", None),
    }
    instrument = kwargs.pop("instrument", Instrument(order["symbol"], "crypto"))
    prices = kwargs.pop("prices", {order["symbol"]: D(100)})
    result = engine.place_order(
        account, OrderRequest(**order), rules=LIMITED, instrument=instrument, prices=prices, at=T0, **kwargs
    )
    assert result.rejection is not None
    assert result.rejection.code is code
    assert result.rejection.reason
    assert result.account is account
    assert result.events == ()


def test_margin_check_counts_the_fee():
    rules = replace(FREE, fee_pct=D("0.1"), max_leverage=D(1))
    account = Account.new(D(1000))
    # 10 @ 100: margin 1000 + fee 1 > free 1000
    assert (
        place(account, "X/USDT", "buy", D(10), rules=rules).rejection.code is RejectCode.INSUFFICIENT_MARGIN
    )
    # 9.99 @ 100: margin 999 + fee 0.999 = 999.999 <= 1000
    assert place(account, "X/USDT", "buy", D("9.99"), rules=rules).rejection is None


def test_margin_check_sees_other_positions_losses():
    account = filled(Account.new(D(1000)), ("A/USDT", "buy", 5, 100))  # margin 500
    # A marked at 80: equity 1000 - 100 = 900, free 400; B needs 500
    result = place(account, "B/USDT", "buy", D(5), D(100), prices={"B/USDT": D(100), "A/USDT": D(80)})
    assert result.rejection.code is RejectCode.INSUFFICIENT_MARGIN


def test_reducing_is_allowed_even_without_free_margin():
    account = filled(Account.new(D(1000)), ("A/USDT", "buy", 10, 100))  # all 1000 of margin used
    result = place(account, "A/USDT", "sell", D(4), D(90), leverage=D(1000))
    assert result.rejection is None  # leverage and margin are not checked on a pure reduction
    assert result.account.positions["A/USDT"].quantity == D(6)


def test_flip_is_rejected_whole_when_its_opening_part_fails():
    account = filled(Account.new(D(1000)), ("A/USDT", "buy", 5, 100))
    # close 5 (+0), then open short 20 @ 100 = 2000 margin > free 1000
    result = place(account, "A/USDT", "sell", D(25), D(100))
    assert result.rejection.code is RejectCode.INSUFFICIENT_MARGIN
    assert result.account is account


def test_position_limit_counts_margin_already_in_the_position():
    rules = replace(FREE, max_position_size_pct=D(20))  # 20 % of 10000 = 2000
    account = filled(Account.new(D(10000)), ("A/USDT", "buy", 15, 100), rules=rules)  # margin 1500
    assert place(account, "A/USDT", "buy", D(6), rules=rules).rejection.code is RejectCode.POSITION_LIMIT
    assert place(account, "A/USDT", "buy", D(5), rules=rules).rejection is None  # exactly 2000


# --- exit plan ---


def test_exit_plan_is_set_at_open_and_updated_with_validation():
    account = place(Account.new(D(10000)), "X/USDT", "buy", D(1), stop_loss=D(90), take_profit=D(120)).account
    assert (account.positions["X/USDT"].stop_loss, account.positions["X/USDT"].take_profit) == (D(90), D(120))
    prices = {"X/USDT": D(110)}
    bad = engine.update_exit_plan(account, "X/USDT", stop_loss=D(111), take_profit=None, prices=prices, at=T0)
    assert bad.rejection.code is RejectCode.INVALID_STOP_LOSS
    good = engine.update_exit_plan(
        account, "X/USDT", stop_loss=D(105), take_profit=None, prices=prices, at=T0
    )
    assert (good.account.positions["X/USDT"].stop_loss, good.account.positions["X/USDT"].take_profit) == (
        D(105),
        None,
    )
    missing = engine.update_exit_plan(
        account, "Y/USDT", stop_loss=None, take_profit=None, prices=prices, at=T0
    )
    assert missing.rejection.code is RejectCode.NO_POSITION


@pytest.mark.parametrize(
    ("side", "bar", "reason", "price"),
    [
        # long entry 100, stop 90, target 120
        ("buy", Bar(D(100), D(105), D(89), D(95)), FillReason.STOP_LOSS, D(90)),
        ("buy", Bar(D(85), D(95), D(80), D(90)), FillReason.STOP_LOSS, D(85)),  # gapped below: open
        ("buy", Bar(D(100), D(125), D(99), D(110)), FillReason.TAKE_PROFIT, D(120)),
        ("buy", Bar(D(130), D(135), D(125), D(131)), FillReason.TAKE_PROFIT, D(130)),  # gapped above
        ("buy", Bar(D(100), D(125), D(85), D(100)), FillReason.STOP_LOSS, D(90)),  # both: stop wins
        ("buy", Bar(D(121), D(125), D(85), D(100)), FillReason.TAKE_PROFIT, D(121)),  # opened past target
        ("buy", Bar(D(100), D(119), D(91), D(100)), None, None),
        # short entry 100, stop 110, target 80
        ("sell", Bar(D(100), D(111), D(95), D(105)), FillReason.STOP_LOSS, D(110)),
        ("sell", Bar(D(115), D(118), D(105), D(110)), FillReason.STOP_LOSS, D(115)),
        ("sell", Bar(D(100), D(101), D(79), D(85)), FillReason.TAKE_PROFIT, D(80)),
        ("sell", Bar(D(75), D(90), D(70), D(85)), FillReason.TAKE_PROFIT, D(75)),
        ("sell", Bar(D(100), D(111), D(79), D(100)), FillReason.STOP_LOSS, D(110)),
        ("sell", Bar(D(100), D(109), D(81), D(100)), None, None),
    ],
)
def test_replay_exits_trigger_intrabar(side, bar, reason, price):
    stop, target = (D(90), D(120)) if side == "buy" else (D(110), D(80))
    rules = replace(FREE, fee_pct=D("0.1"), spread_bps=D(10))
    opened = engine.place_order(
        Account.new(D(10000)),
        OrderRequest("X/USDT", side, quantity=D(2), stop_loss=stop, take_profit=target),
        rules=replace(rules, spread_bps=D(0)),
        instrument=Instrument("X/USDT"),
        prices={"X/USDT": D(100)},
        at=T0,
    )
    result = engine.process_bar(opened.account, {"X/USDT": bar}, rules=rules, at=T0)
    if reason is None:
        assert result.events == () and result.account is opened.account
        return
    (fill,) = result.fills
    assert (fill.reason, fill.price) == (reason, price)  # no spread on exits: the price is the execution
    direction = 1 if side == "buy" else -1
    assert fill.realised_pnl == direction * (price - 100) * 2
    assert fill.fee == price * 2 * D("0.001")
    assert result.account.positions == {}
    assert_invariant(result.account, opened.events + result.events)


def test_live_exit_fires_when_the_last_price_crosses():
    account = place(Account.new(D(10000)), "X/USDT", "buy", D(1), stop_loss=D(90)).account
    assert engine.process_price(account, {"X/USDT": D("90.01")}, rules=FREE, at=T0).fills == []
    (fill,) = engine.process_price(account, {"X/USDT": D(89)}, rules=FREE, at=T0).fills
    assert (fill.reason, fill.price, fill.realised_pnl) == (FillReason.STOP_LOSS, D(89), D(-11))


# --- funding and financing ---


def test_funding_moments_lists_the_three_funding_hours_and_financing():
    moments = engine.funding_moments(datetime(2024, 1, 1, 8, tzinfo=UTC), datetime(2024, 1, 2, 8, tzinfo=UTC))
    assert [(m.at.hour, m.kind) for m in moments] == [
        (16, FundingKind.FUNDING),
        (22, FundingKind.FINANCING),
        (0, FundingKind.FUNDING),
        (8, FundingKind.FUNDING),  # the current moment counts, the previous one does not
    ]
    assert (
        engine.funding_moments(
            datetime(2024, 1, 1, 8, 30, tzinfo=UTC), datetime(2024, 1, 1, 15, 59, tzinfo=UTC)
        )
        == []
    )


@pytest.mark.parametrize(
    ("side", "rate", "amount"),
    [
        ("buy", D("0.01"), D("-0.002")),  # REFERENCE: 10 x 2 x 0.0001 = 0.002, longs pay
        ("sell", D("0.01"), D("0.002")),  # shorts receive
        ("buy", D("-0.01"), D("0.002")),  # a negative rate reverses
        ("sell", D("-0.01"), D("-0.002")),
    ],
)
def test_funding_payment_reference_vector(side, rate, amount):
    rules = replace(FREE, funding_rate_pct_8h=rate)
    account = place(Account.new(D(1000)), "X/USDT", side, D(10), D(2), rules=rules).account
    moment = FundingMoment(datetime(2024, 1, 1, 16, tzinfo=UTC), FundingKind.FUNDING)
    result = engine.apply_funding(account, moment, prices={"X/USDT": D(2)}, rules=rules)
    (entry,) = result.ledger
    assert (entry.kind, entry.amount) == (LedgerKind.FUNDING, amount)
    assert result.account.cash == D(1000) + amount
    assert result.account.positions["X/USDT"].funding == amount
    # crypto pays no overnight financing
    financing = FundingMoment(datetime(2024, 1, 1, 22, tzinfo=UTC), FundingKind.FINANCING)
    assert engine.apply_funding(account, financing, prices={"X/USDT": D(2)}, rules=rules).events == ()


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_overnight_financing_reference_vector_is_paid_by_both_sides(side):
    rules = replace(FREE, financing_rate_pct_annual=D("2.98"))
    account = place(Account.new(D(100000)), "SPX500", side, D(6), D(7720), rules=rules).account
    moment = FundingMoment(datetime(2024, 1, 1, 22, tzinfo=UTC), FundingKind.FINANCING)
    result = engine.apply_funding(account, moment, prices={"SPX500": D(7720)}, rules=rules)
    # 6 x 7720 x 2.98 % / 365 = 1380.336 / 365 = 3.78174246575.. -> 3.78174247
    assert [(e.kind, e.amount) for e in result.ledger] == [(LedgerKind.FINANCING, D("-3.78174247"))]
    funding = FundingMoment(datetime(2024, 1, 1, 16, tzinfo=UTC), FundingKind.FUNDING)
    assert engine.apply_funding(account, funding, prices={"SPX500": D(7720)}, rules=rules).events == ()


# --- margin close-out and negative balance protection ---

CLOSE_OUT = Rules(max_leverage=D(10), margin_requirement_pct=D(10), maintenance_margin_pct=D(5))


def two_longs():
    # A: 50 @ 100 at 10x (margin 500); B: 40 @ 100 at 10x (margin 400)
    return filled(
        Account.new(D(1000)), ("A/USDT", "buy", 50, 100, 10), ("B/USDT", "buy", 40, 100, 10), rules=CLOSE_OUT
    )


def test_close_out_closes_the_worst_loser_first_and_stops_when_covered():
    # A 90 (-500), B 98 (-80): equity 420 <= (4500 + 3920) x 5 % = 421
    result = engine.mark(two_longs(), {"A/USDT": D(90), "B/USDT": D(98)}, rules=CLOSE_OUT, at=T0)
    (fill,) = result.fills
    assert (fill.symbol, fill.reason, fill.price, fill.realised_pnl) == (
        "A/USDT",
        FillReason.LIQUIDATION,
        D(90),
        D(-500),
    )
    # then equity 500 - 80 = 420 > 3920 x 5 % = 196: B stays
    assert list(result.account.positions) == ["B/USDT"]
    assert result.metrics.equity == D(420)
    assert not result.liquidated


def test_close_out_continues_until_nothing_is_left():
    # A 90 (-500), B 90 (-400): equity 100 <= 405; after A: 100 <= 180; after B: none left
    result = engine.mark(two_longs(), {"A/USDT": D(90), "B/USDT": D(90)}, rules=CLOSE_OUT, at=T0)
    assert [f.symbol for f in result.fills] == ["A/USDT", "B/USDT"]
    assert result.account.positions == {}
    assert result.account.cash == D(100)
    assert not result.liquidated


def test_close_out_pays_costs_on_liquidation_fills():
    rules = replace(CLOSE_OUT, fee_pct=D("0.1"), spread_bps=D(20))
    account = filled(
        Account.new(D(1000)),
        ("A/USDT", "buy", 50, 100, 10),
        rules=replace(rules, fee_pct=D(0), spread_bps=D(0)),
    )
    # 82: equity 1000 - 900 = 100 <= 4100 x 5 % = 205
    result = engine.mark(account, {"A/USDT": D(82)}, rules=rules, at=T0)
    (fill,) = result.fills
    assert fill.price == D("81.918")  # 82 x (1 - 20/20000)
    assert fill.fee == D("4.0959")  # 50 x 81.918 x 0.1 %
    assert result.account.cash == D("91.8041")  # 1000 + 50 x (81.918 - 100) - 4.0959


def test_mark_does_nothing_above_maintenance():
    account = two_longs()
    result = engine.mark(account, {"A/USDT": D(100), "B/USDT": D(100)}, rules=CLOSE_OUT, at=T0)
    assert result.account is account and result.events == ()
    assert result.metrics.equity == D(1000)
    assert result.metrics.margin_level == D(1000) / D(900)


def test_negative_balance_protection_credits_cash_back_to_zero_and_liquidates():
    account = filled(Account.new(D(1000)), ("A/USDT", "buy", 100, 100, 10), rules=CLOSE_OUT)
    # 85: unrealised -1500, equity -500 <= 8500 x 5 %; close leaves cash -500; NBP credits 500
    result = engine.mark(account, {"A/USDT": D(85)}, rules=CLOSE_OUT, at=T0)
    assert [(e.kind, e.amount) for e in result.ledger] == [
        (LedgerKind.REALISED_PNL, D(-1500)),
        (LedgerKind.NBP_CREDIT, D(500)),
    ]
    assert result.account.cash == D(0)
    assert result.liquidated
    assert_invariant(result.account, list(result.events))


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # long 100 @ 100, cash 1000, r 5 %: (100 x 100 - 1000) / (100 x 0.95) = 94.7368421052631578947..
        ("buy", D("94.7368421052631579")),
        # short: (100 x 100 + 1000) / (100 x 1.05) = 104.761904761904761904..
        ("sell", D("104.7619047619047619")),
    ],
)
def test_liquidation_price_is_where_close_out_fires(side, expected):
    account = filled(Account.new(D(1000)), ("A/USDT", side, 100, 100, 10), rules=CLOSE_OUT)
    price = engine.liquidation_price(account, "A/USDT", {"A/USDT": D(100)}, rules=CLOSE_OUT)
    assert price == expected
    nudge = D("0.0001") if side == "buy" else D("-0.0001")
    assert engine.mark(account, {"A/USDT": price + nudge}, rules=CLOSE_OUT, at=T0).fills == []
    assert engine.mark(account, {"A/USDT": price - nudge}, rules=CLOSE_OUT, at=T0).fills != []


def test_liquidation_price_is_none_when_no_positive_price_fires():
    account = filled(Account.new(D(1000)), ("A/USDT", "buy", 1, 100), rules=CLOSE_OUT)
    # 1000 of cash covers a 100-notional long down to zero
    assert engine.liquidation_price(account, "A/USDT", {"A/USDT": D(100)}, rules=CLOSE_OUT) is None


def test_close_all_realises_everything_at_the_final_mark_with_costs():
    rules = replace(FREE, fee_pct=D("0.1"))
    account = filled(Account.new(D(10000)), ("A/USDT", "buy", 1, 100), ("B/USDT", "sell", 2, 50))
    result = engine.close_all(
        account, {"A/USDT": D(110), "B/USDT": D(60)}, rules=rules, at=T0, reason=FillReason.COMPETITION_END
    )
    assert result.account.positions == {}
    assert {f.symbol: (f.realised_pnl, f.fee, f.reason) for f in result.fills} == {
        "A/USDT": (D(10), D("0.11"), FillReason.COMPETITION_END),  # 1 x (110 - 100); 110 x 0.1 %
        "B/USDT": (D(-20), D("0.12"), FillReason.COMPETITION_END),  # 2 x (50 - 60); 120 x 0.1 %
    }
    assert result.account.cash == D("9989.77")
