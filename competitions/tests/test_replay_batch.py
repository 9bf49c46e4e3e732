"""Replay batches: rounds of built-in strategies run many to a transaction (run.ReplayBatch)
give exactly what one round at a time gives, and a crash inside a batch rolls the whole
batch back, so the next run repeats no fill."""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest

from agents.models import Invocation
from competitions import services
from competitions.models import Round
from competitions.rounds import replay as replay_module
from competitions.rounds import run as run_module
from competitions.rounds.replay import replay_run
from competitions.tests.factories import START, CompetitionFactory
from trading.models import EquitySnapshot, Fill
from trading.services import account_check_invariant

pytestmark = pytest.mark.django_db(transaction=True)

# "random" is seeded by the participant id, which differs between the two competitions compared
STRATEGIES = ["buy_and_hold", "momentum", "mean_reversion", "flat"]
HOURS = 40


def _baselines(replay_market, name):
    competition = CompetitionFactory(
        name=name, dataset=replay_market, symbols=["BTC/USDT", "ETH/USDT"], end_time=START + timedelta(hours=HOURS),
        seed=7, max_leverage=2,
    )
    for strategy in STRATEGIES:
        services.participant_register(
            competition_id=competition.pk, name=strategy, llm_provider="baseline", llm_model=strategy
        )
    services.competition_start(competition_id=competition.pk)
    return competition


def _outcome_text(outcomes):
    # order ids differ between two competitions; everything else must match
    return [{k: v for k, v in item.items() if k != "order_id"} for item in outcomes or []]


def _record(competition):
    fills = list(
        Fill.objects.filter(account__participant__competition=competition)
        .order_by("market_time", "account__participant__name", "id")
        .values_list("account__participant__name", "market_time", "symbol", "side", "quantity", "price", "reason")
    )
    equity = list(
        EquitySnapshot.objects.filter(account__participant__competition=competition)
        .order_by("round_number", "account__participant__name")
        .values_list("account__participant__name", "round_number", "equity", "cash")
    )
    invocations = [
        (name, number, status, _outcome_text(outcomes))
        for name, number, status, outcomes in Invocation.objects.filter(round__competition=competition)
        .order_by("round__number", "participant__name")
        .values_list("participant__name", "round__number", "status", "action_outcomes")
    ]
    return fills, equity, invocations


def _histories(store):
    """Record every context's decision history, by (round, participant name)."""
    real = run_module.contexts_build

    def recording(**kwargs):
        contexts = real(**kwargs)
        names = {p.pk: p.name for p in kwargs["pending"]}
        for pk, context in contexts.items():
            store[(kwargs["round_number"], names[pk])] = context.history
        return contexts

    return mock.patch.object(run_module, "contexts_build", recording)


def test_a_batched_replay_gives_what_one_round_at_a_time_gives(replay_market):
    batched = _baselines(replay_market, "batched")
    single = _baselines(replay_market, "single")
    batched_histories, single_histories = {}, {}
    with _histories(batched_histories), mock.patch.object(replay_module, "REPLAY_BATCH_ROUNDS", 7):
        replay_run(competition_id=batched.pk, until_end=True)
    with _histories(single_histories), mock.patch.object(replay_module, "replay_batch_open", lambda **_: None):
        replay_run(competition_id=single.pk, until_end=True)

    got, expected = _record(batched), _record(single)
    assert got[0], "the strategies traded"
    assert got == expected
    assert batched_histories == single_histories
    assert any(history for history in batched_histories.values())
    assert Round.objects.filter(competition=batched, status=Round.Status.COMPLETED).count() == HOURS + 1
    batched.refresh_from_db()
    assert batched.status == "completed"
    for participant in batched.participants.all():
        account_check_invariant(account=participant.account)


def test_a_crash_inside_a_batch_rolls_the_batch_back_and_the_next_run_repeats_no_fill(replay_market):
    crashed = _baselines(replay_market, "crashed")
    clean = _baselines(replay_market, "clean")
    real_settle = run_module.RoundJob.settle

    def settle_then_die(job, *args, **kwargs):
        real_settle(job, *args, **kwargs)
        if job.batch is not None and job.round.number == 20:
            raise SystemExit("killed")  # the runner dies inside the batch's transaction

    with mock.patch.object(replay_module, "REPLAY_BATCH_ROUNDS", 10), \
            mock.patch.object(run_module.RoundJob, "settle", settle_then_die), pytest.raises(SystemExit):
        replay_run(competition_id=crashed.pk, until_end=True)
    # rounds 0 (alone), 1-10 and 11-19... the batch that held round 20 left nothing
    numbers = set(Round.objects.filter(competition=crashed).values_list("number", flat=True))
    assert numbers == set(range(max(numbers) + 1)) and max(numbers) < 20
    kept_fills = Fill.objects.filter(account__participant__competition=crashed).count()
    assert not Fill.objects.filter(account__participant__competition=crashed, market_time__gt=Round.objects.get(
        competition=crashed, number=max(numbers)).market_time).exists()

    replay_run(competition_id=crashed.pk, until_end=True)
    replay_run(competition_id=clean.pk, until_end=True)
    assert _record(crashed) == _record(clean)
    assert Fill.objects.filter(account__participant__competition=crashed).count() >= kept_fills
    for participant in crashed.participants.all():
        account_check_invariant(account=participant.account)
    assert sum(
        Invocation.objects.filter(round__competition=crashed).values_list("cost_usd", flat=True), Decimal(0)
    ) == 0


