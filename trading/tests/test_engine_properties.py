"""Hypothesis properties of the engine over random sequences of orders, prices and time."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import engine
from trading.engine import Account, Bar, FillReason, Instrument, LedgerEvent, OrderRequest, Rules

SYMBOLS = ("A/USDT", "B/USDT", "C500")
INSTRUMENTS = {
    "A/USDT": Instrument("A/USDT", "crypto", D("0.001")),
    "B/USDT": Instrument("B/USDT", "crypto"),
    "C500": Instrument("C500", "indices", D("0.1")),
}
T0 = datetime(2024, 1, 1, tzinfo=UTC)

prices_st = st.decimals(min_value=D("0.01"), max_value=D(1000), places=4)
price_map_st = st.fixed_dictionaries({symbol: prices_st for symbol in SYMBOLS})
order_st = st.tuples(
    st.just("order"),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["buy", "sell"]),
    st.decimals(min_value=D("0.001"), max_value=D(50), places=3),
    st.decimals(min_value=D(1), max_value=D(20), places=1),
)
move_st = st.tuples(
    st.just("move"),
    st.fixed_dictionaries({symbol: st.integers(min_value=-600, max_value=600) for symbol in SYMBOLS}),
)
# moves relative to the current price, in per mille, so exits and gaps actually happen
move_pm_st = st.integers(min_value=-150, max_value=150)
bar_st = st.tuples(st.just("bar"), st.sampled_from(SYMBOLS), move_pm_st, move_pm_st, move_pm_st)
exit_st = st.tuples(
    st.just("exit"),
    st.sampled_from(SYMBOLS),
    st.integers(min_value=1, max_value=100),
    st.integers(min_value=1, max_value=100),
)
funding_st = st.tuples(st.just("time"), st.integers(min_value=1, max_value=30))
# a crash or a squeeze of every price at once, so that close-outs and NBP are exercised
shock_st = st.tuples(st.just("shock"), st.sampled_from([D("0.3"), D("0.6"), D("1.5"), D(3)]))
step_st = st.one_of(order_st, move_st, bar_st, exit_st, funding_st, shock_st)

rules_st = st.builds(
    Rules,
    max_leverage=st.just(D(20)),
    margin_requirement_pct=st.just(D(5)),
    maintenance_margin_pct=st.sampled_from([D(0), D("2.5"), D(5), D(50)]),
    max_position_size_pct=st.sampled_from([D(20), D(100)]),
    fee_pct=st.sampled_from([D(0), D("0.05"), D("0.1")]),
    spread_bps=st.sampled_from([D(0), D(3), D(10)]),
    slippage_bps=st.sampled_from([D(0), D(2)]),
    funding_rate_pct_8h=st.sampled_from([D(0), D("0.01"), D("-0.03")]),
    financing_rate_pct_annual=st.sampled_from([D(0), D("2.98")]),
)


def run(rules, steps, start_prices):
    """Drive the engine like a round loop would; yield (account, prices, all events, last step's events)."""
    account = Account.new(D(1000))  # small next to the order sizes: leverage and close-outs matter
    prices = dict(start_prices)
    now = T0
    history = []
    for step in steps:
        kind = step[0]
        if kind == "order":
            _, symbol, side, quantity, leverage = step
            result = engine.place_order(
                account,
                OrderRequest(symbol, side, quantity=quantity, leverage=leverage),
                rules=rules,
                instrument=INSTRUMENTS[symbol],
                prices=prices,
                at=now,
            )
            events = result.events
            account = result.account
        elif kind == "move":
            # each price moves by -60 % .. +60 %, quantized like a feed would
            prices = {
                symbol: max(D("0.0001"), (price * (1000 + step[1][symbol]) / 1000).quantize(D("0.0001")))
                for symbol, price in prices.items()
            }
            events = ()
        elif kind == "shock":
            prices = {symbol: price * step[1] for symbol, price in prices.items()}
            events = ()
        elif kind == "bar":
            _, symbol, a, b, c = step
            price = prices[symbol]
            open_, close, extreme = (price * (1000 + pm) / 1000 for pm in (a, b, c))
            bar = Bar(
                open=open_, high=max(open_, close, extreme), low=min(open_, close, extreme), close=close
            )
            result = engine.process_bar(account, {symbol: bar}, rules=rules, at=now)
            prices[symbol] = close
            account, events = result.account, result.events
        elif kind == "exit":
            # stop and target a few per mille either side of the mark, on the position's side
            _, symbol, stop_pm, target_pm = step
            price = prices[symbol]
            below, above = price * (1000 - stop_pm) / 1000, price * (1000 + target_pm) / 1000
            position = account.positions.get(symbol)
            is_short = position is not None and position.side is engine.PositionSide.SHORT
            result = engine.update_exit_plan(
                account,
                symbol,
                stop_loss=above if is_short else below,
                take_profit=below if is_short else above,
                prices=prices,
                at=now,
            )
            account, events = result.account, result.events
        else:
            later = now + timedelta(hours=step[1])
            events = []
            for moment in engine.funding_moments(now, later):
                result = engine.apply_funding(account, moment, prices=prices, rules=rules)
                account = result.account
                events.extend(result.events)
            now = later
        marked = engine.mark(account, prices, rules=rules, at=now)
        account = marked.account
        events = tuple(events) + marked.events
        history.extend(events)
        yield account, prices, history, events, marked


@settings(max_examples=300, deadline=None)
@given(rules=rules_st, steps=st.lists(step_st, min_size=5, max_size=40), start=price_map_st)
def test_money_is_conserved_and_protected_over_any_sequence(rules, steps, start):
    for account, prices, history, events, marked in run(rules, steps, start):
        # the ledger invariant: cash == initial capital + sum of every cash movement
        assert account.cash == account.initial_capital + engine.ledger_total(history)
        # equity = cash + unrealised, recomputed independently of engine.metrics
        unrealised = sum(
            (
                p.quantity * (prices[p.symbol] - p.entry_price) * (1 if p.side == "long" else -1)
                for p in account.positions.values()
            ),
            D(0),
        )
        assert marked.metrics.equity == account.cash + unrealised
        # no negative cash once nothing is open (negative balance protection)
        if not account.positions:
            assert account.cash >= 0
        for event in events:
            if isinstance(event, engine.Fill | engine.LedgerEvent):
                note(f"{type(event).__name__}: {getattr(event, 'reason', getattr(event, 'kind', ''))}")
            if isinstance(event, engine.Fill):
                assert event.fee >= 0
                assert event.quantity > 0
                assert event.price > 0
        for position in account.positions.values():
            assert position.quantity > 0 and position.initial_margin >= 0
        # after a mark, either the account is covered or there is nothing left to close
        assert not account.positions or marked.metrics.equity > marked.metrics.maintenance_requirement


@settings(max_examples=150, deadline=None)
@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from(SYMBOLS),
            st.sampled_from(["buy", "sell"]),
            st.decimals(min_value=D("0.001"), max_value=D(20), places=3),
            prices_st,
        ),
        max_size=20,
    )
)
def test_with_zero_costs_closing_at_entry_returns_exactly_the_capital_plus_cash_flows(orders):
    """Zero costs: after closing everything, cash = capital + sum(sell notional) - sum(buy notional).

    Opening and adding only (no reductions), closing at the entry price returns exactly the capital.
    """
    rules = Rules(max_leverage=D(100), margin_requirement_pct=D(1), maintenance_margin_pct=D(0))
    account = Account.new(D(10000000))
    history = []
    flows = D(0)
    only_adds = True
    for symbol, side, quantity, price in orders:
        prices = {p.symbol: p.entry_price for p in account.positions.values()} | {symbol: price}
        existing = account.positions.get(symbol)
        result = engine.place_order(
            account,
            OrderRequest(symbol, side, quantity=quantity, leverage=D(100)),
            rules=rules,
            instrument=Instrument(symbol),
            prices=prices,
            at=T0,
        )
        assert result.rejection is None, result.rejection
        if existing is not None and existing.side != ("long" if side == "buy" else "short"):
            only_adds = False
        for fill in result.fills:
            flows += fill.quantity * fill.price * (1 if fill.side == "sell" else -1)
        account = result.account
        history.extend(result.events)
    entries = {p.symbol: p.entry_price for p in account.positions.values()}
    result = engine.close_all(account, entries, rules=rules, at=T0, reason=FillReason.COMPETITION_END)
    for fill in result.fills:
        flows += fill.quantity * fill.price * (1 if fill.side == "sell" else -1)
        assert fill.realised_pnl == 0
    history.extend(result.events)
    final = result.account
    assert final.positions == {}
    assert final.cash == final.initial_capital + engine.ledger_total(history)
    if only_adds:
        assert final.cash == final.initial_capital
    # cash-flow accounting agrees with PnL accounting up to rounding of entries and cents
    fills = sum(1 for e in history if isinstance(e, engine.Fill))
    assert abs(final.cash - final.initial_capital - flows) <= D("1e-8") * (fills + 1)
    assert not any(isinstance(e, LedgerEvent) and e.kind == "fee" for e in history)


