"""The round's batched services give exactly what the per-participant services give."""

from datetime import timedelta
from decimal import Decimal

import pytest

from marketdata.snapshot import Candle
from trading import engine, services
from trading.models import EquitySnapshot, Fill, LedgerEntry, Position
from trading.tests.factories import START, ActiveCompetitionFactory, TraderFactory

pytestmark = pytest.mark.django_db

PRICES = {"BTC/USDT": Decimal(50000), "ETH/USDT": Decimal(2000)}


def _book(competition):
    """Three traders: a long with a stop, a short with a take-profit, one flat."""
    traders = [TraderFactory(competition=competition, name=f"T{n}") for n in range(3)]
    for trader in traders:  # as competition_start does
        services.account_open(participant=trader)
    services.order_place(
        participant=traders[0], prices=PRICES, market_time=START,
        order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal("0.5"), leverage=Decimal(5),
                                          stop_loss=Decimal(49500)),
    )
    services.order_place(
        participant=traders[1], prices=PRICES, market_time=START,
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


def _outcome(traders):
    rows = []
    for trader in traders:
        account = trader.account
        account.refresh_from_db()
        rows.append((
            account.cash,
            [(f.symbol, f.side, f.quantity, f.price, f.fee, f.realised_pnl, f.reason, f.market_time)
             for f in Fill.objects.filter(account=account).order_by("id")],
            [(e.kind, e.amount, e.market_time) for e in LedgerEntry.objects.filter(account=account).order_by("id")],
            [(p.symbol, p.is_open, p.quantity, p.realised_pnl, p.funding, p.close_reason)
             for p in Position.objects.filter(account=account).order_by("id")],
        ))
        services.account_check_invariant(account=account)
    return rows


@pytest.mark.parametrize("costs", [{}, {"fee_pct": Decimal("0.05"), "funding_rate_pct_8h": Decimal("0.01")}])
def test_batched_bars_and_mark_match_the_per_participant_services(costs):
    one_by_one = _book(ActiveCompetitionFactory(**costs))
    batched = _book(ActiveCompetitionFactory(**costs))
    end = BARS[-1][0]

    previous = START
    for close_time, bars in BARS:
        closes = {symbol: bar.close for symbol, bar in bars.items()}
        for trader in one_by_one:
            services.account_process_bar(participant=trader, bars=bars, market_time=close_time)
            services.account_apply_funding(participant=trader, previous_time=previous, market_time=close_time,
                                           prices=closes)
        previous = close_time
    final_prices = {symbol: bar.close for symbol, bar in BARS[-1][1].items()}
    for trader in one_by_one:
        services.account_mark(participant=trader, prices=final_prices, market_time=end, round_number=1)

    services.accounts_process_bars(
        competition=batched[0].competition, participant_ids=[t.pk for t in batched], bars=BARS, start=START,
        prices=final_prices,
    )
    services.accounts_mark(competition=batched[0].competition, prices=final_prices, market_time=end, round_number=1)

    assert _outcome(batched) == _outcome(one_by_one)
    reasons = [f.reason for f in Fill.objects.filter(account__participant__in=batched).order_by("id")]
    assert reasons.count("stop_loss") == 1 and reasons.count("take_profit") == 1
    equities = lambda traders: [  # noqa: E731
        EquitySnapshot.objects.get(account__participant=t, round_number=1).equity for t in traders
    ]
    assert equities(batched) == equities(one_by_one)


def test_accounts_mark_skips_excluded_participants_and_writes_one_snapshot_each():
    traders = _book(ActiveCompetitionFactory())
    snapshots = services.accounts_mark(
        competition=traders[0].competition, prices=PRICES, market_time=START, round_number=0,
        exclude_participant_ids=[traders[2].pk],
    )
    assert sorted(s.account.participant_id for s in snapshots) == sorted(t.pk for t in traders[:2])
    assert EquitySnapshot.objects.count() == 2


def test_account_views_equal_account_view_for_every_participant(django_assert_max_num_queries):
    from trading.selectors import account_view, account_views

    traders = _book(ActiveCompetitionFactory())
    with django_assert_max_num_queries(3):
        views = account_views(competition=traders[0].competition, prices=PRICES)
    assert views == {t.pk: account_view(participant=t, prices=PRICES) for t in traders}


def _random_actions(rng, traders, count):
    """Opens, adds, flips, partial and full closes, closes of nothing, exit plans, bad sizes."""
    symbols = ["BTC/USDT", "ETH/USDT", "DOGE/USDT"]  # DOGE is not traded: rejected
    actions = []
    for index in range(count):
        trader = rng.choice(traders)
        symbol = rng.choice(symbols[:2] if rng.random() < 0.9 else symbols)
        kind = rng.choice(["open", "open", "open", "close", "close", "update_exit"])
        common = {"participant_id": trader.pk, "symbol": symbol, "client_ref": f"a{index}", "invocation_id": index}
        if kind == "open":
            price = PRICES.get(symbol, Decimal(1))
            notional = Decimal(rng.choice([100, 1000, 3000, 20000, 10**9]))  # the last is absurd
            actions.append(services.RoundAction(kind="open", order_request=engine.OrderRequest(
                symbol, rng.choice(["buy", "sell"]), notional_usd=notional, leverage=Decimal(rng.choice([1, 2, 5])),
                stop_loss=price * Decimal("0.9") if rng.random() < 0.3 else None,
            ), **common))
        elif kind == "close":
            quantity = None if rng.random() < 0.5 else Decimal(rng.choice(["0.01", "1", "100"]))
            actions.append(services.RoundAction(kind="close", quantity=quantity, **common))
        else:
            price = PRICES.get(symbol, Decimal(1))
            actions.append(services.RoundAction(
                kind="update_exit", stop_loss=price * Decimal(rng.choice(["0.8", "1.2"])), take_profit=None, **common
            ))
    return actions


def _one_by_one(action, prices, at):
    """What the round did before actions_execute: the single-order services, one call each."""
    from competitions.models import Participant

    participant = Participant.objects.get(pk=action.participant_id)
    if participant.status != Participant.Status.ACTIVE:
        return ("rejected", "participant_inactive")
    if action.kind == "open":
        order = services.order_place(participant=participant, order_request=action.order_request, prices=prices,
                                     market_time=at, client_ref=action.client_ref, invocation_id=action.invocation_id)
        return (order.status, order.reject_code)
    if action.kind == "close":
        order = services.position_close(participant=participant, symbol=action.symbol, quantity=action.quantity,
                                        prices=prices, market_time=at, client_ref=action.client_ref,
                                        invocation_id=action.invocation_id)
        return (order.status, order.reject_code)
    outcome = services.exit_plan_update(participant=participant, symbol=action.symbol, stop_loss=action.stop_loss,
                                        take_profit=action.take_profit, prices=prices, market_time=at)
    return ("rejected", outcome.rejection.code) if outcome.rejection else ("applied", "")


def _statuses(results):
    out = []
    for result in results:
        if result.order is not None:
            out.append((result.order.status, result.order.reject_code))
        else:
            out.append(("rejected", result.rejection.code) if result.rejection else ("applied", ""))
    return out


def _for_traders(actions, traders_from, traders_to):
    mapping = {a.pk: b.pk for a, b in zip(traders_from, traders_to, strict=True)}
    from dataclasses import replace

    return [replace(action, participant_id=mapping[action.participant_id]) for action in actions]


@pytest.mark.parametrize("seed", range(6))
def test_actions_execute_decides_exactly_as_the_single_order_services(seed):
    import random

    costs = {"fee_pct": Decimal("0.05"), "spread_bps": Decimal(4), "max_position_size_pct": Decimal(50)}
    one_by_one = _book(ActiveCompetitionFactory(**costs))
    batched = _book(ActiveCompetitionFactory(**costs))
    rng = random.Random(seed)
    actions = _random_actions(rng, batched, 40)
    at = START + timedelta(hours=1)

    expected = [_one_by_one(action, PRICES, at) for action in _for_traders(actions, batched, one_by_one)]
    results = services.actions_execute(competition=batched[0].competition, actions=actions, prices=PRICES,
                                       market_time=at)

    assert _statuses(results) == expected
    assert len({status for status, _ in expected}) > 1  # the sequence both fills and rejects
    assert _outcome(batched) == _outcome(one_by_one)
    for result in results:
        if result.order is not None:
            assert result.order.pk is not None
            assert [f.pk for f in result.fills] == list(result.order.fills.order_by("id").values_list("pk", flat=True))


def test_actions_execute_again_returns_the_orders_already_made():
    traders = _book(ActiveCompetitionFactory())
    competition = traders[0].competition
    actions = [
        services.RoundAction(participant_id=traders[2].pk, kind="open", symbol="BTC/USDT", client_ref="inv9:0",
                             order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal("0.1"))),
        services.RoundAction(participant_id=traders[0].pk, kind="close", symbol="BTC/USDT", client_ref="inv8:0"),
    ]
    first = services.actions_execute(competition=competition, actions=actions, prices=PRICES, market_time=START)
    counts = (Fill.objects.count(), LedgerEntry.objects.count())
    again = services.actions_execute(competition=competition, actions=actions, prices=PRICES, market_time=START)
    assert [r.order.pk for r in again] == [r.order.pk for r in first]
    assert [[f.pk for f in r.fills] for r in again] == [[f.pk for f in r.fills] for r in first]
    assert (Fill.objects.count(), LedgerEntry.objects.count()) == counts


