"""The round: one service, `round_run`, used by every door (beat, replay, API, admin, demo).

For competition C at market time T:
  1. claim Round(C, number) with a unique row and a lease (claim.py); an existing completed
     round is left alone, a crashed one is resumed where it stopped;
  2. take one market snapshot at T and store it: every agent sees this same snapshot;
  3. (replay) process every bar closed since the previous round for stops, funding and
     close-out; (live) check stops against the snapshot prices;
  4. invoke all active agents concurrently, each under its own timeout (invoke.py); each
     answer is written as an Invocation row (unique per participant and round), so a
     resumed round never calls an agent twice;
  5. execute the decisions in participant-id order through the trading Book (execute.py),
     the actions and the invocations' outcomes in one transaction, so no fill is ever made
     twice;
  6. mark to market (close-out, liquidation), write equity snapshots, close the round.
Each step commits with the round's `phase`, so a crash repeats at most the step it was in,
and that step's writes were rolled back.

The steps are functions over a `RoundJob` (what the runner knows, fixed once set up); what
one step hands the next is passed and returned (the snapshot, the Book, the recorded
invocations, the cost), not kept on a mutable object.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, Sum
from django.utils import timezone

from agents.context import CompetitionRules, PastInvocation
from agents.models import Invocation
from agents.invoke import answers_in_process
from agents.prompt import HISTORY_LIMIT
from gauntlet.db import insert_rows, update_rows
from marketdata.masking import masked_source
from marketdata.services import snapshot_fetch, snapshot_from_record, snapshot_store
from marketdata.snapshot import MarketSnapshot
from marketdata.sources import MarketDataError, get_source
from trading import engine
from trading.models import EquitySnapshot
from trading.services import Book

from .. import aggregates, services
from ..models import Competition, Participant, Round
from ..rules import trading_rules
from .claim import PHASES, lease_owner, phase_done, phase_set, round_claim
from .clock import round_market_time
from .context import InvocationCounts, contexts_build, past_invocations
from .execute import INVOCATION_FIELDS, OutcomeWrites, decisions_execute
from .invoke import Recorded, agents_invoke

logger = logging.getLogger(__name__)

# Participants' stored aggregates are folded at most this often per competition and process:
# a replay runs tens of rounds a second, and pages fold whatever a fold has not reached yet.
AGGREGATE_FOLD_SECONDS = 1.0
_last_fold: dict[int, float] = {}

# the Round fields a run of the round changes
ROUND_RUN_FIELDS = ("status", "detail", "phase", "snapshot", "finished_at", "timings", "llm_cost_usd", "prices",
                    "lease_owner", "lease_expires_at")


def price_source_for(competition: Competition):
    if competition.mode == Competition.Mode.REPLAY:  # a masked competition sees its masked world
        return masked_source(get_source("replay", dataset=competition.dataset, timeframe=competition.timeframe),
                             competition.mask)
    return get_source("live", timeframe=competition.timeframe)


def round_run(
    *,
    competition_id: int,
    number: int,
    market_time: datetime | None = None,
    owner: str | None = None,
    competition: Competition | None = None,
    counts: InvocationCounts | None = None,
    previous_market_time: datetime | None = None,
    final: bool = False,
    batch: ReplayBatch | None = None,
) -> Round | None:
    """Run (or resume) one round. Returns the round, or None if it had already finished.

    `competition` (the row of competition_id, fresh) saves reading it again; `counts`
    carries the participants' invocation counts from one round to the next;
    `previous_market_time` is the market time of the last round before this one that was
    not skipped or failed, when the caller ran it. `final` is the replay's last round at
    end_time: the market moves since the previous round, every position closed at the
    mark, final equity, and no agent asked (competition_finish).

    `batch`: the round is one of a batch of replay rounds run in the caller's one
    transaction (replay.py), over the batch's Book; it must be a new round (RoundExists
    otherwise).
    """
    if competition is None or competition.pk != competition_id:
        competition = Competition.objects.get(pk=competition_id)
    market_time = market_time or round_market_time(competition, number)
    round_ = round_claim(
        competition_id=competition_id, number=number, market_time=market_time, owner=owner or lease_owner(),
        new_only=batch is not None,
    )
    if round_ is None:
        return None
    job = RoundJob(competition, round_, final=final, counts=counts, previous_market_time=previous_market_time,
                   batch=batch)
    if batch is not None:
        job.run_in_batch()
    else:
        job.run()
    return round_


@dataclass
class ReplayBatch:
    """What the rounds of one batch share: replay rounds whose agents all answer in process
    (built-in strategies, and models answered only from a read_only decision cache: no model
    called, nothing paid), run one after the other in ONE transaction.

    The accounts are locked and loaded once for the batch (the Book), the participants
    read once, and each agent's recent invocations carried from round to round instead of
    read again. A crash anywhere in the batch rolls all of it back: the next runner starts
    at the batch's first round, with nothing called or filled twice.
    """

    book: Book
    participants: list[Participant]  # active at the start of the batch, in id order
    past: dict[int, list[PastInvocation]]  # participant id -> its last HISTORY_LIMIT rounds' invocations
    liquidations_written: set[int] = field(default_factory=set)
    source: object = None  # the competition's price source, one for the batch (its dataset read once)
    # rows the batch's rounds made, written once at its end (flush): inside the batch's one
    # transaction nothing reads them back, so a batch is a few statements, not a few per round
    equity: list[EquitySnapshot] = field(default_factory=list)
    finished: list[Round] = field(default_factory=list)
    outcomes: OutcomeWrites = field(default_factory=OutcomeWrites)  # the invocations' outcomes, once orders have ids

    def pending(self) -> list[Participant]:
        gone = set(self.book.liquidated)
        return [participant for participant in self.participants if participant.pk not in gone]

    def flush(self, competition: Competition) -> None:
        """Write what the batch's rounds left in memory: the ledger's rows (orders, positions,
        fills, entries, cash), the invocations' outcomes naming those orders, the equity
        snapshots, the rounds' completions and the competition's market time."""
        self.book.flush()
        self.outcomes.write()
        insert_rows(EquitySnapshot, self.equity, returning=False)  # read back by id order only
        update_rows(Round, self.finished, ROUND_RUN_FIELDS)
        completed = [round_.market_time for round_ in self.finished if round_.status == Round.Status.COMPLETED]
        if completed:
            _market_time_advance(competition.pk, max(completed))
        self.equity, self.finished = [], []

    def remember(self, round_: Round, rows: list[Invocation]) -> None:
        """The round's invocations, executed, as the next round's decision history reads them."""
        oldest = round_.number + 1 - HISTORY_LIMIT
        for row in sorted(rows, key=lambda invocation: invocation.participant_id):
            past = self.past.setdefault(row.participant_id, [])
            past.append(PastInvocation(row.status, row.error, row.action_outcomes, round_.number, round_.market_time))
            while past and past[0].round_number < oldest:
                past.pop(0)


def replay_batch_open(*, competition: Competition, rules: engine.Rules, next_number: int) -> ReplayBatch | None:
    """A batch for the rounds from `next_number` on, inside the caller's transaction; None
    when a model may be called (its calls must be committed as they are answered)."""
    participants = list(
        Participant.objects.filter(competition=competition, status=Participant.Status.ACTIVE).order_by("id")
    )
    if not participants or not all(answers_in_process(p.llm_provider, p.llm_config) for p in participants):
        return None
    book = Book(competition_id=competition.pk, rules=rules)
    return ReplayBatch(book=book, participants=participants,
                       past=past_invocations(competition, before_round=next_number))


@dataclass
class RoundTimer:
    started: float

    def lap(self, timings: dict, name: str) -> None:
        now = time.perf_counter()
        timings[name] = round(now - self.started, 4)
        self.started = now


@dataclass
class RoundJob:
    """One runner's run of one round: what it knows before the first step."""

    competition: Competition
    round: Round
    final: bool = False
    counts: InvocationCounts | None = None
    previous_market_time: datetime | None = None  # when the runner ran the round before
    batch: ReplayBatch | None = None
    # where this runner took the round up: from "invoked" on, invocations (and in
    # principle orders) made by an earlier runner may exist
    started_phase: str = field(init=False)
    agent_rules: CompetitionRules = field(init=False)
    rules: engine.Rules = field(init=False)
    _source: object = field(init=False, default=None)
    _liquidations_written: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.started_phase = self.round.phase
        self.agent_rules = CompetitionRules.from_competition(self.competition)
        self.rules = trading_rules(self.competition)
        if self.batch is not None:  # liquidations are recorded once per batch, not per round
            self._liquidations_written = self.batch.liquidations_written

    @property
    def source(self):
        """The competition's price source, one per round (a replay source checks its
        dataset's revision once, not at every use)."""
        if self._source is None and self.batch is not None:
            if self.batch.source is None:
                self.batch.source = price_source_for(self.competition)
            self._source = self.batch.source
        if self._source is None:
            self._source = price_source_for(self.competition)
        return self._source

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
            if not phase_done(round_, "snapshot"):
                fetched = self.snapshot_fetch()
                if fetched is None:
                    return
                timer.lap(round_.timings, "snapshot_s")
            pending = None
            instant = False
            if not phase_done(round_, "invoked") and not self.final:
                pending = self.pending_participants()
                instant = all(answers_in_process(p.llm_provider, p.llm_config) for p in pending)
            with transaction.atomic():
                snapshot, book = self.prepare(fetched, timer, save=not instant)
                if instant:
                    recorded = self.invoke(snapshot, pending, book)
                    timer.lap(round_.timings, "agents_s")
                    self.settle(snapshot, book, recorded, timer)
                    return
            recorded = None
            if not phase_done(round_, "invoked"):
                recorded = self.invoke(snapshot, pending, None)
                timer.lap(round_.timings, "agents_s")
            with transaction.atomic():
                self.settle(snapshot, None, recorded, timer)
        except MarketDataError as exc:
            # what the rolled-back transaction set on the row in memory never happened
            round_.refresh_from_db(fields=["snapshot", "phase"])
            self.fail(f"market data: {exc}")

    def run_in_batch(self) -> None:
        """The round inside its batch's transaction, over the batch's Book: the steps of the
        one-transaction round of built-in strategies, nothing committed here."""
        batch, round_ = self.batch, self.round
        round_.timings = {}
        timer = RoundTimer(time.perf_counter())
        try:
            fetched = self.snapshot_fetch()
        except MarketDataError as exc:  # nothing of this round was done yet but its claim
            self.fail(f"market data: {exc}")
            return
        if fetched is None:
            return
        timer.lap(round_.timings, "snapshot_s")
        snapshot, book = self.prepare(fetched, timer, save=False, book=batch.book)
        recorded = self.invoke(snapshot, batch.pending(), book)
        timer.lap(round_.timings, "agents_s")
        self.settle(snapshot, book, recorded, timer)
        batch.remember(round_, recorded.rows)

    # -- 1-2: snapshot and market moves ---------------------------------------------------

    def snapshot_fetch(self) -> tuple[MarketSnapshot, str] | None:
        competition, round_, source = self.competition, self.round, self.source
        symbols = list(competition.symbols)
        if competition.market_hours_only and not any(
            source.is_tradable(symbol, round_.market_time) for symbol in symbols
        ):
            self.finish(Round.Status.SKIPPED, "every market of this competition is closed at this time")
            return None
        return snapshot_fetch(
            source=source, symbols=symbols, at=round_.market_time,
            dataset=competition.dataset if competition.mode == Competition.Mode.REPLAY else None,
        )

    def book(self, book: Book | None) -> Book:
        return book if book is not None else Book(competition_id=self.competition.pk, rules=self.rules)

    def flush(self, book: Book) -> None:
        """Write the Book's rows (a batch's at its end), then the liquidations it found on
        the participants."""
        if self.batch is None:
            book.flush()
        new = [pk for pk in book.liquidated if pk not in self._liquidations_written]
        if new:
            services.participants_liquidate(participant_ids=new)
            self._liquidations_written.update(new)

    def prepare(
        self, fetched, timer: RoundTimer, *, save: bool, book: Book | None = None
    ) -> tuple[MarketSnapshot, Book | None]:
        """Store the snapshot and process the market moves; one UPDATE of the round row
        (none with save=False: the round's completion in this transaction saves it all)."""
        round_ = self.round
        if fetched is not None:
            snapshot, dataset = fetched
            # a replay's market is a function of (dataset, time): stored as its summary, rebuilt on demand
            rebuild = getattr(self.source, "rebuild_key", lambda: None)()
            round_.snapshot = snapshot_store(snapshot=snapshot, dataset=dataset, rebuild=rebuild)
            round_.phase = "snapshot"
            # what every agent sees; a snapshot survives its stored form unchanged
            # (marketdata tests prove it), so a resumed round sees the same
        else:
            snapshot = snapshot_from_record(round_.snapshot)
        changed = fetched is not None
        if not phase_done(round_, "bars"):
            # in a round that is one transaction, its writes go with the settling step's
            book = self.market_moves(snapshot, book, flush=save)
            round_.phase = "bars"
            changed = True
            timer.lap(round_.timings, "bars_s")
        if self.final and not phase_done(round_, "executed"):
            book = self.book(book)
            book.close_all(prices=snapshot.prices, market_time=round_.market_time)
            self.flush(book)
            round_.phase = "executed"
            changed = True
        if changed and save:
            phase_set(round_, round_.phase, **({"snapshot": round_.snapshot} if fetched is not None else {}))
        return snapshot, book

    def previous_round_time(self) -> datetime | None:
        if self.previous_market_time is not None:  # the runner ran the round before
            return self.previous_market_time
        return (
            Round.objects.filter(competition=self.competition, number__lt=self.round.number)
            # a skipped or failed round processed no market moves: the next one picks them up
            .exclude(status__in=[Round.Status.SKIPPED, Round.Status.FAILED])
            .order_by("-number")
            .values_list("market_time", flat=True)
            .first()
        )

    def market_moves(self, snapshot: MarketSnapshot, book: Book | None, *, flush: bool = True) -> Book | None:
        """Stops, take-profits, funding and close-out for the time since the previous round,
        for the active participants (only open positions have any of these)."""
        previous = self.previous_round_time()
        if previous is None:
            return book
        book = self.book(book)
        active = [
            account.participant_id for account in book.accounts
            if book.is_active(account) and book.states[account.pk].positions
        ]
        if not active:
            return book
        prices = snapshot.prices
        if self.competition.mode == Competition.Mode.REPLAY:
            # bar by bar: stops and take-profits intrabar, close-out at the close, then the
            # funding moments inside the bar for what is still open
            bars = self.source.bars(list(self.competition.symbols), self.competition.timeframe, previous,
                                    self.round.market_time)
        else:
            # live: the last price is a degenerate bar, so stops fire when it crosses them
            bars = [(self.round.market_time, {symbol: engine.Bar(price, price, price, price)
                                              for symbol, price in prices.items()})]
        book.process_bars(participant_ids=active, bars=bars, start=previous, prices=prices)
        book.as_stored()  # as a round that settles on a new Book would read it
        if flush:
            self.flush(book)
        return book

    # -- 3: the agents ---------------------------------------------------------------------

    def pending_participants(self) -> list[Participant]:
        """Active participants without an invocation in this round yet."""
        done = Invocation.objects.filter(round=self.round, participant=OuterRef("pk"))
        return list(
            Participant.objects.filter(competition=self.competition, status=Participant.Status.ACTIVE)
            .order_by("id").exclude(Exists(done))
        )

    def invoke(self, snapshot: MarketSnapshot, pending: list[Participant] | None, book: Book | None) -> Recorded:
        round_ = self.round
        pending = pending if pending is not None else self.pending_participants()
        recorded = Recorded()
        if pending:
            contexts = contexts_build(
                competition=self.competition, rules=self.agent_rules, trading_rules=self.rules,
                round_number=round_.number, market_time=round_.market_time, snapshot=snapshot,
                pending=pending, book=book, counts=self.counts,
                past=self.batch.past if self.batch is not None else None,
            )
            recorded = agents_invoke(round_=round_, pending=pending, contexts=contexts, counts=self.counts)
        if book is not None:  # inside the round's one transaction: saved when it completes
            round_.phase = "invoked"
            return recorded
        with transaction.atomic():
            phase_set(round_, "invoked")
        return recorded

    # -- 4: execute, mark, complete --------------------------------------------------------

    def settle(self, snapshot: MarketSnapshot, book: Book | None, recorded: Recorded | None, timer: RoundTimer) -> None:
        """Execute the decisions, mark to market, complete: inside the caller's transaction."""
        round_ = self.round
        cost = None
        if not phase_done(round_, "executed"):
            book = self.book(book)
            cost = self.execute(snapshot, book, recorded)
            timer.lap(round_.timings, "execute_s")
        if not phase_done(round_, "marked"):
            book = self.book(book)
            self.mark(snapshot, book)
            timer.lap(round_.timings, "mark_s")
        self.complete(snapshot, cost)

    def execute(self, snapshot: MarketSnapshot, book: Book, recorded: Recorded | None) -> Decimal:
        """Each participant's pending actions, in participant-id order, at the snapshot prices.

        Runs inside the round's settling transaction: the orders, fills and the invocations'
        outcomes are written together with the mark and the completion, or not at all.
        """
        # Before "bars" was committed no invocation of this round can exist (they are written
        # after it), so when this runner took the round up that early and wrote every row
        # itself, its rows are all of them. A runner that took up a round at "bars" may find
        # answers an earlier runner recorded before it died: read them all back.
        took_up_before_invoking = PHASES.index(self.started_phase) < PHASES.index("invoked")
        took_up_before_answers = PHASES.index(self.started_phase) < PHASES.index("bars")
        if took_up_before_answers and recorded is not None and recorded.all_mine:
            invocations = sorted(recorded.rows, key=lambda invocation: invocation.participant_id)
        else:
            invocations = list(
                Invocation.objects.filter(round=self.round).only(*INVOCATION_FIELDS).order_by("participant_id")
            )
        cost = decisions_execute(
            book, invocations, snapshot=snapshot, market_time=self.round.market_time,
            is_market_open=self.market_open,
            # invocations made by this runner cannot have orders yet: settling is one
            # transaction with completing, and this round is not complete
            check_done=not took_up_before_invoking,
            instruments=self.source.instruments.instrument,  # the catalogue, cached per process
            deferred=self.batch.outcomes if self.batch is not None else None,
        )
        self.flush(book)
        self.round.phase = "executed"
        return cost

    def market_open(self, symbol: str) -> bool:
        if not self.competition.market_hours_only:
            return True
        return self.source.is_tradable(symbol, self.round.market_time)

    def mark(self, snapshot: MarketSnapshot, book: Book) -> None:
        disqualified = [
            account.participant_id for account in book.accounts
            if account.participant.status == Participant.Status.DISQUALIFIED
        ]
        snapshots = book.mark(
            prices=snapshot.prices, market_time=self.round.market_time, round_number=self.round.number,
            exclude_participant_ids=disqualified,
        )
        book.as_stored()  # as the next round, on a new Book, would read it
        self.flush(book)
        if self.batch is not None:
            self.batch.equity.extend(snapshots)
        else:
            insert_rows(EquitySnapshot, snapshots, returning=False)  # read back by id order only
        self.round.phase = "marked"

    def complete(self, snapshot: MarketSnapshot, cost: Decimal | None) -> None:
        if cost is None:  # executed before a restart: read it back
            cost = Invocation.objects.filter(round=self.round).aggregate(total=Sum("cost_usd"))["total"] or Decimal(0)
        with transaction.atomic(savepoint=False):  # part of the settling transaction
            self.round.llm_cost_usd = cost
            # the mids, for the buy-and-hold benchmark (aggregates.snapshot_prices' form)
            self.round.prices = {symbol: str(price) for symbol, price in snapshot.prices.items()}
            self.finish(Round.Status.COMPLETED, "")
            # a batch folds once, at its end (replay.py)
            if self.batch is None:
                if _fold_due(self.competition.pk, final=self.final):
                    aggregates.participants_fold(competition_id=self.competition.pk)
                _market_time_advance(self.competition.pk, self.round.market_time)

    def finish(self, status: str, detail: str) -> None:
        round_ = self.round
        round_.status = status
        round_.detail = detail
        round_.phase = "completed"
        round_.finished_at = timezone.now()
        round_.lease_owner = ""
        round_.lease_expires_at = None
        if self.batch is not None:  # written with the batch's other rows (ReplayBatch.flush)
            self.batch.finished.append(round_)
            return
        # what a run of the round sets (the rest is fixed by the claim): one UPDATE
        update_rows(Round, [round_], ROUND_RUN_FIELDS)

    def fail(self, detail: str) -> None:
        logger.warning("round %s of competition %s failed: %s", self.round.number, self.competition.pk, detail)
        self.finish(Round.Status.FAILED, detail)


def _market_time_advance(competition_id: int, market_time: datetime) -> None:
    """The competition's market time moves forward only (a late runner never moves it back)."""
    Competition.objects.filter(pk=competition_id).filter(
        Q(market_time__isnull=True) | Q(market_time__lt=market_time)
    ).update(market_time=market_time)


def _fold_due(competition_id: int, *, final: bool) -> bool:
    now = time.monotonic()
    if final or now - _last_fold.get(competition_id, -AGGREGATE_FOLD_SECONDS) >= AGGREGATE_FOLD_SECONDS:
        _last_fold[competition_id] = now
        return True
    return False


def competition_finish(*, competition_id: int, number: int) -> Round | None:
    """The replay clock reached end_time: a last round at end_time runs the market moves
    since the previous round, closes every position at that mark and records final
    equity, without asking the agents; then the competition completes."""
    competition = Competition.objects.get(pk=competition_id)
    round_ = round_run(
        competition_id=competition_id, number=number, market_time=competition.end_time, competition=competition,
        final=True,
    )
    competition.refresh_from_db(fields=["status"])
    if competition.status in {Competition.Status.ACTIVE, Competition.Status.PAUSED}:
        services.competition_stop(competition_id=competition_id, now=timezone.now())
    return round_
