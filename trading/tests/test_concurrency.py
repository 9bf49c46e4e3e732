"""Two orders for one participant at the same moment are decided one after the other."""

import threading
from datetime import UTC, datetime
from decimal import Decimal as D

import pytest
from django.db import connection

from competitions.rules import trading_rules
from trading import services
from trading.engine import OrderRequest
from trading.models import Account, Order, Position
from trading.tests.factories import ActiveCompetitionFactory, TraderFactory

T = datetime(2025, 1, 2, 12, tzinfo=UTC)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_orders_never_both_pass_a_margin_check_only_one_can_pass():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    participant = TraderFactory(competition=ActiveCompetitionFactory())
    services.account_open(participant=participant, initial_capital=participant.competition.initial_capital)
    rules = trading_rules(participant.competition)
    # each order needs 6000 of margin (60 x 100 at 1x); free margin is 10000: only one fits
    barrier = threading.Barrier(2)
    errors = []

    def place(symbol):
        try:
            barrier.wait(timeout=10)
            services.order_place(
                participant=participant,
                rules=rules,
                order_request=OrderRequest(symbol, "buy", quantity=D(60)),
                prices={"BTC/USDT": D(100), "ETH/USDT": D(100)},
                market_time=T,
            )
        except Exception as error:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=place, args=(symbol,)) for symbol in ("BTC/USDT", "ETH/USDT")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    statuses = sorted(Order.objects.values_list("status", "reject_code"))
    assert statuses == [("filled", ""), ("rejected", "insufficient_margin")]
    assert Position.objects.filter(is_open=True).count() == 1
    services.account_check_invariant(account=Account.objects.get(participant=participant))
