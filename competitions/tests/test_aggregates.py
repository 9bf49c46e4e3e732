"""Stored aggregates: folded as rounds complete, always equal to a fold from scratch, and the
leaderboard reads the same numbers with them as without them."""

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.apps import apps
from django.core.management import call_command

from agents.models import Invocation
from competitions import aggregates, selectors
from competitions.rounds import run as rounds
from competitions.aggregates import ParticipantFold
from analytics import ClosedTrade, ExposureTally
from competitions.models import ParticipantAggregate
from competitions.rounds.run import round_run
from competitions.services import competition_stop
from competitions.tests.dashboard_data import ledger_competition, replay_competition
from competitions.tests.test_selectors import PRICES, build_arena, mark, trade
from trading.models import EquitySnapshot, Fill

pytestmark = pytest.mark.django_db

T = datetime(2025, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BTC, ETH = "BTC/USDT", "ETH/USDT"


def stored_folds(competition) -> dict[int, ParticipantFold]:
    return {
        values["participant_id"]: ParticipantFold.from_stored(values)
        for values in ParticipantAggregate.objects.filter(participant__competition=competition).values(
            "participant_id", *aggregates.STORED_FIELDS
        )
    }


def from_scratch(competition) -> dict[int, ParticipantFold]:
    return aggregates.participants_fold(competition_id=competition.pk, rebuild=True, save=False)


def board(competition, **kwargs) -> dict[str, dict]:
    rows = selectors.leaderboard_list(competition_id=competition.pk, include_benchmark=True, **kwargs)
    return {row.name: row.as_dict() for row in rows}


def forget_aggregates(competition) -> None:
    """Leave only the raw rows: what a page read before anything was stored."""
    ParticipantAggregate.objects.filter(participant__competition=competition).delete()
    Invocation.objects.filter(participant__competition=competition).update(
        actions_count=None, rejected_actions_count=None
    )


# --- the fold, by hand -------------------------------------------------------------------------


def test_a_fill_counts_from_the_first_point_at_or_after_it_and_a_re_mark_replaces_its_point():
    fold = ParticipantFold()
    fold.fold(
        points=[(1, T), (2, T + HOUR), (3, T + 2 * HOUR)],
        fills=[
            (10, T + HOUR, BTC, D("0.5"), D(100)),  # long 50 from the second point
            (11, T + 3 * HOUR, BTC, D("-0.5"), D(110)),  # after the last point: waits
        ],
    )
    assert fold.exposure == ExposureTally(long=2, short=0, flat=1)
    assert (fold.snapshot_watermark, fold.fill_watermark, fold.last_point_sign) == (3, 10, 1)
    # the waiting fill is folded with the next point; the same time again is a re-mark
    fold.fold(
        points=[(4, T + 3 * HOUR), (5, T + 3 * HOUR)],
        fills=[(11, T + 3 * HOUR, BTC, D("-0.5"), D(110)), (12, T + 3 * HOUR, ETH, D(-2), D(10))],
    )
    assert fold.exposure == ExposureTally(long=2, short=1, flat=1)
    assert fold.net == {BTC: (D(0), D(110)), ETH: (D(-2), D(10))}
    assert (fold.snapshot_watermark, fold.fill_watermark, fold.last_point_at) == (5, 12, T + 3 * HOUR)


def test_fills_at_the_last_points_time_written_after_it_change_that_point():
    # a settlement closes the position at the last round's mark
    fold = ParticipantFold()
    fold.fold(points=[(1, T)], fills=[(10, T, BTC, D(1), D(100))])
    assert fold.exposure == ExposureTally(long=1)
    fold.fold(fills=[(11, T, BTC, D(-1), D(101))])
    assert fold.exposure == ExposureTally(flat=1)
    assert fold.fill_watermark == 11


def test_decimal_quantities_that_cancel_leave_no_exposure():
    fold = ParticipantFold()
    fold.fold(
        points=[(1, T)],
        fills=[(1, T, BTC, D("0.1"), D(3)), (2, T, BTC, D("0.2"), D(3)), (3, T, BTC, D("-0.3"), D(3))],
    )
    assert fold.exposure == ExposureTally(flat=1)


def test_watermarks_move_past_rows_of_other_accounts_the_queries_covered():
    fold = ParticipantFold(snapshot_watermark=3, fill_watermark=7, trade_watermark=7)
    fold.fold(seen_snapshot_id=40, seen_fill_id=90)
    assert (fold.snapshot_watermark, fold.fill_watermark, fold.trade_watermark) == (40, 90, 90)
    # a fill still waiting for its point keeps the fill watermark before it
    waiting = ParticipantFold()
    waiting.fold(points=[(1, T)], fills=[(5, T + HOUR, BTC, D(1), D(1))], seen_fill_id=90)
    assert waiting.fill_watermark == 0


def test_the_stored_form_round_trips_exactly():
    fold = ParticipantFold()
    fold.fold(
        points=[(1, T), (2, T + HOUR)],
        fills=[(10, T, BTC, D("0.123456789012"), D("61234.5678901234567"))],
        closed=[
            (10, ClosedTrade(D("12.3456789012"), T, T + HOUR)),
            (11, ClosedTrade(D("-0.0000000001"), T, T + 3 * HOUR)),
            (12, ClosedTrade(D(0), None, None)),
        ],
    )
    stored = fold.stored()
    assert ParticipantFold.from_stored(stored) == fold
    # and through the database, where SQLite would round a DecimalField to 15 digits
    competition, a, *_ = build_arena()
    ParticipantAggregate.objects.create(participant=a, **stored)
    assert stored_folds(competition)[a.pk] == fold


@pytest.mark.parametrize(
    ("outcomes", "counts"),
    [
        ([], (0, 0)),
        ([{"index": 0, "status": "filled"}, {"index": 1, "status": "rejected"}], (2, 1)),
        # a pending action's executed outcome replaces it
        ([{"index": 0, "status": "pending"}, {"index": 0, "status": "rejected"}], (1, 1)),
        ('[{"index": 0, "status": "rejected"}]', (1, 1)),  # JSON encoded once more
        ("not json", (0, 0)),
        ({"index": 0}, (0, 0)),
    ],
)
def test_action_counts(outcomes, counts):
    assert aggregates.action_counts(outcomes) == counts


# --- stored == from scratch ---------------------------------------------------------------------


def test_rounds_store_aggregates_equal_to_a_fold_from_scratch(monkeypatch):
    monkeypatch.setattr(rounds, "AGGREGATE_FOLD_SECONDS", 0)  # fold after every round
    competition = replay_competition(strategies=("buy_and_hold", "momentum", "random", "flat"))
    for number in range(1, 25):
        round_run(competition_id=competition.pk, number=number)
    stored = stored_folds(competition)
    assert stored == from_scratch(competition)
    assert len(stored) == 4
    # the data is not trivial: trades were closed, and agents were long, short and flat
    assert sum(fold.trades.trades for fold in stored.values()) > 0
    tally = [fold.exposure for fold in stored.values()]
    assert sum(t.long for t in tally) and sum(t.flat for t in tally)
    assert all(sum(vars(fold.exposure).values()) == 24 for fold in stored.values())  # a point a round
    invocations = Invocation.objects.filter(participant__competition=competition)
    assert not invocations.filter(actions_count__isnull=True).exists()
    for round_ in competition.rounds.select_related("snapshot"):
        assert round_.prices == aggregates.snapshot_prices(round_.snapshot.payload["symbols"])
        assert set(round_.prices) == {BTC, ETH}


def test_a_fast_replay_folds_at_most_once_a_second_and_pages_fold_the_rest(monkeypatch):
    monkeypatch.setattr(rounds, "AGGREGATE_FOLD_SECONDS", 3600)
    competition = replay_competition(strategies=("buy_and_hold", "momentum", "random", "flat"))
    rounds._last_fold.pop(competition.pk, None)
    for number in range(1, 13):
        round_run(competition_id=competition.pk, number=number)
    # only the first round folded: the rest lies past the watermarks
    watermark = max(ParticipantAggregate.objects.values_list("snapshot_watermark", flat=True))
    assert EquitySnapshot.objects.filter(account__participant__competition=competition, id__gt=watermark).count() > 10
    # counts and prices are stored by every round all the same
    invocations = Invocation.objects.filter(participant__competition=competition)
    assert not invocations.filter(actions_count__isnull=True).exists()
    assert not competition.rounds.filter(prices__isnull=True).exists()
    with_stored = board(competition)
    forget_aggregates(competition)
    assert board(competition) == with_stored
    assert stored_folds(competition) == {}


def test_the_leaderboard_is_the_same_with_stored_aggregates_and_from_the_rows_alone():
    competition = replay_competition()
    for number in range(1, 13):
        round_run(competition_id=competition.pk, number=number)
    # stopping settles what is open at round 12's mark after round 12 was folded: a tail
    competition_stop(competition_id=competition.pk)
    watermark = min(ParticipantAggregate.objects.values_list("fill_watermark", flat=True))
    assert Fill.objects.filter(account__participant__competition=competition, id__gt=watermark).exists()
    with_stored = board(competition)
    forget_aggregates(competition)
    assert board(competition) == with_stored
    assert any(row["trades"] for row in with_stored.values())


def test_the_hand_worked_leaderboard_is_the_same_from_stored_aggregates():
    competition, a, b, c = build_arena()
    before = board(competition)
    aggregates.participants_fold(competition_id=competition.pk)
    for round_ in competition.rounds.all():
        aggregates.invocations_count(Invocation.objects.filter(round=round_))
    assert board(competition) == before
    # a later round's rows, past the watermarks, are read from the rows until it completes
    later = competition.rounds.create(number=4, market_time=T + 4 * HOUR, status="completed")
    trade(c, "buy", 20, later, PRICES[0])
    mark([a, b, c], later, PRICES[0])
    folded_before = board(competition)
    forget_aggregates(competition)
    assert board(competition) == folded_before
    assert folded_before["C"]["trades"] == 1


def test_the_benchmark_is_the_same_from_round_prices_and_from_the_snapshots():
    competition, *_ = build_arena()  # rounds written without completing: no prices copied
    from_snapshots = selectors.buy_and_hold_reference(competition_id=competition.pk)
    first, *_ = competition.rounds.order_by("number")
    aggregates.rounds_price(competition.rounds.filter(pk=first.pk))  # one round copied, two not
    assert selectors.buy_and_hold_reference(competition_id=competition.pk) == from_snapshots
    aggregates.rounds_price(competition.rounds.all())
    assert competition.rounds.filter(prices__isnull=True).count() == 0
    assert selectors.buy_and_hold_reference(competition_id=competition.pk) == from_snapshots
    assert [equity for _, equity in from_snapshots] == pytest.approx([10000.0, 11500.0, 10450.0])
    # the copies are what is read: back to the first mids at round 3, back to the capital
    competition.rounds.filter(number=3).update(prices={BTC: "100", ETH: "10"})
    assert selectors.buy_and_hold_reference(competition_id=competition.pk)[-1][1] == pytest.approx(10000.0)


def test_pages_read_no_fill_or_closed_position_the_aggregates_hold(monkeypatch):
    competition = ledger_competition(participants=3, rounds=6, orders_per_round=2)
    read = []
    original = aggregates.fills_after, aggregates.closed_after

    def fills_after(watermarks):
        rows, seen = original[0](watermarks)
        read.extend(fill for fills in rows.values() for fill in fills)
        return rows, seen

    def closed_after(watermarks):
        rows = original[1](watermarks)
        read.extend(trade for trades in rows.values() for trade in trades)
        return rows

    monkeypatch.setattr(aggregates, "fills_after", fills_after)
    monkeypatch.setattr(aggregates, "closed_after", closed_after)
    rows = selectors.leaderboard_list(competition_id=competition.pk)
    assert read == []
    assert sum(row.trades for row in rows) == 3 * 6  # each round opens and closes one position


def test_rebuild_command_repairs_edited_aggregates():
    competition = ledger_competition(participants=2, rounds=4)
    expected = stored_folds(competition)
    ParticipantAggregate.objects.update(trades=0, wins=0, losses=0, holding_trades=0, long_points=0)
    Invocation.objects.update(actions_count=0, rejected_actions_count=0)
    prices = dict(competition.rounds.values_list("id", "prices"))
    competition.rounds.update(prices={})
    call_command("aggregates_rebuild", "--competition", str(competition.pk), stdout=open("/dev/null", "w"))
    assert stored_folds(competition) == expected
    assert dict(competition.rounds.values_list("id", "prices")) == prices
    counts = Invocation.objects.filter(participant__competition=competition).values_list(
        "action_outcomes", "actions_count", "rejected_actions_count"
    )
    assert all(aggregates.action_counts(outcomes) == (n, rejected) for outcomes, n, rejected in counts)


# --- the migrations' backfills -------------------------------------------------------------------


def test_migrations_backfill_counts_and_aggregates_of_existing_rows(monkeypatch):
    competition = ledger_competition(participants=2, rounds=4, orders_per_round=2)
    expected = board(competition)
    expected_folds = stored_folds(competition)
    expected_prices = dict(competition.rounds.values_list("number", "prices"))
    forget_aggregates(competition)
    competition.rounds.update(prices=None)
    counting = importlib.import_module("agents.migrations.0002_invocation_action_counts")
    folding = importlib.import_module("competitions.migrations.0004_participant_aggregate")
    pricing = importlib.import_module("competitions.migrations.0005_round_prices")
    monkeypatch.setattr(counting, "BATCH", 3)  # several batches
    monkeypatch.setattr(pricing, "BATCH", 3)
    counting.count_actions(apps, None)
    folding.fold_existing(apps, None)
    pricing.copy_prices(apps, None)
    assert dict(competition.rounds.values_list("number", "prices")) == expected_prices
    assert all(set(prices) == {BTC, ETH} for prices in expected_prices.values())
    assert not Invocation.objects.filter(actions_count__isnull=True).exists()
    assert Invocation.objects.filter(actions_count=2).count() == 2 * 4
    assert stored_folds(competition) == expected_folds
    assert board(competition) == expected
