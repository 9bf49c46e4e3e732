"""The buy-and-hold reference: equal weight at the first round's mids, no costs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal

from django.db.models import Case, TextField, When
from django.db.models.fields.json import KeyTextTransform, KeyTransform

import analytics
from analytics import TimePoint
from competitions.models import Competition, Round
from competitions.selectors._load import _competition, _RoundPrices
from competitions.selectors.rows import LeaderboardRow
from marketdata.models import MarketSnapshotRecord

BENCHMARK_NAME = "Buy and hold (equal weight)"
BENCHMARK_PROVIDER = "benchmark"


def _snapshot_symbols(competition: Competition) -> list[str]:
    """The competition's symbols; when it lists none, the symbols of its latest round snapshot."""
    if competition.symbols:
        return list(competition.symbols)
    payload = (
        MarketSnapshotRecord.objects.filter(rounds__competition=competition)
        .order_by("-at")
        .values_list(KeyTransform("symbols", "payload"), flat=True)
        .first()
    )
    return sorted(payload) if isinstance(payload, dict) else []


def _load_round_prices(competition: Competition, symbols: Iterable[str]) -> _RoundPrices:
    """Mid price per symbol at every round that stored a snapshot, in one query.

    From Round.prices (the mids copied when the round completed); a round without them yet
    has them extracted from its snapshot JSON by the database, not the candles around them.
    """
    symbols = sorted(set(symbols))
    snapshot_symbols = KeyTransform("symbols", "snapshot__payload")
    expressions = [
        Case(
            When(prices__isnull=True, then=KeyTextTransform("price", KeyTransform(symbol, snapshot_symbols))),
            default=KeyTextTransform(symbol, "prices"),
            output_field=TextField(),
        )
        for symbol in symbols
    ]
    times: list[datetime] = []
    prices: list[dict[str, Decimal]] = []
    rows = (
        Round.objects.filter(competition=competition, snapshot__isnull=False)
        .order_by("market_time", "number")
        .values_list("market_time", *expressions)
    )
    for moment, *values in rows:
        round_prices = {}
        for symbol, value in zip(symbols, values):
            if value not in (None, ""):
                round_prices[symbol] = Decimal(str(value))
        if times and times[-1] == moment:
            prices[-1] = round_prices
            continue
        times.append(moment)
        prices.append(round_prices)
    return _RoundPrices(times, prices)



def _buy_and_hold(
    competition: Competition, round_prices: _RoundPrices, symbols: Sequence[str]
) -> list[TimePoint]:
    """Equal weight at the first round's mids; a symbol without a mid at that round is left
    out, and a later missing mid repeats the symbol's previous one."""
    if not round_prices.times:
        return []
    first = round_prices.prices[0]
    held = [symbol for symbol in symbols if first.get(symbol)]
    if not held:
        return []
    series: dict[str, list[Decimal]] = {symbol: [] for symbol in held}
    for prices in round_prices.prices:
        for symbol in held:
            price = prices.get(symbol)
            series[symbol].append(price if price else series[symbol][-1])
    equity = analytics.buy_and_hold_equity(series, competition.initial_capital)
    return list(zip(round_prices.times, equity))


def buy_and_hold_reference(*, competition_id: int) -> list[TimePoint]:
    """Equal-weight buy and hold of the competition's symbols over its rounds' market times.

    Bought at the mids of the first round's stored snapshot with the initial capital, no
    costs, held to the last round: E_t = sum_i (C / n / P_i,first) x P_i,t. Empty before the
    first round. Two or three queries.
    """
    return _benchmark(_competition(competition_id))


def _benchmark(competition: Competition) -> list[TimePoint]:
    symbols = _snapshot_symbols(competition)
    return _buy_and_hold(competition, _load_round_prices(competition, symbols), symbols)


def _benchmark_row(
    competition: Competition, points: list[TimePoint], periods: float
) -> LeaderboardRow | None:
    if not points:
        return None
    metrics = analytics.participant_metrics(
        equity=[equity for _, equity in points],
        times=[moment for moment, _ in points],
        initial_capital=competition.initial_capital,
        periods_per_year=periods,
    )
    return LeaderboardRow(
        rank=None,
        participant_id=None,
        name=BENCHMARK_NAME,
        provider=BENCHMARK_PROVIDER,
        model="",
        status="",
        is_baseline=True,
        metrics=metrics,
        is_benchmark=True,
    )