def test_actions_execute_rejects_an_inactive_participant_without_an_order():
    traders = _book(ActiveCompetitionFactory())
    traders[2].status = "disqualified"
    traders[2].save()
    (result,) = services.actions_execute(
        competition=traders[0].competition, prices=PRICES, market_time=START,
        actions=[services.RoundAction(participant_id=traders[2].pk, kind="open", symbol="BTC/USDT", client_ref="x",
                                      order_request=engine.OrderRequest("BTC/USDT", "buy", quantity=Decimal(1)))],
    )
    assert result.order is None and result.rejection.code == "participant_inactive"


def test_actions_execute_writes_in_a_number_of_statements_that_does_not_grow_with_the_actions(
    django_assert_max_num_queries,
):
    traders = _book(ActiveCompetitionFactory())
    competition = traders[0].competition
    actions = [
        services.RoundAction(participant_id=trader.pk, kind="open", symbol=symbol, client_ref=f"r{n}:{symbol}",
                             order_request=engine.OrderRequest(symbol, "buy", notional_usd=Decimal(500)))
        for n, trader in enumerate(traders) for symbol in ("BTC/USDT", "ETH/USDT")
    ]
    # reads (accounts, open rows, prior orders, instruments, status) + bulk inserts + updates of the
    # two existing positions and the accounts' cash, inside one transaction
    with django_assert_max_num_queries(20):
        results = services.actions_execute(competition=competition, actions=actions, prices=PRICES,
                                           market_time=START)
    assert [r.order.status for r in results] == ["filled"] * 6


def test_book_close_all_matches_account_close_all_for_every_participant():
    from django.db import transaction

    costs = {"fee_pct": Decimal("0.05"), "spread_bps": Decimal(4)}
    one_by_one = _book(ActiveCompetitionFactory(**costs))
    batched = _book(ActiveCompetitionFactory(**costs))
    later = START + timedelta(hours=3)
    prices = {"BTC/USDT": Decimal(50500), "ETH/USDT": Decimal(1990)}
    for trader in one_by_one:
        services.account_close_all(participant=trader, prices=prices, market_time=later)
    with transaction.atomic():
        book = services.Book(batched[0].competition)
        book.close_all(prices=prices, market_time=later)
        book.flush()
    assert _outcome(batched) == _outcome(one_by_one)
    assert not Position.objects.filter(account__participant__in=batched, is_open=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_book_refuses_to_lock_outside_a_transaction():
    competition = ActiveCompetitionFactory()
    with pytest.raises(RuntimeError, match="inside transaction.atomic"):
        services.Book(competition)
