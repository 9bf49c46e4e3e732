"""The small lists pages and the API show: competitions, fills with reasoning, the model chat feed."""

from decimal import Decimal as D

import pytest

from competitions import selectors
from competitions.tests.test_selectors import HOUR, T0, build_arena, make_competition

pytestmark = pytest.mark.django_db


@pytest.fixture
def arena():
    return build_arena()


def test_competition_list_counts_participants_rounds_cost_and_names_the_leader(arena):
    competition, *_ = arena
    empty = make_competition(status="draft")
    rows = {row.pk: row for row in selectors.competition_list()}
    row = rows[competition.pk]
    # three rounds at 0.02 USD each; C leads with 10,220
    assert (row.participant_count, row.rounds_done, row.llm_cost_usd) == (3, 3, D("0.06"))
    assert (row.leader_name, row.leader_equity) == ("C", D(10220))
    blank = rows[empty.pk]
    assert (blank.participant_count, blank.rounds_done, blank.llm_cost_usd, blank.leader_name) == (
        0,
        0,
        D(0),
        None,
    )
    assert [row.pk for row in selectors.competition_list(status="draft")] == [empty.pk]


def test_recent_fills_are_newest_first_with_reason_and_the_decisions_reasoning(arena):
    competition, _a, b, c = arena
    fills = selectors.recent_fills(competition_id=competition.pk)
    assert [(f.participant_name, f.side, f.quantity, f.price) for f in fills] == [
        ("A", "sell", D(50), D(99)),
        ("C", "sell", D(20), D(110)),
        ("A", "buy", D(50), D(100)),
    ]
    assert [f.reasoning for f in fills] == ["take the loss", "fade the spike", "BTC breaks out"]
    assert {f.reason for f in fills} == {"agent"}
    assert fills[0].realised_pnl == D(-50) and fills[0].closes
    assert [f.market_time for f in fills] == [T0 + 3 * HOUR, T0 + 2 * HOUR, T0 + HOUR]
    assert len(selectors.recent_fills(competition_id=competition.pk, limit=1)) == 1
    assert [f.symbol for f in selectors.participant_fills(participant_id=c.pk)] == ["BTC/USDT"]
    assert selectors.participant_fills(participant_id=b.pk) == []


def test_recent_decisions_show_status_reasoning_actions_and_outcomes(arena):
    competition, a, _b, _c = arena
    feed = selectors.recent_decisions(competition_id=competition.pk)
    assert [(d.round_number, d.participant_name, d.status) for d in feed] == [
        (3, "A", "success"),
        (2, "A", "invalid_response"),
        (2, "C", "success"),
        (1, "A", "success"),
    ]
    latest = feed[0]
    assert latest.reasoning == "take the loss"
    assert latest.actions == [{"action": "hold"}]
    assert [o["status"] for o in latest.outcomes] == ["rejected", "filled"]
    assert (latest.latency_ms, latest.cost_usd, latest.market_time) == (3000, D("0.01"), T0 + 3 * HOUR)
    invalid = selectors.participant_invocations(participant_id=a.pk, status="invalid_response")
    assert [d.round_number for d in invalid] == [2]
    assert [d.round_number for d in selectors.participant_invocations(participant_id=a.pk)] == [3, 2, 1]


def test_participant_positions_split_open_and_closed_with_net_pnl(arena):
    _competition, a, _b, c = arena
    (closed,) = selectors.participant_positions(participant_id=a.pk, status="closed")
    assert (closed.symbol, closed.side, closed.net_pnl, closed.is_open) == ("BTC/USDT", "long", D(-50), False)
    assert selectors.participant_positions(participant_id=a.pk) == []
    (open_short,) = selectors.participant_positions(participant_id=c.pk, status="open")
    assert (open_short.side, open_short.quantity, open_short.entry_price) == ("short", D(20), D(110))
    with pytest.raises(ValueError):
        selectors.participant_positions(participant_id=a.pk, status="pending")
