"""round_run: one snapshot for all, agents concurrently, decisions in order, nothing twice."""

import socket
import threading
import time
from datetime import timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import connection, transaction
from django.utils import timezone

from agents.models import Invocation
from competitions import services
from competitions.models import Round
from competitions.rounds import invoke as round_invoke
from competitions.rounds.claim import RoundBusy, holder_gone, lease_owner
from competitions.rounds.run import RoundJob, round_run
from competitions.tests.conftest import HISTORY_BARS, btc_close
from competitions.tests.factories import START, CompetitionFactory
from marketdata.services import snapshot_from_record
from trading.models import EquitySnapshot, Fill, Order
from trading import services as trading_services
from trading.services import account_check_invariant

pytestmark = pytest.mark.django_db(transaction=True)

OPEN_BTC = {"reasoning": "trend up", "actions": [
    {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "0.1", "leverage": "2"}
]}


def _competition(replay_market, **fields):
    defaults = {"dataset": replay_market, "symbols": ["BTC/USDT", "ETH/USDT"], "end_time": START + timedelta(hours=24),
                "fee_pct": Decimal("0"), "spread_bps": Decimal("0"), "slippage_bps": Decimal("0")}
    defaults.update(fields)
    return CompetitionFactory(**defaults)


def _register(competition, name, decisions=None, provider="scripted", model="script"):
    return services.participant_register(
        competition_id=competition.pk, name=name, llm_provider=provider, llm_model=model,
        llm_config={"decisions": decisions or []},
    )


def _started(competition):
    services.competition_start(competition_id=competition.pk)
    competition.refresh_from_db()
    return competition


def test_a_round_gives_every_agent_the_same_snapshot_and_fills_at_its_prices(replay_market):
    competition = _competition(replay_market)
    buyer = _register(competition, "Buyer", [OPEN_BTC])
    holder = _register(competition, "Holder")
    _started(competition)

    round_ = round_run(competition_id=competition.pk, number=0)

    assert round_.status == "completed" and round_.phase == "completed"
    invocations = list(Invocation.objects.filter(round=round_).order_by("participant_id"))
    assert [i.participant_id for i in invocations] == [buyer.pk, holder.pk]
    assert {i.snapshot_id for i in invocations} == {round_.snapshot_id}
    # the snapshot at START uses the bar that closed at START: close of bar HISTORY_BARS - 1
    fill = Fill.objects.get()
    assert fill.price == btc_close(HISTORY_BARS - 1) and fill.quantity == Decimal("0.1")
    assert invocations[0].action_outcomes[0]["status"] == "filled"
    assert EquitySnapshot.objects.filter(round_number=0).count() == 2
    for participant in (buyer, holder):
        account_check_invariant(account=participant.account)


def test_running_the_same_round_again_does_nothing(replay_market):
    competition = _competition(replay_market)
    _register(competition, "Buyer", [OPEN_BTC, OPEN_BTC])
    _started(competition)
    assert round_run(competition_id=competition.pk, number=0) is not None
    assert round_run(competition_id=competition.pk, number=0) is None
    assert Invocation.objects.count() == 1 and Order.objects.count() == 1 and Fill.objects.count() == 1


def test_a_round_crashed_mid_execution_resumes_without_repeating_calls_or_fills(replay_market):
    competition = _competition(replay_market)
    first = _register(competition, "First", [OPEN_BTC])
    second = _register(competition, "Second", [OPEN_BTC])
    _started(competition)

    # the worker dies while the step writes its rows (orders and positions are in, fills not yet)
    from trading import ledger

    real_insert = ledger.insert_rows

    def fills_kill_the_worker(model, rows, **kwargs):
        if model is Fill:
            raise SystemExit("worker killed")
        return real_insert(model, rows, **kwargs)

    with mock.patch.object(ledger, "insert_rows", fills_kill_the_worker):
        with pytest.raises(SystemExit):  # not an Exception: nothing in the round catches it
            round_run(competition_id=competition.pk, number=0)
    round_ = Round.objects.get()
    assert round_.status == "running" and round_.phase == "invoked"
    # the step is one transaction: nothing of it was kept, and no outcome says otherwise
    assert Order.objects.count() == 0 and Fill.objects.count() == 0
    assert {item["status"] for inv in Invocation.objects.all() for item in inv.action_outcomes} == {"pending"}

    # the dead runner's lease has not expired: another runner must wait
    with pytest.raises(RoundBusy):
        round_run(competition_id=competition.pk, number=0)
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=round_.started_at - timedelta(minutes=1))

    with mock.patch("competitions.rounds.invoke.invoke_agent") as invoke:
        resumed = round_run(competition_id=competition.pk, number=0)
    invoke.assert_not_called()  # both agents had answered before the crash
    assert resumed.status == "completed"
    assert Invocation.objects.count() == 2
    assert Fill.objects.filter(account__participant=first).count() == 1
    assert Fill.objects.filter(account__participant=second).count() == 1
    assert Order.objects.count() == 2
    for participant in (first, second):
        account_check_invariant(account=participant.account)


