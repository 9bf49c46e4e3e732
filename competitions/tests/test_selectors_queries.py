"""Selectors read each table once: query counts do not grow with participants, rounds or fills."""

from decimal import Decimal as D

import pytest

from competitions import aggregates, selectors
from competitions.tests.test_selectors import PRICES, add_round, invoke, join, make_competition, mark, trade

pytestmark = pytest.mark.django_db


def grow(competition, participants: int, rounds: int, first_round: int = 1, store: bool = False):
    """Participants that each trade and get invoked every round; `store`: each round's
    aggregates are stored as it completes (else pages fold every row themselves)."""
    traders = [join(competition, f"T{first_round}-{n}") for n in range(participants)]
    everyone = list(competition.participants.all())
    for number in range(first_round, first_round + rounds):
        prices = PRICES[number % 3]
        round_ = add_round(competition, number, prices, cost=D("0.01"))
        for trader in everyone:
            invocation = invoke(
                trader, round_, reasoning=f"round {number}", outcomes=[{"index": 0, "status": "filled"}]
            )
            trade(trader, "buy" if number % 2 else "sell", 1, round_, prices, invocation)
        mark(everyone, round_, prices)
        if store:
            aggregates.round_completed(round_=round_)
    return traders


SELECTORS = {
    # name: (call, at most this many queries)
    "leaderboard_list": (lambda c, p: selectors.leaderboard_list(competition_id=c.pk), 8),
    "leaderboard_list with benchmark": (
        lambda c, p: selectors.leaderboard_list(competition_id=c.pk, include_benchmark=True),
        10,
    ),
    "leaderboard_get with benchmark": (
        lambda c, p: selectors.leaderboard_get(competition_id=c.pk, include_benchmark=True),
        10,
    ),
    "participant_performance": (lambda c, p: selectors.participant_performance(participant_id=p.pk), 8),
    "participant_performance_get": (
        lambda c, p: selectors.participant_performance_get(participant_id=p.pk),
        8,
    ),
    "buy_and_hold_reference": (lambda c, p: selectors.buy_and_hold_reference(competition_id=c.pk), 3),
    "significance_matrix": (
        lambda c, p: selectors.significance_matrix(competition_id=c.pk, n_resamples=50),
        4,
    ),
    "equity_history": (lambda c, p: selectors.equity_history(competition_id=c.pk), 4),
    "participant_equity_history": (lambda c, p: selectors.participant_equity_history(participant_id=p.pk), 3),
    "participant_drawdown_history": (
        lambda c, p: selectors.participant_drawdown_history(participant_id=p.pk),
        3,
    ),
    "competition_list": (
        lambda c, p: [
            (r.participant_count, r.rounds_done, r.llm_cost_usd) for r in selectors.competition_list()
        ],
        2,
    ),
    "recent_fills": (lambda c, p: selectors.recent_fills(competition_id=c.pk, limit=50), 2),
    "participant_fills": (lambda c, p: selectors.participant_fills(participant_id=p.pk), 2),
    "recent_decisions": (lambda c, p: selectors.recent_decisions(competition_id=c.pk, limit=50), 1),
    "participant_invocations": (lambda c, p: selectors.participant_invocations(participant_id=p.pk), 1),
    "participant_positions": (
        lambda c, p: selectors.participant_positions(participant_id=p.pk, status="closed"),
        1,
    ),
}


@pytest.mark.parametrize("store", [False, True], ids=["from rows", "stored aggregates"])
@pytest.mark.parametrize("name", SELECTORS)
def test_query_count_stays_constant_as_the_competition_grows(name, store, django_assert_max_num_queries):
    call, bound = SELECTORS[name]
    competition = make_competition()
    first, *_ = grow(competition, participants=2, rounds=2, store=store)
    with django_assert_max_num_queries(bound) as small_queries:
        small = call(competition, first)
    grow(competition, participants=3, rounds=4, first_round=3, store=store)
    with django_assert_max_num_queries(bound) as large_queries:
        large = call(competition, first)
    assert large != small  # the larger competition really was read
    assert len(large_queries.captured_queries) == len(small_queries.captured_queries)
