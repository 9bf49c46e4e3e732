"""The round: one service, `round_run`, used by every door (beat, replay, API, admin, demo).

For competition C at market time T:
  1. claim Round(C, number) with a unique row and a lease; an existing completed round is
     left alone, a crashed one (expired lease) is resumed where it stopped;
  2. take one market snapshot at T and store it: every agent sees this same snapshot;
  3. (replay) process every bar closed since the previous round for stops, funding and
     close-out; (live) check stops against the snapshot prices;
  4. invoke all active agents concurrently, each under its own timeout; each answer is
     written as an Invocation row (unique per participant and round), so a resumed round
     never calls an agent twice;
  5. execute the decisions in participant-id order through the trading services, each
     participant's actions and its `executed_at` mark in one transaction, so no fill is
     ever made twice;
  6. mark to market (close-out, liquidation), write equity snapshots, close the round.
Each step commits with the round's `phase`, so a crash repeats at most the step it was in,
and that step's writes were rolled back.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone

from agents.context import AccountView, CompetitionRules, DecisionHistoryItem, LeaderboardLine, PositionView
from agents.decision import action_summary, action_to_dict
from agents.invoke import AgentOutcome, invoke_agent
from agents.models import Invocation
from agents.prompt import build_context
from agents.providers import IN_PROCESS_PROVIDERS
from agents.services import InvocationAnswer, action_counts, invocations_record
from gauntlet.db import update_rows
from gauntlet.errors import ConflictError
from marketdata.services import snapshot_fetch, snapshot_from_record, snapshot_store
from marketdata.snapshot import MarketSnapshot
from marketdata.sources import MarketDataError, get_source
from trading import selectors as trading_selectors
from trading import services as trading_services
from trading.engine import OrderRequest
from trading.models import EquitySnapshot, Position

from . import aggregates
from .models import Competition, Participant, Round

logger = logging.getLogger(__name__)

PHASES = ("claimed", "snapshot", "bars", "invoked", "executed", "marked", "completed")
HISTORY_ITEMS = 6
# Invocation columns a round never reads back (an 8k-token prompt is ~30 kB per row).
PROMPT_COLUMNS = ("system_prompt", "user_prompt", "raw_response")
# Extra wall time past an agent's own timeout (and its retries) before the round stops waiting.
AGENT_GRACE_SECONDS = 10


class RoundBusy(Exception):
    """Another runner holds this round's lease; try again after it expires."""


@dataclass
class RoundTimer:
    started: float

    def lap(self, timings: dict, name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - self.started, 4)
        self.started = now


def round_market_time(competition: Competition, number: int) -> datetime:
    return competition.start_time + timedelta(minutes=competition.invocation_interval_minutes * number)