def test_a_replay_round_stores_its_snapshots_summary_and_rebuilds_what_the_agents_saw(replay_market):
    from marketdata.services import snapshot_from_record
    from marketdata.sources import get_source

    competition = _baselines(replay_market, "snapshots")
    seen = {}
    real = run_module.contexts_build

    def recording(**kwargs):
        seen[kwargs["round_number"]] = kwargs["snapshot"]
        return real(**kwargs)

    with mock.patch.object(run_module, "contexts_build", recording):
        replay_run(competition_id=competition.pk, rounds=5)
    for round_ in Round.objects.filter(competition=competition).select_related("snapshot"):
        payload = round_.snapshot.payload
        assert "candles" not in payload["symbols"]["BTC/USDT"]  # the bars are the dataset's, not copied
        assert payload["symbols"]["BTC/USDT"]["price"] == str(seen[round_.number].prices["BTC/USDT"])
        assert snapshot_from_record(round_.snapshot) == seen[round_.number]
        assert seen[round_.number].symbols["BTC/USDT"].candles  # what the agents saw had them
    # a source with windows of its own is stored whole
    source = get_source("replay", dataset=replay_market, timeframe="1h", base_bars=10)
    assert source.rebuild_key() is None



def test_numbers_never_depend_on_how_rounds_were_grouped_into_transactions(replay_market):
    """The engine computes with exact decimals; the database keeps each column's scale (and
    SQLite 15 significant digits). A round that loads its accounts afresh starts from the
    stored values, so a Book kept in memory must take them at the same steps: a batched
    replay, a replay one round at a time, and rounds that settle on a new Book after the
    market moves (the path of rounds with models) give the same numbers to the last digit.

    A scripted agent adds to its positions every round, so entry prices are averages with
    more digits than any column keeps; it answers in process here (as a read_only cached
    model would), so the first two ways can batch."""
    hours = HOURS
    sizes = ["0.013", "0.007", "0.011", "0.019", "0.003"]  # unequal adds: averages that never end
    adds = [{"reasoning": "add", "actions": [
        {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": sizes[i % 5], "leverage": "2"},
        {"action": "open", "symbol": "ETH/USDT", "side": "short", "quantity": sizes[i % 3] + "1", "leverage": "2"},
    ]} for i in range(hours)]
    ways = {}
    for way, in_process in (("batched", True), ("one round at a time", True), ("models' path", False)):
        competition = _baselines(replay_market, way)
        competition.end_time = START + timedelta(hours=hours)
        competition.funding_rate_pct_8h = Decimal("0.0137")
        competition.save(update_fields=["end_time", "funding_rate_pct_8h"])
        services.participant_register(competition_id=competition.pk, name="adder", llm_provider="scripted",
                                      llm_model="script", llm_config={"decisions": adds})
        batches = {} if way == "batched" else {"replay_batch_open": lambda **_: None}
        with mock.patch.object(run_module, "answers_in_process", lambda *_: in_process), \
                mock.patch("competitions.rounds.invoke.answers_in_process", lambda *_: in_process), \
                mock.patch.multiple(replay_module, REPLAY_BATCH_ROUNDS=13, **batches):
            replay_run(competition_id=competition.pk, until_end=True)
        ways[way] = _record(competition)
    fills = [fill for fill in ways["batched"][0] if fill[0] == "adder"]
    assert len(fills) > 20, "the adder added"
    assert ways["batched"] == ways["one round at a time"] == ways["models' path"]


def test_a_batch_writes_its_orders_at_its_end_and_every_outcome_names_its_own_order(replay_market):
    from trading.models import Order

    competition = _baselines(replay_market, "named")
    services.participant_register(competition_id=competition.pk, name="dice", llm_provider="baseline",
                                  llm_model="random")
    with mock.patch.object(replay_module, "REPLAY_BATCH_ROUNDS", 9):
        replay_run(competition_id=competition.pk, until_end=True)
    orders = {order.pk: order for order in Order.objects.filter(account__participant__competition=competition)}
    assert any(order.market_time > START for order in orders.values()), "orders were made inside batches"
    named = 0
    for invocation in Invocation.objects.filter(round__competition=competition):
        for item in invocation.action_outcomes:
            if "order_id" in item:
                order = orders[item["order_id"]]  # the order exists, and it is this action's
                assert order.invocation_id == invocation.pk
                assert order.client_ref == f"inv{invocation.pk}:{item['index']}"
                assert order.account.participant_id == invocation.participant_id
                named += 1
    assert named == len(orders), "every order is named by exactly one outcome"