def test_a_round_crashed_while_marking_keeps_nothing_of_its_last_step_and_resumes_once(replay_market):
    competition = _competition(replay_market)
    first = _register(competition, "First", [OPEN_BTC])
    _started(competition)
    with mock.patch.object(RoundJob, "mark", side_effect=SystemExit("worker killed")):
        with pytest.raises(SystemExit):
            round_run(competition_id=competition.pk, number=0)
    round_ = Round.objects.get()
    # execute, mark and complete are one transaction: the fill went with the crash
    assert round_.phase == "invoked" and Fill.objects.count() == 0
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=round_.started_at - timedelta(minutes=1))
    with mock.patch("competitions.rounds.invoke.invoke_agent") as invoke:
        resumed = round_run(competition_id=competition.pk, number=0)
    invoke.assert_not_called()
    assert resumed.status == "completed"
    assert Order.objects.count() == 1 and Fill.objects.count() == 1
    assert EquitySnapshot.objects.filter(account__participant=first, round_number=0).count() == 1


def test_a_round_of_built_in_strategies_is_one_transaction(replay_market):
    """Nothing to keep between steps when no model is asked: a crash anywhere leaves nothing."""
    competition = _competition(replay_market)
    services.participant_register(competition_id=competition.pk, name="Holder", llm_provider="baseline",
                                  llm_model="buy_and_hold")
    _started(competition)
    with mock.patch.object(RoundJob, "mark", side_effect=SystemExit("worker killed")):
        with pytest.raises(SystemExit):
            round_run(competition_id=competition.pk, number=0)
    round_ = Round.objects.get()
    assert round_.phase == "claimed" and round_.snapshot_id is None
    assert Invocation.objects.count() == 0 and Fill.objects.count() == 0
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=round_.started_at - timedelta(minutes=1))
    resumed = round_run(competition_id=competition.pk, number=0)
    assert resumed.status == "completed"
    assert Invocation.objects.count() == 1 and Fill.objects.count() > 0


def test_an_order_made_before_a_crash_is_returned_not_repeated(replay_market):
    """Belt and braces: even if a step's orders survived (client_ref), a re-run reuses them."""
    competition = _competition(replay_market)
    first = _register(competition, "First", [OPEN_BTC])
    _started(competition)
    round_run(competition_id=competition.pk, number=0)
    invocation = Invocation.objects.get()
    Invocation.objects.filter(pk=invocation.pk).update(
        action_outcomes=[{**item, "status": "pending"} for item in invocation.action_outcomes]
    )
    run = RoundJob(competition, Round.objects.get())
    snapshot = snapshot_from_record(run.round.snapshot)
    with transaction.atomic():  # the execute step again, as a resumed runner would
        run.execute(snapshot, trading_services.Book(competition_id=competition.pk, rules=run.rules), None)
    assert Order.objects.count() == 1 and Fill.objects.filter(account__participant=first).count() == 1
    invocation.refresh_from_db()
    assert invocation.action_outcomes[0]["status"] == "filled"


def test_agents_are_invoked_concurrently(replay_market):
    competition = _competition(replay_market)
    for n in range(6):
        _register(competition, f"Agent {n}")
    _started(competition)
    barrier = threading.Barrier(6, timeout=10)
    real_invoke = round_invoke.invoke_agent

    def waits_for_all_others(**kwargs):
        barrier.wait()  # raises BrokenBarrierError unless all six are in flight at once
        return real_invoke(**kwargs)

    with mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=waits_for_all_others):
        round_ = round_run(competition_id=competition.pk, number=0)
    assert set(Invocation.objects.filter(round=round_).values_list("status", flat=True)) == {"success"}


def test_a_hung_agent_is_cut_at_its_deadline_and_the_others_are_unaffected(replay_market):
    competition = _competition(replay_market)
    hung = _register(competition, "Hung")
    fine = _register(competition, "Fine", [OPEN_BTC])
    _started(competition)
    release = threading.Event()
    real_invoke = round_invoke.invoke_agent

    def hangs_for_one(**kwargs):
        if kwargs["context"].participant_id == hung.pk:
            release.wait(30)
        return real_invoke(**kwargs)

    try:
        with (
            mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=hangs_for_one),
            mock.patch("competitions.rounds.invoke._agent_deadline", return_value=0.5),
        ):
            round_ = round_run(competition_id=competition.pk, number=0)
    finally:
        release.set()
    hung_row = Invocation.objects.get(participant=hung, round=round_)
    assert hung_row.status == "timeout" and "cut by the round" in hung_row.error
    assert Invocation.objects.get(participant=fine, round=round_).status == "success"
    assert Fill.objects.filter(account__participant=fine).count() == 1


