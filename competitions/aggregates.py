"""Per-round aggregates that pages read instead of recomputing history (issue 9).

What is stored so that a leaderboard reads a few numbers per participant and round, not
every fill, closed position, answer and market snapshot of the competition:
- Invocation.actions_count / rejected_actions_count: each answer's action outcomes counted
  once (action_counts) instead of decoded on every read;
- Round.prices: the mids of the round's snapshot (snapshot_prices), for the buy-and-hold
  benchmark, instead of the snapshot JSON with its candles;
- ParticipantAggregate: a participant's fills folded into the sign of its net exposure at
  each equity point (analytics.ExposureTally) and its closed positions into exact trade
  totals (analytics.TradeTotals), up to watermarks (row ids).

Rounds keep them as they go: an answer's counts are stored when it is recorded and when
its actions are executed, a round's prices when it completes, and competitions.rounds folds
participants at most once a second per competition (a replay runs tens of rounds a second;
what a fold has not reached yet is folded at read time). round_completed() does all of it
for one round, for writers without a round's state in hand (test data, repairs). The
selectors run the same ParticipantFold on whatever lies past the watermarks (a round still
running, the settlement fills and re-marks when a competition stops, data written without
rounds), so stored + tail always equals a fold from scratch (participants_fold(rebuild=True)
or `manage.py aggregates_rebuild`).

The fold assumes an account's rows are written in market-time order, which rounds guarantee
(one at a time, one transaction each): a fill back-dated before an already folded equity
point would be counted from the next point on only.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Max, QuerySet
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from agents.models import Invocation
from agents.services import action_counts
from analytics import ClosedTrade, ExposureTally, TradeTotals, net_pnl
from marketdata.models import MarketSnapshotRecord
from trading.models import EquitySnapshot, Fill, Position

from .models import Participant, ParticipantAggregate, Round

# (fill id, market time, symbol, signed quantity: + buy / - sell, price)
FillRow = tuple[int, datetime, str, Decimal, Decimal]
# (id of the position's last fill, the trade)
ClosedRow = tuple[int, ClosedTrade]
MICROSECOND = timedelta(microseconds=1)


def snapshot_prices(symbols: Any) -> dict[str, str]:
    """{symbol: mid as a string} from a stored snapshot's "symbols" (symbols without a mid
    are left out): what Round.prices holds."""
    if not isinstance(symbols, dict):
        return {}
    return {
        symbol: str(entry["price"])
        for symbol, entry in symbols.items()
        if isinstance(entry, dict) and entry.get("price") not in (None, "")
    }


# --- the fold: plain Python, the same at write time and at read time ----------------------


@dataclass
class ParticipantFold:
    """One participant's exposure and trade totals, and how far into its rows they go.

    Exposure follows docs/analytics.md: at each equity point (snapshot market time; a
    re-marked time counts once, with its latest mark) the net signed notional of the fills
    up to that time, each symbol at its last fill price; only its sign is kept.
    """

    snapshot_watermark: int = 0
    fill_watermark: int = 0
    trade_watermark: int = 0
    # symbol -> (net quantity, last fill price), in first-fill order
    net: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    last_point_at: datetime | None = None
    last_point_sign: int = 0
    exposure: ExposureTally = field(default_factory=ExposureTally)
    trades: TradeTotals = field(default_factory=TradeTotals)

    def fold(
        self,
        *,
        points: Iterable[tuple[int, datetime]] = (),
        fills: Iterable[FillRow] = (),
        closed: Iterable[ClosedRow] = (),
        seen_snapshot_id: int = 0,
        seen_fill_id: int = 0,
    ) -> None:
        """Fold in the rows past the watermarks, in place.

        points: (snapshot id, market time) of the equity snapshots past snapshot_watermark,
        in (market time, id) order; fills: past fill_watermark, in (market time, id) order;
        closed: the closed positions whose last fill is past trade_watermark.
        seen_snapshot_id / seen_fill_id: the highest ids the caller's queries covered (all of
        this participant's rows up to them are in the arguments), so the watermarks of a
        participant with nothing new still move on. A fill later than the last point waits
        for the next point: the fill watermark stops before it.
        """
        pending = deque(fills)
        for snapshot_id, moment in points:
            while pending and pending[0][1] <= moment:
                self._apply(pending.popleft())
            self._point(moment)
            self.snapshot_watermark = max(self.snapshot_watermark, snapshot_id)
        if self.last_point_at is not None and pending and pending[0][1] <= self.last_point_at:
            # fills at the last point's time written after it (a settlement without a re-mark)
            while pending and pending[0][1] <= self.last_point_at:
                self._apply(pending.popleft())
            self._point(self.last_point_at)
        for last_fill_id, trade in closed:
            self.trades.add(trade)
            self.trade_watermark = max(self.trade_watermark, last_fill_id)
        self.snapshot_watermark = max(self.snapshot_watermark, seen_snapshot_id)
        self.trade_watermark = max(self.trade_watermark, seen_fill_id)
        if not pending:
            self.fill_watermark = max(self.fill_watermark, seen_fill_id)

    def _apply(self, fill: FillRow) -> None:
        fill_id, _, symbol, signed_quantity, price = fill
        quantity, _ = self.net.get(symbol, (Decimal(0), price))
        # quantities stay Decimal: a float residue of buy 0.1 + 0.2, sell 0.3 would count as exposure
        self.net[symbol] = (quantity + signed_quantity, price)
        self.fill_watermark = max(self.fill_watermark, fill_id)

    def _point(self, moment: datetime) -> None:
        notional = sum(float(quantity) * float(price) for quantity, price in self.net.values() if quantity)
        sign = (notional > 0) - (notional < 0)
        if moment == self.last_point_at:  # a re-mark replaces the point
            self.exposure.count(self.last_point_sign, -1)
        self.exposure.count(sign)
        self.last_point_at, self.last_point_sign = moment, sign

    # -- stored form ---------------------------------------------------------------------

    @classmethod
    def from_stored(cls, values: Mapping[str, Any] | None) -> ParticipantFold:
        """From a ParticipantAggregate's STORED_FIELDS (None: nothing stored yet, start empty)."""
        if values is None or values.get("snapshot_watermark") is None:
            return cls()
        sums = values["pnl_sums"] or {}

        def decimal(key: str) -> Decimal | None:
            return Decimal(sums[key]) if sums.get(key) is not None else None

        trades = TradeTotals(
            trades=values["trades"],
            wins=values["wins"],
            losses=values["losses"],
            net_pnl=decimal("net") or Decimal(0),
            gross_win=decimal("gross_win") or Decimal(0),
            gross_loss=decimal("gross_loss") or Decimal(0),
            largest_win=decimal("largest_win"),
            largest_loss=decimal("largest_loss"),
            holding_trades=values["holding_trades"],
            holding_total=values["holding_total"],
            holdings={timedelta(microseconds=us): count for us, count in values["holdings"] or []},
        )
        return cls(
            snapshot_watermark=values["snapshot_watermark"],
            fill_watermark=values["fill_watermark"],
            trade_watermark=values["trade_watermark"],
            net={symbol: (Decimal(qty), Decimal(price)) for symbol, qty, price in values["net_exposure"]},
            last_point_at=values["last_point_at"],
            last_point_sign=values["last_point_sign"],
            exposure=ExposureTally(values["long_points"], values["short_points"], values["flat_points"]),
            trades=trades,
        )

    def stored(self) -> dict[str, Any]:
        """The ParticipantAggregate fields (STORED_FIELDS) holding this fold."""
        trades = self.trades

        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        return {
            "snapshot_watermark": self.snapshot_watermark,
            "fill_watermark": self.fill_watermark,
            "trade_watermark": self.trade_watermark,
            "net_exposure": [
                [symbol, str(quantity), str(price)] for symbol, (quantity, price) in self.net.items()
            ],
            "last_point_at": self.last_point_at,
            "last_point_sign": self.last_point_sign,
            "long_points": self.exposure.long,
            "short_points": self.exposure.short,
            "flat_points": self.exposure.flat,
            "trades": trades.trades,
            "wins": trades.wins,
            "losses": trades.losses,
            "pnl_sums": {
                "net": text(trades.net_pnl),
                "gross_win": text(trades.gross_win),
                "gross_loss": text(trades.gross_loss),
                "largest_win": text(trades.largest_win),
                "largest_loss": text(trades.largest_loss),
            },
            "holding_trades": trades.holding_trades,
            "holding_total": trades.holding_total,
            "holdings": [
                [holding // MICROSECOND, count] for holding, count in sorted(trades.holdings.items())
            ],
        }


STORED_FIELDS = tuple(ParticipantFold().stored())


# --- reading the rows past the watermarks (shared with competitions.selectors) ----------


def fills_after(watermarks: Mapping[int, int]) -> tuple[dict[int, list[FillRow]], int]:
    """Fills past each account's watermark (account id -> watermark), in (market time, id)
    order, and the highest fill id the query covered. One query."""
    rows: dict[int, list[FillRow]] = {account_id: [] for account_id in watermarks}
    seen = max(watermarks.values(), default=0)
    if not watermarks:
        return rows, seen
    for fill_id, account_id, moment, symbol, side, quantity, price in (
        Fill.objects.filter(account_id__in=list(watermarks), id__gt=min(watermarks.values()))
        .order_by("market_time", "id")
        .values_list("id", "account_id", "market_time", "symbol", "side", "quantity", "price")
    ):
        seen = max(seen, fill_id)
        if fill_id > watermarks[account_id]:
            signed = quantity if side == "buy" else -quantity
            rows[account_id].append((fill_id, moment, symbol, signed, price))
    return rows, seen


def closed_after(watermarks: Mapping[int, int]) -> dict[int, list[ClosedRow]]:
    """Closed positions whose last fill is past each account's trade watermark. One query.

    A position closes with its last fill and never trades again, so "last fill id past the
    watermark" is exactly "closed since the fold": the query starts from the newer fills.
    """
    rows: dict[int, list[ClosedRow]] = {account_id: [] for account_id in watermarks}
    if not watermarks:
        return rows
    for account_id, last_fill_id, realised, fees, funding, opened_at, closed_at in (
        Position.objects.filter(
            account_id__in=list(watermarks), is_open=False, fills__id__gt=min(watermarks.values())
        )
        # after the filter, Max reads the same (newer) fills: the last fill is among them
        .annotate(last_fill_id=Max("fills__id"))
        .order_by()
        .values_list(
            "account_id", "last_fill_id", "realised_pnl", "fees", "funding", "opened_at", "closed_at"
        )
    ):
        if last_fill_id > watermarks[account_id]:
            pnl = net_pnl(realised_pnl=realised, fees=fees, funding=funding)
            rows[account_id].append((last_fill_id, ClosedTrade(pnl, opened_at, closed_at)))
    return rows


# --- writing --------------------------------------------------------------------------------


def invocations_count(invocations: QuerySet[Invocation], *, batch: int = 2000) -> int:
    """Store the action counts of these invocations (action_counts). Returns how many."""
    counted = 0
    last_id = 0
    while True:
        rows = list(
            invocations.filter(id__gt=last_id).order_by("id").values_list("id", "action_outcomes")[:batch]
        )
        if not rows:
            return counted
        # one UPDATE per distinct pair of counts: a round's answers share a few
        by_counts: dict[tuple[int, int], list[int]] = {}
        for invocation_id, outcomes in rows:
            by_counts.setdefault(action_counts(outcomes), []).append(invocation_id)
        for (actions, rejected), ids in by_counts.items():
            Invocation.objects.filter(id__in=ids).update(
                actions_count=actions, rejected_actions_count=rejected
            )
        counted += len(rows)
        last_id = rows[-1][0]


def rounds_price(rounds: QuerySet[Round]) -> int:
    """Copy the mids of these rounds' snapshots into Round.prices. Returns how many."""
    priced = 0
    for round_id, symbols in rounds.filter(snapshot__isnull=False).values_list(
        "id", KeyTransform("symbols", "snapshot__payload")
    ):
        Round.objects.filter(pk=round_id).update(prices=snapshot_prices(symbols))
        priced += 1
    return priced


def participants_fold(
    *, competition_id: int, rebuild: bool = False, save: bool = True
) -> dict[int, ParticipantFold]:
    """Fold every participant's rows past its watermarks into its ParticipantAggregate.

    rebuild: start every participant from nothing (a fold from scratch). save=False computes
    without writing (to compare stored aggregates with a fresh fold). Returns participant
    id -> fold, for participants with an account. A fixed number of queries whatever the
    history; without rebuild, they read only what came after the watermarks.
    """
    accounts = dict(
        Participant.objects.filter(competition_id=competition_id, account__isnull=False).values_list(
            "id", "account__id"
        )
    )
    stored = (
        {}
        if rebuild
        else {
            values["participant_id"]: values
            for values in ParticipantAggregate.objects.filter(participant_id__in=list(accounts)).values(
                "participant_id", *STORED_FIELDS
            )
        }
    )
    folds = {pk: ParticipantFold.from_stored(stored.get(pk)) for pk in accounts}
    participant_of = {account_id: pk for pk, account_id in accounts.items()}

    snapshot_marks = {accounts[pk]: fold.snapshot_watermark for pk, fold in folds.items()}
    points: dict[int, list[tuple[int, datetime]]] = {account_id: [] for account_id in snapshot_marks}
    seen_snapshot = max(snapshot_marks.values(), default=0)
    if snapshot_marks:
        for snapshot_id, account_id, moment in (
            EquitySnapshot.objects.filter(
                account_id__in=list(snapshot_marks), id__gt=min(snapshot_marks.values())
            )
            .order_by("market_time", "id")
            .values_list("id", "account_id", "market_time")
        ):
            seen_snapshot = max(seen_snapshot, snapshot_id)
            if snapshot_id > snapshot_marks[account_id]:
                points[account_id].append((snapshot_id, moment))
    fills, seen_fill = fills_after({accounts[pk]: fold.fill_watermark for pk, fold in folds.items()})
    closed = closed_after({accounts[pk]: fold.trade_watermark for pk, fold in folds.items()})
    for account_id, pk in participant_of.items():
        folds[pk].fold(
            points=points[account_id],
            fills=fills[account_id],
            closed=closed[account_id],
            seen_snapshot_id=seen_snapshot,
            seen_fill_id=seen_fill,
        )
    if save:
        now = timezone.now()
        ParticipantAggregate.objects.bulk_create(
            [
                ParticipantAggregate(participant_id=pk, updated_at=now, **fold.stored())
                for pk, fold in folds.items()
            ],
            update_conflicts=True,
            unique_fields=["participant"],
            update_fields=[*STORED_FIELDS, "updated_at"],
        )
    return folds


def round_completed(*, round_: Round) -> None:
    """Bring the stored aggregates up to date with `round_`: count its invocations' action
    outcomes and fold its fills, closed positions and equity points into every participant's
    aggregate, and copy the mids of its snapshot. Runs inside the round's completing transaction."""
    invocations_count(Invocation.objects.filter(round=round_, actions_count__isnull=True))
    participants_fold(competition_id=round_.competition_id)
    if round_.snapshot_id is not None:
        symbols = (
            MarketSnapshotRecord.objects.filter(pk=round_.snapshot_id)
            .values_list(KeyTransform("symbols", "payload"), flat=True)
            .first()
        )
        round_.prices = snapshot_prices(symbols)  # on the instance too: a later save() keeps them
        Round.objects.filter(pk=round_.pk).update(prices=round_.prices)


def aggregates_rebuild(*, competition_ids: Sequence[int] | None = None) -> int:
    """Recompute every stored aggregate (counts, round prices, participant folds) from
    scratch: all competitions, or these. Returns the number of participants folded. For
    `manage.py aggregates_rebuild`."""
    invocations = Invocation.objects.all()
    rounds = Round.objects.all()
    competitions = Participant.objects.values_list("competition_id", flat=True).distinct().order_by()
    if competition_ids is not None:
        invocations = invocations.filter(participant__competition_id__in=competition_ids)
        rounds = rounds.filter(competition_id__in=competition_ids)
        competitions = competitions.filter(competition_id__in=competition_ids)
    invocations_count(invocations)
    rounds_price(rounds)
    return sum(len(participants_fold(competition_id=pk, rebuild=True)) for pk in list(competitions))
