"""The services persist exactly what the engine decided, and the ledger always adds up.

The single-account services are thin wrappers over the Book (the one write path); the
Book's round steps have their own tests in test_book.py."""

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction

from competitions.rules import trading_rules
from trading import services
from trading.engine import OrderRequest
from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, Position
from trading.selectors import account_view as trading_account_view
from trading.tests.factories import ActiveCompetitionFactory, TraderFactory

pytestmark = pytest.mark.django_db
T = datetime(2025, 1, 2, 12, tzinfo=UTC)
BTC = "BTC/USDT"
ETH = "ETH/USDT"


@dataclass
class Candle:
    open: D
    high: D
    low: D
    close: D


def trader(**rules):
    participant = TraderFactory(competition=ActiveCompetitionFactory(**rules))
    services.account_open(participant=participant, initial_capital=participant.competition.initial_capital)
    return participant


def rules_of(participant):
    return trading_rules(participant.competition)


def account_view(*, participant, prices):
    competition = participant.competition
    return trading_account_view(
        participant=participant, prices=prices, rules=trading_rules(competition),
        initial_capital=competition.initial_capital,
    )


def process_bars(participant, bars, *, start, prices):
    """Book.process_bars on one account, in its own transaction, as a round runs it."""
    with transaction.atomic():
        book = services.Book(
            competition_id=participant.competition_id, rules=rules_of(participant), participant_ids=[participant.pk]
        )
        book.process_bars(participant_ids=[participant.pk], bars=bars, start=start, prices=prices)
        book.flush()
    return book


def buy(participant, quantity, price, symbol=BTC, side="buy", at=T, **kwargs):
    request_fields = {k: kwargs.pop(k) for k in ("leverage", "stop_loss", "take_profit") if k in kwargs}
    prices = kwargs.pop("prices", {symbol: D(price)})
    return services.order_place(
        participant=participant,
        rules=rules_of(participant),
        order_request=OrderRequest(symbol, side, quantity=D(quantity), **request_fields),
        prices=prices,
        market_time=at,
        **kwargs,
    )


def sell(participant, quantity, price, **kwargs):
    return buy(participant, quantity, price, side="sell", **kwargs)


def check(participant):
    return services.account_check_invariant(account=Account.objects.get(participant=participant))


def test_account_open_takes_the_competitions_capital_once():
    participant = TraderFactory(competition=ActiveCompetitionFactory(initial_capital=D(2500)))
    first = services.account_open(participant=participant, initial_capital=D(2500))
    again = services.account_open(participant=participant, initial_capital=D(9999))
    assert first.pk == again.pk
    assert (first.cash, first.initial_capital) == (D(2500), D(2500))


def test_a_filled_order_writes_order_fill_position_and_fee():
    participant = trader(fee_pct=D("0.1"), spread_bps=D(10), slippage_bps=D(5))
    order = buy(participant, 2, 100, leverage=D(2), stop_loss=D(90), invocation_id=77)
    assert (order.status, order.reject_code, order.invocation_id) == ("filled", "", 77)
    (fill,) = order.fills.all()
    # 100 x (1 + 10/20000 + 5/10000) = 100.1; fee 200.2 x 0.1 % = 0.2002
    assert (fill.price, fill.fee, fill.reason, fill.side) == (D("100.1"), D("0.2002"), "agent", "buy")
    position = Position.objects.get(account__participant=participant, is_open=True)
    assert (position.side, position.quantity, position.entry_price) == ("long", D(2), D("100.1"))
    assert (position.initial_margin, position.leverage, position.stop_loss) == (D("100.1"), D(2), D(90))
    assert fill.position_id == position.pk
    (entry,) = LedgerEntry.objects.filter(account__participant=participant)
    assert (entry.kind, entry.amount, entry.fill_id, entry.position_id) == (
        "fee",
        D("-0.2002"),
        fill.pk,
        position.pk,
    )
    assert Account.objects.get(participant=participant).cash == D("9999.7998")
    assert check(participant) == D("-0.2002")