def test_bad_model_output_becomes_a_recorded_hold(replay_market):
    competition = _competition(replay_market)
    babbler = _register(competition, "Babbler", ["I think BTC will moon!!! {not json"])
    _started(competition)
    round_ = round_run(competition_id=competition.pk, number=0)
    invocation = Invocation.objects.get(participant=babbler, round=round_)
    assert invocation.status == "invalid_response"
    assert not Order.objects.exists() and round_.status == "completed"


def test_rejected_actions_are_recorded_with_a_reason_and_valid_ones_proceed(replay_market):
    competition = _competition(replay_market)
    decision = {"reasoning": "two ideas", "actions": [
        {"action": "open", "symbol": "BTC/USDT", "side": "long", "quantity": "1000", "leverage": "2"},
        {"action": "open", "symbol": "ETH/USDT", "side": "short", "quantity": "1", "leverage": "2"},
    ]}
    trader = _register(competition, "Trader", [decision])
    _started(competition)
    round_ = round_run(competition_id=competition.pk, number=0)
    outcomes = Invocation.objects.get(participant=trader, round=round_).action_outcomes
    assert [o["status"] for o in outcomes] == ["rejected", "filled"]
    assert outcomes[0]["code"] and outcomes[0]["reason"]
    rejected = Order.objects.get(status="rejected")
    assert rejected.symbol == "BTC/USDT" and rejected.reject_reason


def test_a_stop_loss_fires_between_rounds_on_the_bars(replay_market):
    competition = _competition(replay_market, invocation_interval_minutes=180)
    price = btc_close(HISTORY_BARS - 1)
    decision = {"reasoning": "tight stop", "actions": [
        {"action": "open", "symbol": "BTC/USDT", "side": "short", "quantity": "0.1", "leverage": "2",
         "stop_loss": str(price + 15)},
    ]}
    shorty = _register(competition, "Shorty", [decision])
    _started(competition)
    round_run(competition_id=competition.pk, number=0)
    round_run(competition_id=competition.pk, number=1)  # three hourly bars later, price rose 30
    fills = list(Fill.objects.filter(account__participant=shorty).order_by("id"))
    assert [f.reason for f in fills] == ["agent", "stop_loss"]
    # the second bar (open price+10, high price+21) crosses the stop intrabar: filled at the stop
    assert fills[1].price == price + 15


def test_two_runners_firing_the_same_round_at_once_run_it_once(replay_market, postgres_only):
    competition = _competition(replay_market)
    for n in range(3):
        _register(competition, f"Agent {n}", [OPEN_BTC])
    _started(competition)
    results, errors = [], []
    start = threading.Barrier(2)

    def fire():
        try:
            start.wait()
            results.append(round_run(competition_id=competition.pk, number=0))
        except RoundBusy as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Round.objects.count() == 1
    assert Invocation.objects.count() == 3 and Fill.objects.count() == 3
    assert len([r for r in results if r is not None]) == 1


def test_a_round_whose_market_data_fails_is_recorded_failed_and_keeps_nothing(replay_market):
    from marketdata.sources import MarketDataError
    from marketdata.sources.replay import ReplaySource

    competition = _competition(replay_market)
    services.participant_register(competition_id=competition.pk, name="Holder", llm_provider="baseline",
                                  llm_model="buy_and_hold")
    _started(competition)
    assert round_run(competition_id=competition.pk, number=0).status == "completed"
    fills = Fill.objects.count()
    # the bars since the previous round cannot be read: the round fails as a whole
    with mock.patch.object(ReplaySource, "bars", side_effect=MarketDataError("the dataset lost its candles")):
        failed = round_run(competition_id=competition.pk, number=1)
    failed.refresh_from_db()
    assert failed.status == "failed" and "the dataset lost its candles" in failed.detail
    assert failed.snapshot_id is None  # stored in the transaction that rolled back
    assert Invocation.objects.filter(round=failed).count() == 0 and Fill.objects.count() == fills
    assert EquitySnapshot.objects.filter(round_number=1).count() == 0
    # the next round runs as usual, and picks up the market moves the failed one missed
    real_bars = ReplaySource.bars
    starts = []

    def spy(self, symbols, timeframe, start, end):
        starts.append(start)
        return real_bars(self, symbols, timeframe, start, end)

    with mock.patch.object(ReplaySource, "bars", spy):
        assert round_run(competition_id=competition.pk, number=2).status == "completed"
    assert starts == [Round.objects.get(number=0).market_time]