def round_number_at(competition: Competition, moment: datetime) -> int:
    elapsed = moment - competition.start_time
    return max(0, int(elapsed.total_seconds() // (competition.invocation_interval_minutes * 60)))


def price_source_for(competition: Competition):
    if competition.mode == Competition.Mode.REPLAY:
        return get_source("replay", dataset=competition.dataset, timeframe=competition.timeframe)
    return get_source("live", timeframe=competition.timeframe)


def lease_seconds() -> int:
    """The round lease (settings.ROUND_LEASE_SECONDS), read at call time so tests and workers can set it."""
    return settings.ROUND_LEASE_SECONDS


def _phase_done(round_: Round, phase: str) -> bool:
    return PHASES.index(round_.phase) >= PHASES.index(phase)


def _set_phase(round_: Round, phase: str, **fields) -> None:
    round_.phase = phase
    round_.lease_expires_at = timezone.now() + timedelta(seconds=lease_seconds())
    for name, value in fields.items():
        setattr(round_, name, value)
    round_.save(update_fields=["phase", "lease_expires_at", "timings", *fields])


def round_claim(*, competition_id: int, number: int, market_time: datetime, owner: str) -> Round | None:
    """Claim round `number`: a new row, or a running one whose runner's lease ran out.

    Returns None when the round already finished (beat fired twice; nothing to do) and
    raises RoundBusy while another runner's lease is still valid.
    """
    now = timezone.now()
    lease_until = now + timedelta(seconds=lease_seconds())
    fields = {"competition_id": competition_id, "number": number, "market_time": market_time,
              "lease_owner": owner, "lease_expires_at": lease_until}
    try:
        if transaction.get_connection().in_atomic_block:
            with transaction.atomic():  # a savepoint: a duplicate leaves the caller's transaction usable
                return Round.objects.create(**fields)
        return Round.objects.create(**fields)  # one autocommitted INSERT
    except IntegrityError:
        pass
    round_ = Round.objects.get(competition_id=competition_id, number=number)
    if round_.status != Round.Status.RUNNING:
        return None
    taken = (
        Round.objects.filter(pk=round_.pk, status=Round.Status.RUNNING)
        .filter(Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True) | Q(lease_owner=owner))
        .update(lease_owner=owner, lease_expires_at=lease_until)
    )
    if not taken:
        raise RoundBusy(f"round {number} of competition {competition_id} is being run by another runner")
    round_.refresh_from_db()
    logger.warning("resuming round %s of competition %s after phase %s", number, competition_id, round_.phase)
    return round_


def round_run(
    *,
    competition_id: int,
    number: int,
    market_time: datetime | None = None,
    owner: str | None = None,
    competition: Competition | None = None,
    counts: InvocationCounts | None = None,
    previous_market_time: datetime | None = None,
) -> Round | None:
    """Run (or resume) one round. Returns the round, or None if it had already finished.

    `competition` (the row of competition_id, fresh) saves reading it again; `counts`
    carries the participants' invocation counts from one round to the next;
    `previous_market_time` is the market time of the last round before this one that was
    not skipped or failed, when the caller ran it.
    """
    if competition is None or competition.pk != competition_id:
        competition = Competition.objects.get(pk=competition_id)
    market_time = market_time or round_market_time(competition, number)
    owner = owner or uuid.uuid4().hex
    round_ = round_claim(competition_id=competition_id, number=number, market_time=market_time, owner=owner)
    if round_ is None:
        return None
    _RoundRun(competition, round_, counts=counts, previous_market_time=previous_market_time).run()
    return round_


def round_trigger(*, competition_id: int) -> Round | None:
    """Run the next round now (API and admin, for debugging): live at the wall clock, replay at its clock."""
    from .replay import next_round_number

    competition = Competition.objects.get(pk=competition_id)
    if competition.status != Competition.Status.ACTIVE:
        raise ConflictError(f"the competition is {competition.status}; rounds run only while active", code="not_active")
    number = next_round_number(competition)
    if competition.mode == Competition.Mode.REPLAY:
        market_time = round_market_time(competition, number)
        if market_time >= competition.end_time:
            return competition_finish(competition_id=competition_id, number=number)
        return round_run(competition_id=competition_id, number=number, market_time=market_time)
    now = timezone.now().replace(microsecond=0)
    if now >= competition.end_time:
        raise ConflictError("the competition's end time has passed", code="ended")
    number = max(number, round_number_at(competition, now))
    return round_run(competition_id=competition_id, number=number, market_time=now)


def competition_finish(*, competition_id: int, number: int) -> Round | None:
    """The replay clock reached end_time: a last round at end_time runs the market moves
    since the previous round, closes every position at that mark (`competition_end`) and
    records final equity, without asking the agents; then the competition completes."""
    from .services import competition_stop

    competition = Competition.objects.get(pk=competition_id)
    round_ = round_claim(
        competition_id=competition_id, number=number, market_time=competition.end_time, owner=uuid.uuid4().hex
    )
    if round_ is not None:
        _RoundRun(competition, round_, final=True).run()
    competition.refresh_from_db(fields=["status"])
    if competition.status in {Competition.Status.ACTIVE, Competition.Status.PAUSED}:
        competition_stop(competition_id=competition_id, now=timezone.now())
    return round_


@transaction.atomic
def competition_settle(*, competition: Competition) -> None:
    """Close what is still open at the last round's mark so final results are realised."""
    last = (
        Round.objects.filter(competition=competition, snapshot__isnull=False)
        .exclude(status=Round.Status.FAILED)
        .select_related("snapshot")
        .order_by("-number")
        .first()
    )
    if last is None:
        return
    prices = snapshot_from_record(last.snapshot).prices
    open_accounts = Participant.objects.filter(
        competition=competition, account__positions__is_open=True
    ).distinct()
    for participant in open_accounts:
        trading_services.account_close_all(participant=participant, prices=prices, market_time=last.market_time)
        trading_services.account_mark(
            participant=participant, prices=prices, market_time=last.market_time, round_number=last.number
        )


class InvocationCounts:
    """How many times each participant of a competition has been invoked, for a runner that
    runs its rounds one after the other (the replay loop): counted once, then carried
    forward round by round instead of recounted (a count over every invocation so far
    would make a year of rounds quadratic). forget() when a round ran elsewhere."""

    def __init__(self) -> None:
        self._counts: dict[int, int] | None = None

    def get(self, competition: Competition) -> dict[int, int]:
        if self._counts is None:
            self._counts = dict(
                Invocation.objects.filter(participant__competition=competition)
                .values("participant_id").annotate(count=Count("id")).values_list("participant_id", "count")
            )
        return self._counts

    def add(self, participant_ids: Iterable[int]) -> None:
        if self._counts is not None:
            for pk in participant_ids:
                self._counts[pk] = self._counts.get(pk, 0) + 1

    def forget(self) -> None:
        self._counts = None


class _RoundRun:
    def __init__(
        self,
        competition: Competition,
        round_: Round,
        *,
        final: bool = False,
        counts: InvocationCounts | None = None,
        previous_market_time: datetime | None = None,
    ):
        self.competition = competition
        self.counts = counts
        self.round = round_
        self.final = final
        self.rules = CompetitionRules.from_competition(competition)
        self.symbols = list(competition.symbols)
        self.snapshot: MarketSnapshot | None = None
        self._invocation_counts: dict[int, int] = {}
        self._standings: dict[int, tuple[str, Decimal]] | None = None
        self._views: dict = {}
        self._histories: dict[int, list[DecisionHistoryItem]] = {}
        self._pending: list[Participant] | None = None
        self._source = None
        # where this runner took the round up: from "invoked" on, invocations (and in
        # principle orders) made by an earlier runner may exist
        self._started_phase = round_.phase
        self._cost: Decimal | None = None
        self._recorded: list[Invocation] = []  # the rows this runner wrote for the round
        self._recorded_all = True  # ... and no other runner wrote one
        self.previous_market_time = previous_market_time

    def run(self) -> None:
        """The round's steps in as few transactions as its agents allow.

        1. fetch the snapshot (outside any transaction: a live fetch may take seconds);
        2. one transaction: store it, process the market moves since the previous round
           (and, in the final round, close everything);
        3. ask the agents: models on a thread pool, their answers committed as they arrive
           (a crash never calls a model twice);
        4. one transaction: execute the decisions, mark to market, complete the round.
        When every agent still to answer is a built-in strategy (code, no I/O), 2 to 4 are
        one transaction over one load of the accounts: a crash leaves nothing to repeat.
        """
        round_ = self.round
        round_.timings = dict(round_.timings or {})
        timer = RoundTimer(time.perf_counter())
        try:
            fetched = None
            if not _phase_done(round_, "snapshot"):
                fetched = self._fetch_snapshot()
                if fetched is None:
                    return
                timer.lap(round_.timings, "snapshot_s")
            instant = False
            if not _phase_done(round_, "invoked") and not self.final:
                self._pending = self._pending_participants()
                instant = all(p.llm_provider in IN_PROCESS_PROVIDERS for p in self._pending)
            with transaction.atomic():
                book = self._prepare(fetched, timer, save=not instant)
                if instant:
                    self._invoke_agents(book)
                    timer.lap(round_.timings, "agents_s")
                    self._settle(book, timer)
                    return
            if not _phase_done(round_, "invoked"):
                self._invoke_agents(None)
                timer.lap(round_.timings, "agents_s")
            with transaction.atomic():
                self._settle(None, timer)
        except MarketDataError as exc:
            # what the rolled-back transaction set on the row in memory never happened
            round_.refresh_from_db(fields=["snapshot", "phase"])
            self._fail(f"market data: {exc}")

    @property
    def source(self):
        """The competition's price source, one per round (a replay source checks its
        dataset's revision once, not at every use)."""
        if self._source is None:
            self._source = price_source_for(self.competition)
        return self._source

    # -- steps -------------------------------------------------------------------------

    def _fetch_snapshot(self) -> tuple[MarketSnapshot, str] | None:
        competition, round_ = self.competition, self.round
        source = self.source
        if competition.market_hours_only and not any(
            source.is_tradable(symbol, round_.market_time) for symbol in self.symbols
        ):
            self._finish(Round.Status.SKIPPED, "every market of this competition is closed at this time")
            return None
        return snapshot_fetch(
            source=source, symbols=self.symbols, at=round_.market_time,
            dataset=competition.dataset if competition.mode == Competition.Mode.REPLAY else None,
        )

    def _book(self, book: trading_services.Book | None) -> trading_services.Book:
        return book if book is not None else trading_services.Book(self.competition)

    def _prepare(self, fetched, timer: RoundTimer, *, save: bool) -> trading_services.Book | None:
        """Store the snapshot and process the market moves; one UPDATE of the round row
        (none with save=False: the round's completion in this transaction saves it all)."""
        round_ = self.round
        book = None
        if fetched is not None:
            snapshot, dataset = fetched
            round_.snapshot = snapshot_store(snapshot=snapshot, dataset=dataset)
            round_.phase = "snapshot"
            # what every agent sees; a snapshot survives its stored form unchanged
            # (marketdata tests prove it), so a resumed round sees the same
            self.snapshot = snapshot
        else:
            self.snapshot = snapshot_from_record(round_.snapshot)
        changed = fetched is not None
        if not _phase_done(round_, "bars"):
            # in a round that is one transaction, its writes go with the settling step's
            book = self._process_market_moves(book, flush=save)
            round_.phase = "bars"
            changed = True
            timer.lap(round_.timings, "bars_s")
        if self.final and not _phase_done(round_, "executed"):
            book = self._book(book)
            book.close_all(prices=self.snapshot.prices, market_time=round_.market_time)
            book.flush()
            round_.phase = "executed"
            changed = True
        if changed and save:
            _set_phase(round_, round_.phase, **({"snapshot": round_.snapshot} if fetched is not None else {}))
        return book

    def _previous_market_time(self) -> datetime | None:
        if self.previous_market_time is not None:  # the runner ran the round before
            return self.previous_market_time
        previous = (
            Round.objects.filter(competition=self.competition, number__lt=self.round.number)
            # a skipped or failed round processed no market moves: the next one picks them up
            .exclude(status__in=[Round.Status.SKIPPED, Round.Status.FAILED])
            .order_by("-number")
            .values_list("market_time", flat=True)
            .first()
        )
        return previous

    def _process_market_moves(
        self, book: trading_services.Book | None, *, flush: bool = True
    ) -> trading_services.Book | None:
        """Stops, take-profits, funding and close-out for the time since the previous round,
        for the active participants (only open positions have any of these)."""
        previous = self._previous_market_time()
        if previous is None:
            return book
        book = self._book(book)
        active = [
            account.participant_id for account in book.accounts
            if account.participant.status == Participant.Status.ACTIVE and book.states[account.pk].positions
        ]
        if not active:
            return book
        prices = self.snapshot.prices
        if self.competition.mode == Competition.Mode.REPLAY:
            # bar by bar: stops and take-profits intrabar, close-out at the close, then the
            # funding moments inside the bar for what is still open
            bars = self.source.bars(
                self.symbols, self.competition.timeframe, previous, self.round.market_time
            )
        else:
            # live: the last price is a degenerate bar, so stops fire when it crosses them
            bars = [(self.round.market_time, {symbol: _price_bar(price) for symbol, price in prices.items()})]
        book.process_bars(participant_ids=active, bars=bars, start=previous, prices=prices)
        if flush:
            book.flush()
        return book

    def _participants(self, *, active_only: bool):
        queryset = Participant.objects.filter(competition=self.competition).order_by("id")
        if active_only:
            queryset = queryset.filter(status=Participant.Status.ACTIVE)
        return queryset

    def _pending_participants(self) -> list[Participant]:
        """Active participants without an invocation in this round yet."""
        done = Invocation.objects.filter(round=self.round, participant=OuterRef("pk"))
        return list(self._participants(active_only=True).exclude(Exists(done)))

    def _invoke_agents(self, book: trading_services.Book | None) -> None:
        round_ = self.round
        pending = self._pending if self._pending is not None else self._pending_participants()
        if pending:
            if self.counts is not None:
                self._invocation_counts = self.counts.get(self.competition)
            else:
                self._invocation_counts = dict(
                    Invocation.objects.filter(participant__in=pending)
                    .values("participant_id").annotate(count=Count("id")).values_list("participant_id", "count")
                )
            self._standings = self._latest_equity() if self.competition.prompt_leaderboard else None
            prices = self.snapshot.prices
            self._views = (
                book.views(prices=prices) if book is not None
                else trading_selectors.account_views(competition=self.competition, prices=prices)
            )
            self._histories = _decision_histories(self.competition, before_round=self.round.number)
            contexts = {p.pk: self._context_for(p) for p in pending}
            self._invoke_concurrently(pending, contexts)
        if book is not None:  # inside the round's one transaction: saved when it completes
            round_.phase = "invoked"
            return
        with transaction.atomic():
            _set_phase(round_, "invoked")

    def _invoke_concurrently(self, pending: list[Participant], contexts: dict) -> None:
        """Every model at once on a thread pool; rows are written here, on this thread, as
        answers arrive (all the answers that arrived together in one INSERT).

        Built-in strategies are code, not models: no I/O, microseconds each. They answer on
        this thread while the models think, from the same snapshot and through the same
        parser, so the round's wall time still tracks the slowest model.
        """
        keys = {p.pk: p.api_key() for p in pending}
        models = [p for p in pending if p.llm_provider not in IN_PROCESS_PROVIDERS]
        built_in = [p for p in pending if p.llm_provider in IN_PROCESS_PROVIDERS]
        started = time.perf_counter()
        pool = ThreadPoolExecutor(max_workers=min(64, len(models)), thread_name_prefix="agent") if models else None
        futures = {}
        for participant in models:
            future = pool.submit(
                _timed_invoke, participant.llm_provider, participant.llm_model, participant.llm_config,
                keys[participant.pk], contexts[participant.pk],
            )
            futures[future] = participant
        try:
            answers = []
            for participant in built_in:
                outcome, _ = _timed_invoke(
                    participant.llm_provider, participant.llm_model, participant.llm_config,
                    keys[participant.pk], contexts[participant.pk],
                )
                answers.append((participant, outcome))
            self._record(answers, contexts)
            if not futures:
                return
            deadline = started + max(_agent_deadline(p) for p in models)
            remaining = set(futures)
            while remaining:
                budget = deadline - time.perf_counter()
                if budget <= 0:
                    break
                finished, remaining = wait(remaining, timeout=min(budget, lease_seconds() / 4), return_when="FIRST_COMPLETED")
                self._renew_lease()
                self._record([(futures[f], f.result()[0]) for f in finished], contexts)
            waited = time.perf_counter() - started
            # a hung model: cut at the round's deadline
            self._record([(futures[f], _timeout_outcome(futures[f], waited)) for f in remaining], contexts)
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _record(self, answers: list[tuple[Participant, AgentOutcome]], contexts: dict) -> None:
        # Inside the round's one transaction, a row already there means another runner took
        # this round over: fail the whole attempt rather than settle the round twice.
        in_round_transaction = transaction.get_connection().in_atomic_block
        recorded = invocations_record([
            InvocationAnswer(
                participant_id=participant.pk, round_id=self.round.pk, snapshot_id=self.round.snapshot_id,
                provider=participant.llm_provider, model=participant.llm_model,
                context=contexts[participant.pk], outcome=outcome,
            )
            for participant, outcome in answers
        ], look_up_conflicts=not in_round_transaction)
        self._recorded.extend(row for row, created in recorded if created)
        self._recorded_all = self._recorded_all and all(created for _, created in recorded)
        if self.counts is not None:
            self.counts.add(row.participant_id for row, created in recorded if created)

    def _renew_lease(self) -> None:
        Round.objects.filter(pk=self.round.pk).update(
            lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds())
        )

    def _context_for(self, participant: Participant):
        prices = self.snapshot.prices
        view = self._views.get(participant.pk)
        if view is None:  # registered after the views were read
            view = trading_selectors.account_view(participant=participant, prices=prices)
        account = _account_view(view, self.competition.initial_capital)
        history = self._histories.get(participant.pk, [])
        leaderboard = self._leaderboard_lines(participant) if self.competition.prompt_leaderboard else None
        invocation_index = self._invocation_counts.get(participant.pk, 0)
        return build_context(
            rules=self.rules, snapshot=self.snapshot, account=account, now=self.round.market_time,
            history=history, leaderboard=leaderboard, participant_id=participant.pk,
            invocation_index=invocation_index, provider=participant.llm_provider,
        )

    def _latest_equity(self) -> dict[int, tuple[str, Decimal]]:
        """participant id -> (name, equity at its latest mark): one query per round, reading
        one snapshot per participant, not the whole equity history."""
        latest = (
            EquitySnapshot.objects.filter(account__participant=OuterRef("pk"))
            .order_by("-market_time", "-id")
            .values("equity")[:1]
        )
        rows = (
            Participant.objects.filter(competition=self.competition)
            .annotate(latest_equity=Subquery(latest))
            .filter(latest_equity__isnull=False)
            .values_list("id", "name", "latest_equity")
        )
        return {participant_id: (name, equity) for participant_id, name, equity in rows}

    def _leaderboard_lines(self, participant: Participant) -> list[LeaderboardLine]:
        """Standings by equity at the previous mark (what every agent can know now)."""
        capital = self.competition.initial_capital
        latest = self._standings if self._standings is not None else self._latest_equity()
        ranked = sorted(latest.items(), key=lambda item: item[1][1], reverse=True)
        return [
            LeaderboardLine(
                rank=rank, name=name, equity=equity,
                return_pct=((equity - capital) / capital * 100).quantize(Decimal("0.01")),
                is_you=participant_id == participant.pk,
            )
            for rank, (participant_id, (name, equity)) in enumerate(ranked, start=1)
        ]

    def _execute_decisions(self, book: trading_services.Book) -> None:
        """Each participant's pending actions, in participant-id order, at the snapshot prices.

        Runs inside the round's settling transaction: the orders, fills and the invocations'
        outcomes are written together with the mark and the completion, or not at all.
        Orders also carry client_ref "inv<invocation>:<action index>", so even a step run
        twice returns the orders already made instead of filling twice.
        """
        if PHASES.index(self._started_phase) < PHASES.index("invoked") and self._recorded_all:
            # every invocation of the round is one this runner just wrote
            invocations = sorted(self._recorded, key=lambda invocation: invocation.participant_id)
        else:
            invocations = list(
                Invocation.objects.filter(round=self.round)
                .only("id", "participant_id", "action_outcomes", "cost_usd", "actions_count", "rejected_actions_count")
                .order_by("participant_id")
            )
        changed: list[Invocation] = []
        pending: list[tuple[Invocation, dict]] = []
        actions: list[trading_services.RoundAction] = []
        self._cost = sum((invocation.cost_usd for invocation in invocations), Decimal(0))
        for invocation in invocations:
            items = [item for item in invocation.action_outcomes or [] if item.get("status") == "pending"]
            if items:
                changed.append(invocation)
            for item in items:
                try:
                    action = _round_action(invocation, item)
                except (ArithmeticError, TypeError, ValueError) as exc:
                    item.update({"status": "rejected", "code": "invalid_action", "reason": str(exc)[:300]})
                    continue
                if action is None:
                    kind = (item.get("action") or {}).get("action")
                    item.update({"status": "rejected", "code": "unknown_action", "reason": f"unknown action {kind!r}"})
                    continue
                pending.append((invocation, item))
                actions.append(action)
        results = book.execute(
            actions, prices=self.snapshot.prices, market_time=self.round.market_time,
            is_market_open=self._market_open,
            # invocations made by this runner cannot have orders yet: settling is one
            # transaction with completing, and this round is not complete
            check_done=PHASES.index(self._started_phase) >= PHASES.index("invoked"),
            instruments=self.source.instruments.instrument,  # the catalogue, cached per process
        )
        book.flush()  # the orders get their ids before the outcomes name them
        for (_, item), result in zip(pending, results, strict=True):
            item.update(_action_outcome(result))
        for invocation in changed:
            invocation.actions_count, invocation.rejected_actions_count = action_counts(invocation.action_outcomes)
        if changed:
            update_rows(Invocation, changed, ["action_outcomes", "actions_count", "rejected_actions_count"])
        self.round.phase = "executed"

    def _market_open(self, symbol: str) -> bool:
        if not self.competition.market_hours_only:
            return True
        return self.source.is_tradable(symbol, self.round.market_time)

    def _settle(self, book: trading_services.Book | None, timer: RoundTimer) -> None:
        """Execute the decisions, mark to market, complete: inside the caller's transaction."""
        round_ = self.round
        if not _phase_done(round_, "executed"):
            book = self._book(book)
            self._execute_decisions(book)
            timer.lap(round_.timings, "execute_s")
        if not _phase_done(round_, "marked"):
            book = self._book(book)
            self._mark(book)
            timer.lap(round_.timings, "mark_s")
        self._complete()

    def _mark(self, book: trading_services.Book) -> None:
        disqualified = [
            account.participant_id for account in book.accounts
            if account.participant.status == Participant.Status.DISQUALIFIED
        ]
        snapshots = book.mark(
            prices=self.snapshot.prices, market_time=self.round.market_time, round_number=self.round.number,
            exclude_participant_ids=disqualified,
        )
        book.flush()
        EquitySnapshot.objects.bulk_create(snapshots)
        self.round.phase = "marked"

    def _complete(self) -> None:
        cost = self._cost
        if cost is None:  # executed before a restart: read it back
            cost = Invocation.objects.filter(round=self.round).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
        with transaction.atomic(savepoint=False):  # part of the settling transaction
            self.round.llm_cost_usd = cost
            # the mids, for the buy-and-hold benchmark (aggregates.snapshot_prices' form)
            self.round.prices = {symbol: str(price) for symbol, price in self.snapshot.prices.items()}
            self._finish(Round.Status.COMPLETED, "")
            if _fold_due(self.competition.pk, final=self.final):
                aggregates.participants_fold(competition_id=self.competition.pk)
            Competition.objects.filter(pk=self.competition.pk).filter(
                Q(market_time__isnull=True) | Q(market_time__lt=self.round.market_time)
            ).update(market_time=self.round.market_time)

    def _finish(self, status: str, detail: str) -> None:
        round_ = self.round
        round_.status = status
        round_.detail = detail
        round_.phase = "completed"
        round_.finished_at = timezone.now()
        round_.lease_owner = ""
        round_.lease_expires_at = None
        round_.save()

    def _fail(self, detail: str) -> None:
        logger.warning("round %s of competition %s failed: %s", self.round.number, self.competition.pk, detail)
        self._finish(Round.Status.FAILED, detail)