def test_a_rejected_order_is_recorded_and_changes_nothing():
    participant = trader()
    order = buy(participant, 200, 100)  # 20000 notional at 1x > 10000 free margin
    assert (order.status, order.reject_code) == ("rejected", "insufficient_margin")
    assert "free margin" in order.reject_reason
    assert order.quantity == D(200)
    assert not Fill.objects.exists() and not Position.objects.exists() and not LedgerEntry.objects.exists()
    assert Account.objects.get(participant=participant).cash == D(10000)


def test_orders_are_rejected_when_the_competition_is_paused_or_the_trader_liquidated():
    participant = trader()
    participant.competition.status = "paused"
    participant.competition.save()
    assert buy(participant, 1, 100).reject_code == "competition_inactive"
    participant.competition.status = "active"
    participant.competition.save()
    participant.status = "liquidated"
    participant.save()
    assert buy(participant, 1, 100).reject_code == "participant_inactive"


def test_quantities_round_down_to_the_instruments_precision():
    participant = trader()
    order = buy(participant, "0.123456789", 100)  # BTC/USDT trades in 5 decimal places
    assert order.fills.get().quantity == D("0.12345")
    assert buy(participant, "0.000001", 100).reject_code == "quantity_below_minimum"


def test_absurd_requested_numbers_are_kept_as_null_on_the_rejected_order():
    participant = trader()
    order = buy(participant, "1e40", 100)
    assert (order.status, order.reject_code, order.quantity) == ("rejected", "order_too_large", None)


def test_client_ref_makes_order_place_idempotent():
    participant = trader()
    first = buy(participant, 1, 100, client_ref="round-3-btc")
    again = buy(participant, 1, 100, client_ref="round-3-btc")
    assert first.pk == again.pk
    assert Fill.objects.count() == 1


def test_a_flip_closes_one_row_and_opens_another():
    participant = trader()
    buy(participant, 1, 100)
    order = sell(participant, 3, 110)
    closing, opening = order.fills.order_by("id")
    closed = Position.objects.get(is_open=False)
    opened = Position.objects.get(is_open=True)
    assert (closing.position_id, opening.position_id) == (closed.pk, opened.pk)
    assert (closed.quantity, closed.exit_price, closed.realised_pnl, closed.close_reason) == (
        D(1),
        D(110),
        D(10),
        "agent",
    )
    assert closed.closed_at == T
    assert (opened.side, opened.quantity, opened.entry_price) == ("short", D(2), D(110))
    assert Account.objects.get(participant=participant).cash == D(10010)
    check(participant)


def test_position_close_closes_the_whole_position():
    participant = trader()
    buy(participant, "0.5", 100)
    order = services.position_close(participant=participant, rules=rules_of(participant), symbol=BTC, prices={BTC: D(120)}, market_time=T)
    assert (order.side, order.quantity, order.status) == ("sell", D("0.5"), "filled")
    assert not Position.objects.filter(is_open=True).exists()
    assert Account.objects.get(participant=participant).cash == D(10010)  # 0.5 x 20
    nothing = services.position_close(
        participant=participant, rules=rules_of(participant), symbol=BTC, prices={BTC: D(120)}, market_time=T
    )
    assert (nothing.status, nothing.reject_code) == ("rejected", "no_position")


def test_a_partial_close_never_flips():
    participant = trader()
    buy(participant, 2, 100)
    half = services.position_close(
        participant=participant, rules=rules_of(participant), symbol=BTC, prices={BTC: D(100)}, market_time=T, quantity=D(1)
    )
    assert (half.side, half.quantity) == ("sell", D(1))
    assert Position.objects.get(is_open=True).quantity == D(1)
    services.position_close(
        participant=participant, rules=rules_of(participant), symbol=BTC, prices={BTC: D(100)}, market_time=T, quantity=D(5)
    )
    assert not Position.objects.filter(is_open=True).exists()
    assert list(Position.objects.values_list("side", flat=True)) == ["long"]


def test_sides_may_be_named_long_and_short_like_the_decision_schema():
    participant = trader()
    order = buy(participant, 1, 100, side="short")
    assert (order.status, order.side) == ("filled", "sell")
    assert Position.objects.get().side == "short"