@settings(max_examples=200, deadline=None)
@given(
    positions=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(min_value=1, max_value=10)),
        min_size=1,
        max_size=3,
    ),
    shocks=st.tuples(*(st.integers(min_value=-700, max_value=700) for _ in SYMBOLS)),
    maintenance=st.sampled_from([D(1), D(5), D(25)]),
)
def test_close_out_takes_the_worst_loser_first_and_stops_once_covered(positions, shocks, maintenance):
    rules = Rules(
        max_leverage=D(10),
        margin_requirement_pct=D(10),
        maintenance_margin_pct=maintenance,
        fee_pct=D("0.05"),
    )
    account = Account.new(D(1000))
    prices = dict.fromkeys(SYMBOLS, D(100))
    for symbol, (side, leverage) in zip(SYMBOLS, positions, strict=False):
        result = engine.place_order(
            account,
            OrderRequest(symbol, side, quantity=D(30), leverage=D(leverage)),
            rules=rules,
            instrument=Instrument(symbol),
            prices=prices,
            at=T0,
        )
        account = result.account
    shocked = {symbol: D(100) * (1000 + pm) / 1000 for symbol, pm in zip(SYMBOLS, shocks, strict=True)}
    before = {p.symbol: p.unrealised_pnl(shocked[p.symbol]) for p in account.positions.values()}
    marked = engine.mark(account, shocked, rules=rules, at=T0)
    closed = [fill.symbol for fill in marked.fills]
    assert all(fill.reason is FillReason.LIQUIDATION for fill in marked.fills)
    # closed in order of unrealised loss, and every closed loss is at least as bad as any survivor's
    losses = [before[symbol] for symbol in closed]
    assert losses == sorted(losses)
    survivors = [before[p.symbol] for p in marked.account.positions.values()]
    assert not closed or not survivors or max(losses) <= min(survivors)
    metrics = marked.metrics
    assert not marked.account.positions or metrics.equity > metrics.maintenance_requirement
    assert marked.account.cash >= 0 or marked.account.positions
    assert marked.liquidated == (metrics.equity <= 0)
    assert marked.account.cash == account.cash + engine.ledger_total(marked.events)
