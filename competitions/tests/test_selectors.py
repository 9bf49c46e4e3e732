"""Selectors turn rows into the leaderboard: checked on a hand-built competition worked by hand.

The competition (capital 10,000, hourly rounds, zero costs unless a test says otherwise):

    round  time   BTC    ETH   A (long 50 BTC @100, sells @99)  B (baseline, flat)  C (short 20 BTC @110)
    1      T1     100    10    10,000                            10,000              10,000
    2      T2     110    12    10,500                            10,000              10,000
    3      T3      99    11     9,950                            10,000              10,220

Equity series have the capital prepended at T0 = start_time = T1 - 1 h.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

import analytics
from agents.models import Invocation
from competitions import selectors
from competitions.models import Participant, Round
from competitions.services import participants_liquidate
from competitions.rules import trading_rules
from competitions.tests.factories import CompetitionFactory, ParticipantFactory
from marketdata.models import MarketSnapshotRecord
from trading import services
from trading.engine import OrderRequest
from trading.models import Account, EquitySnapshot

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
BTC, ETH = "BTC/USDT", "ETH/USDT"
PRICES = [{BTC: D(100), ETH: D(10)}, {BTC: D(110), ETH: D(12)}, {BTC: D(99), ETH: D(11)}]


def make_competition(**overrides):
    rules = {
        "start_time": T0,
        "status": "active",
        "fee_pct": D(0),
        "spread_bps": D(0),
        "slippage_bps": D(0),
        "funding_rate_pct_8h": D(0),
        "financing_rate_pct_annual": D(0),
        "max_position_size_pct": D(100),
        "seed": 7,
    }
    rules.update(overrides)
    return CompetitionFactory(**rules)


def join(competition, name, provider="scripted"):
    participant = ParticipantFactory(
        competition=competition, name=name, llm_provider=provider, llm_model="m-1"
    )
    services.account_open(participant=participant, initial_capital=competition.initial_capital)
    return participant


def add_round(competition, number, prices, cost=D(0)):
    at = T0 + number * HOUR
    payload = {
        "at": at.isoformat(),
        "source": "replay",
        "symbols": {
            symbol: {"symbol": symbol, "price": str(price), "candles": {}} for symbol, price in prices.items()
        },
    }
    record = MarketSnapshotRecord.objects.create(
        at=at, source="replay", dataset="binance-1h", payload=payload
    )
    return Round.objects.create(
        competition=competition,
        number=number,
        market_time=at,
        snapshot=record,
        status="completed",
        llm_cost_usd=cost,
    )


def invoke(participant, round_, status="success", reasoning="", outcomes=(), latency_ms=1000, cost=D("0.01")):
    return Invocation.objects.create(
        participant=participant,
        round=round_,
        provider=participant.llm_provider,
        model=participant.llm_model,
        prompt_version="1",
        system_prompt="system",
        user_prompt="user",
        parsed_decision={"reasoning": reasoning, "actions": [{"action": "hold"}]},
        action_outcomes=list(outcomes),
        status=status,
        latency_ms=latency_ms,
        input_tokens=100,
        output_tokens=20,
        cost_usd=cost,
    )


def trade(participant, side, quantity, round_, prices, invocation=None):
    order = services.order_place(
        participant=participant,
        rules=trading_rules(participant.competition),
        order_request=OrderRequest(BTC, side, quantity=D(quantity)),
        prices=prices,
        market_time=round_.market_time,
        invocation_id=invocation.pk if invocation else None,
    )
    assert order.status == "filled", order.reject_reason
    return order


def mark(participants, round_, prices):
    for participant in participants:
        _, liquidated = services.account_mark(
            participant=participant, rules=trading_rules(participant.competition), prices=prices,
            market_time=round_.market_time, round_number=round_.number,
        )
        if liquidated:  # what the round records
            participants_liquidate(participant_ids=[participant.pk])


@pytest.fixture
def arena():
    return build_arena()


def build_arena():
    competition = make_competition()
    a = join(competition, "A")
    b = join(competition, "B", provider="baseline")
    c = join(competition, "C")
    rounds = [add_round(competition, n, PRICES[n - 1], cost=D("0.02")) for n in (1, 2, 3)]
    filled = {"index": 0, "status": "filled"}
    a1 = invoke(a, rounds[0], reasoning="BTC breaks out", outcomes=[filled], latency_ms=1000)
    invoke(a, rounds[1], status="invalid_response", latency_ms=2000)
    a3 = invoke(
        a,
        rounds[2],
        reasoning="take the loss",
        outcomes=[
            {"index": 0, "status": "rejected", "code": "unknown_symbol"},
            {"index": 1, "status": "filled"},
        ],
        latency_ms=3000,
    )
    trade(a, "buy", 50, rounds[0], PRICES[0], a1)
    mark([a, b, c], rounds[0], PRICES[0])
    c2 = invoke(c, rounds[1], reasoning="fade the spike", outcomes=[filled])
    trade(c, "sell", 20, rounds[1], PRICES[1], c2)
    mark([a, b, c], rounds[1], PRICES[1])
    trade(a, "sell", 50, rounds[2], PRICES[2], a3)
    mark([a, b, c], rounds[2], PRICES[2])
    return competition, a, b, c


def by_name(rows):
    return {row.name: row for row in rows}


def test_leaderboard_values_match_the_hand_worked_competition(arena):
    competition, _a, _b, _c = arena
    rows = by_name(selectors.leaderboard_list(competition_id=competition.pk))
    row_a, row_b, row_c = rows["A"], rows["B"], rows["C"]
    assert [row_c.equity, row_b.equity, row_a.equity] == [10220.0, 10000.0, 9950.0]
    assert row_a.return_pct == pytest.approx(-0.5)
    assert row_c.return_pct == pytest.approx(2.2)
    # A: 10,000 -> 10,500 -> 9,950: max drawdown 9,950 / 10,500 - 1
    assert row_a.max_drawdown == pytest.approx((9950 / 10500 - 1) * 100)
    assert row_a.max_drawdown_duration == HOUR  # peak at T2, not recovered at T3
    assert row_a.realised_pnl == pytest.approx(-50.0)
    assert row_a.unrealised_pnl == 0.0
    assert (row_a.trades, row_a.win_rate, row_a.largest_loss) == (1, 0.0, -50.0)
    # C is still short 20 from 110, marked at 99: +220 unrealised, nothing realised, no trade closed
    assert (row_c.realised_pnl, row_c.unrealised_pnl, row_c.trades) == (0.0, 220.0, 0)
    # A is long at T1 and T2, flat at T3; C flat at T1, short at T2 and T3
    assert (row_a.share_long, row_a.share_flat) == (pytest.approx(200 / 3), pytest.approx(100 / 3))
    assert (row_c.share_short, row_c.share_flat) == (pytest.approx(200 / 3), pytest.approx(100 / 3))
    # gross notional / equity at T0..T3: 0, 5,000/10,000, 5,500/10,500, 0
    assert row_a.average_leverage == pytest.approx((0.5 + 5500 / 10500) / 4)
    # returns 0, +5 %, 9,950 / 10,500 - 1 over hourly crypto rounds
    returns = [0.0, 0.05, 9950 / 10500 - 1]
    assert row_a.sharpe == pytest.approx(analytics.sharpe_ratio(returns, 365 * 24))
    assert row_b.sharpe is None and row_b.max_drawdown == 0.0
    assert (row_b.is_baseline, row_a.is_baseline, row_a.provider, row_a.model) == (
        True,
        False,
        "scripted",
        "m-1",
    )


def test_llm_columns_count_invocations_rejections_latency_and_cost(arena):
    competition, *_ = arena
    row_a = by_name(selectors.leaderboard_list(competition_id=competition.pk))["A"]
    assert row_a.invocations == 3
    assert row_a.invalid_rate == pytest.approx(100 / 3)
    assert row_a.error_rate == 0.0
    # actions proposed: 1 (round 1) + 2 (round 3), one of them rejected
    assert row_a.rejected_action_rate == pytest.approx(100 / 3)
    assert (row_a.latency_p50, row_a.total_tokens) == (2.0, 360)
    assert row_a.llm_cost_usd == pytest.approx(0.03)
    # (PnL - LLM cost) / capital: (-50 - 0.03) / 10,000
    assert row_a.cost_adjusted_return == pytest.approx(-0.5003)


def test_fees_and_funding_are_reported_as_paid():
    competition = make_competition(fee_pct=D("0.1"))
    trader = join(competition, "fees")
    round_ = add_round(competition, 1, PRICES[0])
    trade(trader, "buy", 10, round_, PRICES[0])
    mark([trader], round_, PRICES[0])
    row = selectors.leaderboard_list(competition_id=competition.pk)[0]
    # 10 x 100 x 0.1 % = 1 paid at the open
    assert (row.fees_paid, row.funding_paid, row.pnl, row.pnl_before_fees) == (1.0, 0.0, -1.0, 0.0)


@pytest.mark.parametrize(
    ("metric", "order"),
    [
        ("equity", ["C", "B", "A"]),
        ("return_pct", ["C", "B", "A"]),
        ("sharpe", ["C", "A", "B"]),  # B never moves: no Sharpe, sorted last
        ("max_drawdown", ["B", "C", "A"]),  # B and C never fell: tie kept in id order
        ("trades", ["A", "B", "C"]),
        ("llm_cost_usd", ["B", "C", "A"]),  # lowest first: B 0, C 0.01, A 0.03
        ("invalid_rate", ["C", "A", "B"]),  # B was never invoked: None last
    ],
)
def test_leaderboard_orders_by_each_metric_with_ranks(arena, metric, order):
    competition, *_ = arena
    rows = selectors.leaderboard_list(competition_id=competition.pk, metric=metric)
    assert [row.name for row in rows] == order
    assert [row.rank for row in rows] == [1, 2, 3]


def test_unknown_metric_is_refused_with_the_choices(arena):
    competition, *_ = arena
    with pytest.raises(ValueError, match="sharpe"):
        selectors.leaderboard_list(competition_id=competition.pk, metric="vibes")


def test_limit_cuts_after_sorting(arena):
    competition, *_ = arena
    rows = selectors.leaderboard_list(competition_id=competition.pk, limit=2)
    assert [row.name for row in rows] == ["C", "B"]


def test_benchmark_row_is_buy_and_hold_sorted_among_participants(arena):
    competition, *_ = arena
    rows = selectors.leaderboard_list(competition_id=competition.pk, include_benchmark=True)
    # buy and hold ends at 10,450 (see the reference test): above C's 10,220
    assert [row.name for row in rows] == [selectors.BENCHMARK_NAME, "C", "B", "A"]
    benchmark = rows[0]
    assert (benchmark.rank, benchmark.is_benchmark, benchmark.participant_id) == (None, True, None)
    assert benchmark.equity == pytest.approx(10450.0)
    assert [row.rank for row in rows[1:]] == [1, 2, 3]


def test_buy_and_hold_reference_is_equal_weight_from_the_first_rounds_mids(arena):
    competition, *_ = arena
    reference = selectors.buy_and_hold_reference(competition_id=competition.pk)
    # 5,000 in BTC @100 (50 BTC) and 5,000 in ETH @10 (500 ETH)
    # T2: 50 x 110 + 500 x 12 = 11,500; T3: 50 x 99 + 500 x 11 = 10,450
    assert [moment for moment, _ in reference] == [T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR]
    assert [equity for _, equity in reference] == pytest.approx([10000.0, 11500.0, 10450.0])


def test_no_round_yet_means_capital_and_undefined_metrics():
    competition = make_competition()
    join(competition, "early")
    ParticipantFactory(competition=competition, name="no account")
    rows = selectors.leaderboard_list(competition_id=competition.pk, include_benchmark=True)
    assert [row.name for row in rows] == ["early", "no account"]  # no rounds: no benchmark either
    for row in rows:
        assert (row.equity, row.return_pct, row.max_drawdown, row.rounds) == (10000.0, 0.0, 0.0, 0)
        assert row.sharpe is None and row.sortino is None and row.calmar is None and row.win_rate is None
    assert rows[1].fees_paid is None  # no account: no ledger to sum
    assert selectors.buy_and_hold_reference(competition_id=competition.pk) == []
    assert selectors.equity_history(competition_id=competition.pk) == {
        p.pk: [] for p in competition.participants.all()
    }


def test_a_liquidated_participant_ends_at_zero_and_keeps_its_history():
    competition = make_competition(max_leverage=D(10))
    gambler = join(competition, "gambler")
    calm = join(competition, "calm")
    first = add_round(competition, 1, {BTC: D(100)})
    services.order_place(
        participant=gambler,
        rules=trading_rules(competition),
        order_request=OrderRequest(BTC, "buy", quantity=D(500), leverage=D(10)),
        prices={BTC: D(100)},
        market_time=first.market_time,
    )
    mark([gambler, calm], first, {BTC: D(100)})
    # 500 BTC x (80 - 100) = -10,000: the close-out leaves nothing
    crash = add_round(competition, 2, {BTC: D(80)})
    mark([gambler, calm], crash, {BTC: D(80)})
    after = add_round(competition, 3, {BTC: D(85)})
    mark([gambler, calm], after, {BTC: D(85)})
    gambler.refresh_from_db()
    assert gambler.status == Participant.Status.LIQUIDATED
    rows = by_name(selectors.leaderboard_list(competition_id=competition.pk, metric="sharpe"))
    row = rows["gambler"]
    assert (row.status, row.equity, row.return_pct, row.max_drawdown) == ("liquidated", 0.0, -100.0, -100.0)
    assert (row.trades, row.largest_loss, row.win_rate) == (1, -10000.0, 0.0)
    assert row.rounds == 3
    assert row.current_drawdown == -100.0


def test_participant_performance_is_the_same_row_without_a_rank(arena):
    competition, a, *_ = arena
    row = selectors.participant_performance(participant_id=a.pk)
    board = by_name(selectors.leaderboard_list(competition_id=competition.pk))["A"]
    assert row.rank is None
    assert row.metrics == board.metrics
    assert row.as_dict()["max_drawdown_duration"] == 3600.0


def test_aligned_returns_and_significance_use_the_competition_seed(arena):
    competition, *_ = arena
    returns = selectors.aligned_returns(competition_id=competition.pk)
    assert returns["A"] == pytest.approx([0.0, 0.05, 9950 / 10500 - 1])
    assert returns["B"] == [0.0, 0.0, 0.0]
    assert returns["C"] == pytest.approx([0.0, 0.0, 0.022])
    pairs = selectors.significance_matrix(competition_id=competition.pk, n_resamples=200)
    assert [(p.first, p.second) for p in pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    expected = analytics.compare_participants(
        returns, statistic="sharpe", periods_per_year=365 * 24, n_resamples=200, seed=7
    )
    assert pairs == expected


def snapshots(account, values):
    EquitySnapshot.objects.bulk_create(
        EquitySnapshot(
            account=account,
            market_time=T0 + n * HOUR,
            round_number=n,
            equity=D(value),
            cash=D(value),
            unrealised_pnl=D(0),
            used_margin=D(0),
            free_margin=D(value),
            maintenance_requirement=D(0),
        )
        for n, value in enumerate(values, start=1)
    )


def test_significance_seed_defaults_to_the_competitions_and_changes_the_interval():
    competition = make_competition(seed=7)
    for name, step in (("steady", 1), ("wobbly", 3)):
        trader = join(competition, name)
        snapshots(
            Account.objects.get(participant=trader),
            [10000 + step * ((n * 7) % 11 - 5) + n for n in range(40)],
        )
    default = selectors.significance_matrix(competition_id=competition.pk, n_resamples=300)
    seven = selectors.significance_matrix(competition_id=competition.pk, n_resamples=300, seed=7)
    eight = selectors.significance_matrix(competition_id=competition.pk, n_resamples=300, seed=8)
    assert default == seven
    assert (default[0].ci_low, default[0].ci_high) != (eight[0].ci_low, eight[0].ci_high)
    assert default[0].difference == eight[0].difference  # the observed difference needs no seed


def test_significance_refuses_unknown_statistics(arena):
    competition, *_ = arena
    with pytest.raises(ValueError, match="total_return"):
        selectors.significance_matrix(competition_id=competition.pk, statistic="alpha")


def test_equity_history_starts_at_capital_and_follows_the_snapshots(arena):
    competition, a, _b, c = arena
    history = selectors.equity_history(competition_id=competition.pk)
    assert history[a.pk] == [
        (T0, 10000.0),
        (T0 + HOUR, 10000.0),
        (T0 + 2 * HOUR, 10500.0),
        (T0 + 3 * HOUR, 9950.0),
    ]
    assert history[c.pk][-1] == (T0 + 3 * HOUR, 10220.0)
    assert selectors.participant_equity_history(participant_id=a.pk) == history[a.pk]
    drawdown = selectors.participant_drawdown_history(participant_id=a.pk)
    assert [value for _, value in drawdown] == pytest.approx([0.0, 0.0, 0.0, (9950 / 10500 - 1) * 100])


def test_equity_history_of_a_long_competition_is_downsampled():
    competition = make_competition()
    trader = join(competition, "long")
    snapshots(Account.objects.get(participant=trader), [10000 + n for n in range(1, 1001)])
    history = selectors.equity_history(competition_id=competition.pk, target_points=100)[trader.pk]
    # 1,001 points (capital + 1,000 rounds) in buckets of ceil(1001 / 100) = 11: the first point,
    # then bucket ends at indices 10, 21, ..., 1000 (91 of them; the last one is the final point)
    assert len(history) == 92
    assert history[0] == (T0, 10000.0)
    assert history[1] == (T0 + 10 * HOUR, 10010.0)
    assert history[-1] == (T0 + 1000 * HOUR, 11000.0)


def test_drawdown_history_keeps_the_trough_of_each_bucket():
    competition = make_competition()
    trader = join(competition, "dip")
    values = [10000] * 20
    values[7] = 8000  # a one-round 20 % dip inside a bucket
    snapshots(Account.objects.get(participant=trader), values)
    drawdown = selectors.participant_drawdown_history(participant_id=trader.pk, target_points=5)
    assert min(value for _, value in drawdown) == pytest.approx(-20.0)
    assert drawdown[-1] == (T0 + 20 * HOUR, 0.0)


def test_an_executed_outcome_replaces_the_pending_entry_of_the_same_action():
    competition = make_competition()
    trader = join(competition, "resumed")
    round_ = add_round(competition, 1, PRICES[0])
    # the round appended the engine's outcomes to the validator's pending / rejected entries
    invoke(
        trader,
        round_,
        outcomes=[
            {"index": 0, "status": "pending"},
            {"index": 1, "status": "rejected", "code": "bad_leverage"},
            {"index": 0, "status": "rejected", "code": "insufficient_margin"},
        ],
    )
    row = selectors.leaderboard_list(competition_id=competition.pk)[0]
    # two actions proposed (indexes 0 and 1), both rejected in the end
    assert row.rejected_action_rate == 100.0


def test_buy_and_hold_of_a_competition_without_symbols_holds_what_its_snapshots_quote():
    competition = make_competition(symbols=[])
    for number, prices in enumerate(PRICES, start=1):
        add_round(competition, number, prices)
    reference = selectors.buy_and_hold_reference(competition_id=competition.pk)
    # the same BTC / ETH path as the arena: 10,000, 11,500, 10,450
    assert [equity for _, equity in reference] == pytest.approx([10000.0, 11500.0, 10450.0])