def test_a_participant_without_an_account_sees_a_fresh_view_and_trades_once_it_is_opened():
    participant = TraderFactory(competition=ActiveCompetitionFactory(initial_capital=D(500)))
    view = account_view(participant=participant, prices={})
    assert (view.cash, view.equity, view.free_margin, view.positions) == (D(500), D(500), D(500), ())
    assert not Account.objects.exists()
    # accounts are opened by registration and by the competition's start, never on the fly
    with pytest.raises(Account.DoesNotExist):
        buy(participant, 1, 100)
    assert not Account.objects.exists() and not Order.objects.exists()
    services.account_open(participant=participant, initial_capital=D(500))
    assert buy(participant, 1, 100).status == "filled"


def test_exit_plan_update_is_validated_and_saved():
    participant = trader()
    buy(participant, 1, 100)
    outcome = services.exit_plan_update(
        participant=participant,
        rules=rules_of(participant),
        symbol=BTC,
        stop_loss=D(101),
        take_profit=None,
        prices={BTC: D(100)},
        market_time=T,
    )
    assert outcome.rejection.code == "invalid_stop_loss"
    outcome = services.exit_plan_update(
        participant=participant,
        rules=rules_of(participant),
        symbol=BTC,
        stop_loss=D(95),
        take_profit=D(130),
        prices={BTC: D(100)},
        market_time=T,
    )
    assert outcome.rejection is None
    position = Position.objects.get(is_open=True)
    assert (position.stop_loss, position.take_profit) == (D(95), D(130))


def test_process_bar_fills_a_gapped_stop_at_the_open():
    participant = trader(fee_pct=D("0.1"))
    buy(participant, 1, 100, stop_loss=D(90))
    later = T + timedelta(hours=1)
    process_bars(participant, [(later, {BTC: Candle(D(85), D(88), D(80), D(86))})], start=later, prices={})
    (fill,) = Fill.objects.filter(reason="stop_loss")
    assert (fill.reason, fill.price, fill.realised_pnl, fill.fee) == ("stop_loss", D(85), D(-15), D("0.085"))
    position = Position.objects.get()
    assert (position.is_open, position.close_reason, position.exit_price) == (False, "stop_loss", D(85))
    # 10000 - 0.1 (open fee) - 15 - 0.085
    assert Account.objects.get(participant=participant).cash == D("9984.815")
    check(participant)


def test_funding_is_charged_at_each_moment_crossed():
    participant = trader(funding_rate_pct_8h=D("0.01"))
    buy(participant, "10", 2, symbol=ETH)
    later = datetime(2025, 1, 2, 17, tzinfo=UTC)
    # no bar between the two times: only the funding moments crossed
    process_bars(participant, [(later, {})], start=datetime(2025, 1, 2, 7, tzinfo=UTC), prices={ETH: D(2)})
    entries = list(LedgerEntry.objects.filter(kind="funding").order_by("id"))
    # 08:00 and 16:00: 10 x 2 x 0.01 % = 0.002 each, paid by the long
    assert [(e.kind, e.amount) for e in entries] == [("funding", D("-0.002")), ("funding", D("-0.002"))]
    assert "08:00" in entries[0].description
    assert Position.objects.get().funding == D("-0.004")
    assert check(participant) == D("-0.004")


def test_mark_writes_a_snapshot_and_a_close_out_liquidates_with_nbp():
    participant = trader()
    buy(participant, 10, 1000, leverage=D(10))  # notional 10000, margin 1000
    snapshot, liquidated = services.account_mark(
        participant=participant, rules=rules_of(participant), prices={BTC: D(990)}, market_time=T, round_number=1
    )
    assert not liquidated
    # unrealised -100; maintenance 9900 x 5 % = 495 < equity 9900
    assert (snapshot.equity, snapshot.unrealised_pnl, snapshot.used_margin) == (D(9900), D(-100), D(1000))
    assert (snapshot.free_margin, snapshot.maintenance_requirement, snapshot.round_number) == (
        D(8900),
        D(495),
        1,
    )
    assert snapshot.open_positions == 1
    buy(participant, 80, 1000, symbol=ETH, leverage=D(10), prices={ETH: D(1000), BTC: D(990)})  # margin 8000
    # ETH to 880: -9600; BTC 990: -100; equity 300 <= (9900 + 70400) x 5 % -> close ETH first, then BTC
    snapshot, liquidated = services.account_mark(
        participant=participant, rules=rules_of(participant), prices={BTC: D(990), ETH: D(880)}, market_time=T
    )
    liquidations = list(
        Fill.objects.filter(reason="liquidation").order_by("id").values_list("symbol", flat=True)
    )
    assert liquidations == [ETH, BTC]
    # cash 10000 - 9600 - 100 = 300 > 0: no credit needed, not liquidated
    assert (snapshot.cash, snapshot.equity, snapshot.open_positions) == (D(300), D(300), 0)
    assert not liquidated
    check(participant)