# Participants' stored aggregates are folded at most this often per competition and process:
# a replay runs tens of rounds a second, and pages fold whatever a fold has not reached yet.
AGGREGATE_FOLD_SECONDS = 1.0
_last_fold: dict[int, float] = {}


def _fold_due(competition_id: int, *, final: bool) -> bool:
    now = time.monotonic()
    if final or now - _last_fold.get(competition_id, -AGGREGATE_FOLD_SECONDS) >= AGGREGATE_FOLD_SECONDS:
        _last_fold[competition_id] = now
        return True
    return False


@dataclass(frozen=True)
class _PriceBar:
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


def _price_bar(price: Decimal) -> _PriceBar:
    """A last price as a degenerate bar: live stops trigger when the last price crosses."""
    return _PriceBar(price, price, price, price)


def _dec(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _round_action(invocation: Invocation, item: dict) -> trading_services.RoundAction | None:
    """A pending outcome item's validated action as a trading action (None: unknown kind)."""
    action = item.get("action") or {}
    kind = action.get("action")
    common = {
        "participant_id": invocation.participant_id, "symbol": action.get("symbol", ""),
        "invocation_id": invocation.pk, "client_ref": f"inv{invocation.pk}:{item.get('index', 0)}",
    }
    if kind == "open":
        request = OrderRequest(
            symbol=common["symbol"], side="buy" if action.get("side") == "long" else "sell",
            quantity=_dec(action.get("quantity")), notional_usd=_dec(action.get("notional_usd")),
            leverage=_dec(action.get("leverage")) or Decimal(1),
            stop_loss=_dec(action.get("stop_loss")), take_profit=_dec(action.get("take_profit")),
        )
        return trading_services.RoundAction(kind="open", order_request=request, **common)
    if kind == "close":
        return trading_services.RoundAction(kind="close", quantity=_dec(action.get("quantity")), **common)
    if kind == "update_exit":
        return trading_services.RoundAction(
            kind="update_exit", stop_loss=_dec(action.get("stop_loss")),
            take_profit=_dec(action.get("take_profit")), **common,
        )
    return None


def _action_outcome(result: trading_services.RoundActionResult) -> dict:
    order = result.order
    if order is None:
        if result.rejection is not None:
            return {"status": "rejected", "code": str(result.rejection.code), "reason": result.rejection.reason}
        return {"status": "applied"}
    if order.status == "rejected":
        return {"status": "rejected", "order_id": order.pk, "code": order.reject_code, "reason": order.reject_reason}
    fills = [
        {"price": str(f.price), "quantity": str(f.quantity), "side": f.side, "fee": str(f.fee),
         "realised_pnl": str(f.realised_pnl), "reason": f.reason}
        for f in result.fills
    ]
    return {"status": "filled", "order_id": order.pk, "fills": fills}


def _timed_invoke(provider, model, config, api_key, context) -> tuple[AgentOutcome, float]:
    started = time.perf_counter()
    outcome = invoke_agent(provider=provider, model=model, config=config, api_key=api_key, context=context)
    return outcome, time.perf_counter() - started


def _agent_deadline(participant: Participant) -> float:
    config = participant.llm_config or {}
    try:
        timeout = float(config.get("timeout_seconds", 60))
    except (TypeError, ValueError):
        timeout = 60.0
    # the provider retries up to twice with backoff; allow for all of it, then cut
    return timeout * 3 + 7 + AGENT_GRACE_SECONDS


def _timeout_outcome(participant: Participant, waited: float) -> AgentOutcome:
    from agents.decision import hold_decision
    from agents.providers.base import AgentResponse

    error = f"no answer within {waited:.1f} s: cut by the round"
    response = AgentResponse(raw_text="", status="timeout", error=error)
    return AgentOutcome("timeout", hold_decision(), response, error=error)


def _account_view(view, initial_capital: Decimal) -> AccountView:
    positions = tuple(
        PositionView(
            symbol=p.symbol, side=p.side, size=p.quantity, entry_price=p.entry_price, mark_price=p.mark_price,
            unrealized_pnl=p.unrealised_pnl, leverage=p.leverage, initial_margin=p.initial_margin,
            liquidation_price=p.liquidation_price, stop_loss=p.stop_loss, take_profit=p.take_profit,
            opened_at=p.opened_at,
        )
        for p in view.positions
    )
    margin_level = None if view.margin_level is None else (view.margin_level * 100).quantize(Decimal("0.01"))
    return AccountView(
        cash=view.cash, equity=view.equity, used_margin=view.used_margin, free_margin=view.free_margin,
        margin_level_pct=margin_level,
        return_pct=((view.equity - initial_capital) / initial_capital * 100).quantize(Decimal("0.0001")),
        positions=positions, realized_pnl=view.cash - initial_capital,
    )


def _decision_histories(competition: Competition, *, before_round: int) -> dict[int, list[DecisionHistoryItem]]:
    """Every agent's last few actions and what became of them, oldest first: one query.

    An agent answers at most once a round, so the last HISTORY_ITEMS rounds hold its last
    HISTORY_ITEMS invocations."""
    recent = (
        Invocation.objects.filter(
            round__competition=competition, round__number__lt=before_round,
            round__number__gte=before_round - HISTORY_ITEMS,
        )
        .order_by("round__number", "participant_id")
        .values_list("participant_id", "status", "error", "action_outcomes", "round__number", "round__market_time")
    )
    by_participant: dict[int, list] = {}
    for row in recent:
        by_participant.setdefault(row[0], []).append(_PastInvocation(*row[1:]))
    return {pk: _history_items(invocations) for pk, invocations in by_participant.items()}


@dataclass(frozen=True)
class _PastInvocation:
    status: str
    error: str
    action_outcomes: list
    round_number: int
    market_time: datetime


def _history_items(invocations) -> list[DecisionHistoryItem]:
    items: list[DecisionHistoryItem] = []
    for invocation in invocations:
        if invocation.status != Invocation.Status.SUCCESS:
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time, action="(none)",
                    outcome=invocation.status, detail=(invocation.error or "")[:200],
                )
            )
            continue
        outcomes = invocation.action_outcomes or []
        if not outcomes:
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time, action="hold", outcome="hold"
                )
            )
        for outcome in outcomes:
            items.append(
                DecisionHistoryItem(
                    round_number=invocation.round_number, at=invocation.market_time,
                    action=outcome.get("summary", ""), outcome=outcome.get("status", ""),
                    detail=outcome.get("reason", "") or outcome.get("detail", ""),
                )
            )
    return items[-HISTORY_ITEMS:]


__all__ = [
    "PHASES", "RoundBusy", "round_claim", "round_run", "round_market_time", "round_number_at",
    "price_source_for", "action_summary", "action_to_dict",
]
