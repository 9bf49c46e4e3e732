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