def test_equity_wiped_out_means_nbp_credit_and_liquidated_status():
    participant = trader()
    buy(participant, 100, 100, leverage=D(10))  # margin 1000
    buy(participant, 900, 100, symbol=ETH, leverage=D(10), prices={ETH: D(100), BTC: D(100)})  # margin 9000
    snapshot, liquidated = services.account_mark(
        participant=participant, rules=rules_of(participant), prices={BTC: D(100), ETH: D(85)}, market_time=T
    )
    # ETH -13500: equity -3500 <= 4325; ETH closed, then BTC (flat) as equity stays <= 500;
    # cash -3500 with nothing open: NBP credits 3500
    credit = LedgerEntry.objects.get(kind="nbp_credit")
    assert credit.amount == D(3500)
    assert snapshot.cash == D(0) and snapshot.equity == D(0)
    # trading says so; competitions (the round) records it on the participant
    assert liquidated
    participant.refresh_from_db()
    assert participant.status == "active"
    check(participant)


def test_close_all_realises_at_the_final_mark():
    participant = trader(fee_pct=D("0.1"))
    buy(participant, 1, 100)
    services.account_close_all(participant=participant, rules=rules_of(participant), prices={BTC: D(110)},
                               market_time=T)
    fills = Fill.objects.filter(reason="competition_end")
    assert [(f.reason, f.realised_pnl, f.fee) for f in fills] == [("competition_end", D(10), D("0.11"))]
    assert Account.objects.get(participant=participant).cash == D("10009.79")  # - 0.1 + 10 - 0.11
    check(participant)


def test_account_view_gives_plain_numbers_and_a_liquidation_price():
    participant = trader()
    buy(participant, 10, 1000, leverage=D(10))
    view = account_view(participant=participant, prices={BTC: D(1100)})
    assert (view.cash, view.equity, view.unrealised_pnl) == (D(10000), D(11000), D(1000))
    assert (view.used_margin, view.free_margin, view.margin_level) == (D(1000), D(10000), D(11))
    (line,) = view.positions
    assert (line.side, line.mark_price, line.unrealised_pnl, line.notional) == (
        "long",
        D(1100),
        D(1000),
        D(11000),
    )
    # (10 x 1000 - 10000) / (10 x 0.95) = 0: no positive price liquidates it
    assert line.liquidation_price is None


def test_the_invariant_check_catches_money_that_appears_from_nowhere():
    participant = trader()
    buy(participant, 1, 100)
    Account.objects.filter(participant=participant).update(cash=D("10000.01"))
    with pytest.raises(services.AccountInvariantError):
        check(participant)