def _dead_pid() -> int:
    """The pid of a process of this host that has exited (and was reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _crashed_round(replay_market):
    """A round whose runner died while settling: running, its lease still valid."""
    competition = _competition(replay_market)
    buyer = _register(competition, "Buyer", [OPEN_BTC])
    _started(competition)
    with mock.patch.object(RoundJob, "mark", side_effect=SystemExit("worker killed")):
        with pytest.raises(SystemExit):
            round_run(competition_id=competition.pk, number=0)
    round_ = Round.objects.get()
    assert round_.status == "running" and round_.lease_expires_at > timezone.now()
    return competition, buyer, round_


def test_a_lease_names_its_host_and_process():
    import os
    import socket

    host, pid, token = lease_owner().split(":")
    assert (host, int(pid)) == (socket.gethostname()[:32], os.getpid()) and token
    assert len(lease_owner()) <= Round._meta.get_field("lease_owner").max_length
    assert not holder_gone(lease_owner())  # this very process


def test_a_round_held_by_a_dead_process_on_this_host_is_resumed_at_once(replay_market):
    competition, buyer, round_ = _crashed_round(replay_market)
    Round.objects.filter(pk=round_.pk).update(lease_owner=f"{socket.gethostname()[:32]}:{_dead_pid()}:killed")
    with mock.patch("competitions.rounds.invoke.invoke_agent") as invoke:
        resumed = round_run(competition_id=competition.pk, number=0)  # no wait for ROUND_LEASE_SECONDS
    invoke.assert_not_called()
    assert resumed.status == "completed"
    assert Fill.objects.filter(account__participant=buyer).count() == 1


def test_a_live_process_or_another_hosts_lease_is_still_waited_for(replay_market):
    import os

    competition, _, round_ = _crashed_round(replay_market)
    here = socket.gethostname()[:32]
    for owner in (f"{here}:{os.getppid()}:alive", f"elsewhere:{_dead_pid()}:unknowable", "an-old-style-owner"):
        Round.objects.filter(pk=round_.pk).update(lease_owner=owner)
        with pytest.raises(RoundBusy):
            round_run(competition_id=competition.pk, number=0)
    # once the other host's lease expires, the round is taken over as before
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert round_run(competition_id=competition.pk, number=0).status == "completed"


def test_an_answer_the_database_refuses_becomes_an_error_invocation_and_the_round_goes_on(replay_market):
    """A model's text the database will not store (a NUL byte on PostgreSQL, say) must not
    take the round down: that agent gets an `error` invocation saying why, the others trade."""
    from django.db import DataError

    competition = _competition(replay_market)
    poisoned = _register(competition, "Poisoned", [OPEN_BTC])
    buyer = _register(competition, "Buyer", [OPEN_BTC])
    _started(competition)
    from agents import services as agent_services

    real_insert_rows = agent_services.insert_rows

    def refuses_the_poisoned_answer(model, rows, *args, **kwargs):
        if any(row.participant_id == poisoned.pk and row.status != "error" for row in rows):
            raise DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        return real_insert_rows(model, rows, *args, **kwargs)

    with mock.patch.object(agent_services, "insert_rows", side_effect=refuses_the_poisoned_answer):
        round_ = round_run(competition_id=competition.pk, number=0)
    assert round_.status == "completed"
    refused = Invocation.objects.get(participant=poisoned, round=round_)
    assert refused.status == "error" and "NUL (0x00)" in refused.error
    assert refused.raw_response == "" and refused.actions_count == 0
    assert Invocation.objects.get(participant=buyer, round=round_).status == "success"
    assert Fill.objects.filter(account__participant=buyer).exists()
    assert not Fill.objects.filter(account__participant=poisoned).exists()


def test_answers_recorded_before_a_crash_are_executed_by_the_runner_that_resumes(replay_market):
    """A runner dies after one model's answer was recorded and before the other's: the next
    runner asks only the second, and executes both."""
    competition = _competition(replay_market)
    first = _register(competition, "First", [OPEN_BTC])
    second = _register(competition, "Second", [OPEN_BTC])
    _started(competition)
    real_invoke = round_invoke.invoke_agent

    def second_kills_the_worker(**kwargs):
        if kwargs["context"].participant_id == second.pk:
            time.sleep(0.5)  # the first answer is recorded meanwhile
            raise SystemExit("worker killed")
        return real_invoke(**kwargs)

    with mock.patch("competitions.rounds.invoke.invoke_agent", side_effect=second_kills_the_worker):
        with pytest.raises(SystemExit):
            round_run(competition_id=competition.pk, number=0)
    round_ = Round.objects.get()
    assert round_.phase == "bars" and list(Invocation.objects.values_list("participant_id", flat=True)) == [first.pk]
    Round.objects.filter(pk=round_.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    resumed = round_run(competition_id=competition.pk, number=0)
    assert resumed.status == "completed"
    assert Fill.objects.filter(account__participant=first).count() == 1
    assert Fill.objects.filter(account__participant=second).count() == 1
