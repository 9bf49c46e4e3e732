"""The Book: a competition's accounts locked and loaded once, the round's steps in memory,
written in a few statements; the one path by which the ledger changes."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction

from competitions.rules import trading_rules
from marketdata.snapshot import Candle
from trading import engine, services
from trading.models import EquitySnapshot, Fill, LedgerEntry, Order, Position
from trading.selectors import account_view, account_views
from trading.tests.factories import START, ActiveCompetitionFactory, TraderFactory

pytestmark = pytest.mark.django_db

PRICES = {"BTC/USDT": Decimal(50000), "ETH/USDT": Decimal(2000)}


def _book(competition):
    """Three traders: a long with a stop, a short with a take-profit, one flat."""
    traders = [TraderFactory(competition=competition, name=f"T{n}") for n in range(3)]
    for trader in traders:  # as competition_start does
        services.account_open(participant=trader, initial_capital=competition.initial_capital)
    rules = trading_rules(competition)
    services.order_place(
        participant=traders[0], rules=rules, prices=PRICES, market_time=START,
        order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal("0.5"), leverage=Decimal(5),
                                          stop_loss=Decimal(49500)),
    )
    services.order_place(
        participant=traders[1], rules=rules, prices=PRICES, market_time=START,
        order_request=engine.OrderRequest("ETH/USDT", "sell", quantity=Decimal(5), leverage=Decimal(2),
                                          take_profit=Decimal(1950)),
    )
    return traders


def _bar(open_, high, low, close, at):
    return Candle(at, Decimal(open_), Decimal(high), Decimal(low), Decimal(close), Decimal(1))


BARS = [
    (START + timedelta(hours=1), {"BTC/USDT": _bar(50000, 50100, 49800, 49900, START),
                                  "ETH/USDT": _bar(2000, 2010, 1990, 1995, START)}),
    (START + timedelta(hours=8), {"BTC/USDT": _bar(49900, 49950, 49400, 49450, START),   # stop at 49500
                                  "ETH/USDT": _bar(1995, 1996, 1940, 1945, START)}),     # take-profit at 1950
    (START + timedelta(hours=9), {"BTC/USDT": _bar(49450, 49500, 49300, 49400, START),
                                  "ETH/USDT": _bar(1945, 1950, 1930, 1940, START)}),
]


def _open_book(competition, participant_ids=None):
    return services.Book(competition_id=competition.pk, rules=trading_rules(competition),
                         participant_ids=participant_ids)


def test_process_bars_fires_stops_and_take_profits_intrabar_and_charges_funding_bar_by_bar():
    competition = ActiveCompetitionFactory(fee_pct=Decimal("0.05"), funding_rate_pct_8h=Decimal("0.01"))
    traders = _book(competition)
    final_prices = {symbol: bar.close for symbol, bar in BARS[-1][1].items()}
    with transaction.atomic():
        book = _open_book(competition)
        book.process_bars(participant_ids=[t.pk for t in traders], bars=BARS, start=START, prices=final_prices)
        book.flush()
    fills = {(f.symbol, f.reason, f.price) for f in Fill.objects.exclude(reason="agent")}
    assert fills == {("BTC/USDT", "stop_loss", Decimal(49500)), ("ETH/USDT", "take_profit", Decimal(1950))}
    # the 08:00 funding moment falls in the second bar, after both exits: nothing is open to pay it
    assert not LedgerEntry.objects.filter(kind="funding").exists()
    assert not Position.objects.filter(is_open=True).exists()
    for trader in traders:
        services.account_check_invariant(account=trader.account)


def test_mark_skips_excluded_participants_and_returns_one_unsaved_snapshot_each():
    competition = ActiveCompetitionFactory()
    traders = _book(competition)
    with transaction.atomic():
        book = _open_book(competition)
        snapshots = book.mark(prices=PRICES, market_time=START, round_number=0,
                              exclude_participant_ids=[traders[2].pk])
        book.flush()
    assert sorted(s.account.participant_id for s in snapshots) == sorted(t.pk for t in traders[:2])
    assert all(s.pk is None for s in snapshots) and not EquitySnapshot.objects.exists()


def test_a_close_out_that_leaves_no_equity_is_reported_and_the_participant_trades_no_more():
    competition = ActiveCompetitionFactory()
    gambler = TraderFactory(competition=competition, name="G")
    services.account_open(participant=gambler, initial_capital=competition.initial_capital)
    services.order_place(
        participant=gambler, rules=trading_rules(competition), prices={"BTC/USDT": Decimal(100)}, market_time=START,
        order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal(150), leverage=Decimal(2)),
    )
    with transaction.atomic():
        book = _open_book(competition)
        book.mark(prices={"BTC/USDT": Decimal(1)}, market_time=START)
        assert book.liquidated == [gambler.pk]
        (result,) = book.execute(
            [services.RoundAction(participant_id=gambler.pk, kind="open", symbol="BTC/USDT", client_ref="x",
                                  order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal(1)))],
            prices={"BTC/USDT": Decimal(1)}, market_time=START,
        )
        book.flush()
    assert result.order is None and result.rejection.code == "participant_inactive"
    assert "liquidated" in result.rejection.reason
    gambler.refresh_from_db()
    assert gambler.status == "active"  # trading never writes it: the round records the liquidation


def test_book_views_and_account_views_equal_account_view_for_every_participant(django_assert_max_num_queries):
    competition = ActiveCompetitionFactory()
    traders = _book(competition)
    rules = trading_rules(competition)
    with django_assert_max_num_queries(3):
        views = account_views(competition_id=competition.pk, prices=PRICES, rules=rules)
    one_by_one = {
        t.pk: account_view(participant=t, prices=PRICES, rules=rules, initial_capital=competition.initial_capital)
        for t in traders
    }
    assert views == one_by_one
    with transaction.atomic():
        assert _open_book(competition).views(prices=PRICES) == one_by_one


def _execute(competition, actions, prices=PRICES, at=START):
    with transaction.atomic():
        book = _open_book(competition, sorted({action.participant_id for action in actions}))
        results = book.execute(actions, prices=prices, market_time=at)
        book.flush()
    return results


def test_execute_again_returns_the_orders_already_made():
    traders = _book(ActiveCompetitionFactory())
    competition = traders[0].competition
    actions = [
        services.RoundAction(participant_id=traders[2].pk, kind="open", symbol="BTC/USDT", client_ref="inv9:0",
                             order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal("0.1"))),
        services.RoundAction(participant_id=traders[0].pk, kind="close", symbol="BTC/USDT", client_ref="inv8:0"),
    ]
    first = _execute(competition, actions)
    counts = (Fill.objects.count(), LedgerEntry.objects.count(), Order.objects.count())
    again = _execute(competition, actions)
    assert [r.order.pk for r in again] == [r.order.pk for r in first]
    assert [[f.pk for f in r.fills] for r in again] == [[f.pk for f in r.fills] for r in first]
    assert (Fill.objects.count(), LedgerEntry.objects.count(), Order.objects.count()) == counts


def test_execute_rejects_an_inactive_participant_without_an_order():
    traders = _book(ActiveCompetitionFactory())
    traders[2].status = "disqualified"
    traders[2].save()
    orders = Order.objects.count()
    (result,) = _execute(traders[0].competition, [
        services.RoundAction(participant_id=traders[2].pk, kind="open", symbol="BTC/USDT", client_ref="x",
                             order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal(1)))
    ])
    assert result.order is None and result.rejection.code == "participant_inactive"
    assert Order.objects.count() == orders


def test_execute_refuses_a_participant_without_an_account():
    competition = ActiveCompetitionFactory()
    stranger = TraderFactory(competition=competition, name="S")  # never registered through the services
    (result,) = _execute(competition, [
        services.RoundAction(participant_id=stranger.pk, kind="open", symbol="BTC/USDT", client_ref="x",
                             order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal(1)))
    ])
    assert result.order is None and result.rejection.code == "no_account"
    assert not Order.objects.exists()


def test_execute_writes_in_a_number_of_statements_that_does_not_grow_with_the_actions(
    django_assert_max_num_queries,
):
    traders = _book(ActiveCompetitionFactory())
    competition = traders[0].competition
    actions = [
        services.RoundAction(participant_id=trader.pk, kind="open", symbol=symbol, client_ref=f"r{n}:{symbol}",
                             order_request=engine.OrderRequest(symbol, "buy", notional_usd=Decimal(500)))
        for n, trader in enumerate(traders) for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    # reads (accounts, open rows, prior orders, instruments) + bulk inserts + updates of the
    # two existing positions and the accounts' cash, inside one transaction
    with django_assert_max_num_queries(20):
        results = _execute(competition, actions)
    assert [r.order.status for r in results] == ["filled"] * 6


def test_close_all_closes_every_position_at_its_mark_with_costs():
    competition = ActiveCompetitionFactory(fee_pct=Decimal("0.05"), spread_bps=Decimal(4))
    traders = _book(competition)
    later = START + timedelta(hours=3)
    prices = {"BTC/USDT": Decimal(50500), "ETH/USDT": Decimal(1990)}
    with transaction.atomic():
        book = _open_book(competition)
        book.close_all(prices=prices, market_time=later)
        book.flush()
    closes = Fill.objects.filter(reason="competition_end").order_by("symbol")
    assert [(f.symbol, f.side) for f in closes] == [("BTC/USDT", "sell"), ("ETH/USDT", "buy")]
    assert all(f.fee > 0 for f in closes)
    assert not Position.objects.filter(is_open=True).exists()
    for trader in traders:
        services.account_check_invariant(account=trader.account)


@pytest.mark.django_db(transaction=True)
def test_a_book_refuses_to_lock_outside_a_transaction():
    competition = ActiveCompetitionFactory()
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        _open_book(competition)