def test_database_refuses_two_open_positions_in_one_symbol_and_negative_fees():
    participant = trader()
    buy(participant, 1, 100)
    account = Account.objects.get(participant=participant)
    row = Position.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.create(
            account=account,
            symbol=BTC,
            side="short",
            quantity=D(1),
            entry_price=D(1),
            initial_margin=D(1),
            leverage=D(1),
            opened_at=T,
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Fill.objects.create(
            account=account,
            position=row,
            symbol=BTC,
            side="buy",
            quantity=D(1),
            price=D(1),
            fee=D(-1),
            closes=False,
            reason="agent",
            market_time=T,
        )


def test_a_long_random_session_keeps_the_ledger_exact_and_matches_the_engine():
    """60 random steps through the services; after each, the database agrees with a pure replay."""
    participant = trader(fee_pct=D("0.05"), spread_bps=D(2), slippage_bps=D(1), funding_rate_pct_8h=D("0.01"))
    rng = random.Random(7)
    prices = {BTC: D(30000), ETH: D(2000)}
    now = T
    for _ in range(60):
        step = rng.choice(["order", "order", "order", "move", "time", "bar"])
        if step == "order":
            symbol = rng.choice([BTC, ETH])
            quantity = D(rng.randint(1, 3000)) / (D(10000) if symbol == BTC else D(1000))
            buy(
                participant,
                quantity,
                prices[symbol],
                symbol=symbol,
                side=rng.choice(["buy", "sell"]),
                leverage=D(rng.randint(1, 10)),
                prices=dict(prices),
                at=now,
            )
        elif step == "move":
            prices = {
                s: (p * D(rng.randint(900, 1100)) / 1000).quantize(D("0.01")) for s, p in prices.items()
            }
        elif step == "bar":
            open_ = prices[BTC]
            process_bars(participant, [(now, {BTC: Candle(open_, open_ * D("1.02"), open_ * D("0.98"), open_)})],
                         start=now, prices=prices)
        else:
            later = now + timedelta(hours=rng.randint(1, 12))
            process_bars(participant, [(later, {})], start=now, prices=prices)
            now = later
        services.account_mark(participant=participant, rules=rules_of(participant), prices=prices, market_time=now)
        check(participant)
    assert Order.objects.filter(status="filled").count() > 5
    assert EquitySnapshot.objects.count() == 60


def test_market_hours_come_from_marketdata_unless_the_caller_says():
    participant = trader(market_hours_only=True)
    saturday = datetime(2025, 1, 4, 15, tzinfo=UTC)  # NYSE closed
    tuesday = datetime(2025, 1, 7, 15, tzinfo=UTC)  # 10:00 in New York
    assert buy(participant, 1, 5000, symbol="US500", at=saturday).reject_code == "market_closed"
    assert buy(participant, 1, 5000, symbol="US500", at=tuesday).status == "filled"
    # crypto trades around the clock
    assert (
        buy(participant, "0.01", 30000, at=saturday, prices={BTC: D(30000), "US500": D(5000)}).status
        == "filled"
    )
    # an explicit answer from the round's price source wins
    closed = buy(participant, 1, 5000, symbol="US500", at=tuesday, is_market_open=lambda symbol: False)
    assert closed.reject_code == "market_closed"


def test_asset_class_and_symbol_lists_come_from_the_competition():
    participant = trader(symbols=[], allowed_asset_classes=["crypto"])
    assert buy(participant, 1, 1, symbol="EUR/USD").reject_code == "asset_class_not_allowed"
    assert buy(participant, 1, 1, symbol="SOL/USDT").status == "filled"  # empty symbol list: any of the class
    listed = trader(symbols=[BTC])
    assert buy(listed, 1, 1, symbol="SOL/USDT").reject_code == "symbol_not_allowed"


def test_pepe_sized_prices_keep_every_digit():
    participant = trader(symbols=["PEPE/USDT"], fee_pct=D("0.05"), spread_bps=D(2), slippage_bps=D(1))
    pepe = "PEPE/USDT"
    order = services.order_place(
        participant=participant,
        rules=rules_of(participant),
        order_request=OrderRequest(pepe, "buy", notional_usd=D(1000)),
        prices={pepe: D("0.00001234")},
        market_time=T,
    )
    fill = order.fills.get()
    # 1000 / 0.00001234 = 81,037,277.147.. -> whole units (PEPE's step is 1)
    assert fill.quantity == D(81037277)
    # 0.00001234 x 1.0002 = 0.000012342468
    assert fill.price == D("0.000012342468")
    # 81037277 x 0.000012342468 = 1000.199998179636; x 0.05 % = 0.50009999909 -> 0.50010000
    assert fill.fee == D("0.50010000")
    assert Position.objects.get().entry_price == D("0.000012342468")
    check(participant)
