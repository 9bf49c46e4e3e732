"""Competitions with a real history for the page tests, browser tests and the page bench.

Two builders:
- `ledger_competition`: fast. Orders, fills and equity go through the trading services;
  rounds and invocations are rows like the round writes them. Market prices come from the
  seeded synthetic source (no candles needed).
- `replay_competition`: the real thing. Hourly candles stored in a small dataset, baseline
  agents, and rounds run by competitions.rounds.run.round_run.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from agents.models import Invocation
from competitions import aggregates
from competitions.models import Competition, Participant, Round
from competitions.rules import trading_rules
from competitions.services import competition_create, competition_start, participant_register
from competitions.tests.factories import CompetitionFactory, ParticipantFactory
from marketdata.importing import CandleRow, ParsedCandles
from marketdata.models import MarketSnapshotRecord
from marketdata.services import candles_store
from marketdata.snapshot import MarketSnapshot, SymbolSnapshot
from trading import engine
from trading.models import Position
from trading.services import account_mark, account_open, order_place

SYMBOLS = ["BTC/USDT", "ETH/USDT"]
BASE_PRICES = {"BTC/USDT": Decimal(60000), "ETH/USDT": Decimal(3000)}
START = datetime(2025, 1, 1, tzinfo=UTC)


class RoundFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Round

    competition = factory.SubFactory(CompetitionFactory)
    number = factory.Sequence(lambda n: n + 1)
    market_time = factory.LazyAttribute(
        lambda r: (
            r.competition.start_time + timedelta(minutes=r.competition.invocation_interval_minutes * r.number)
        )
    )
    status = Round.Status.COMPLETED
    phase = "completed"


class InvocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invocation

    participant = factory.SubFactory(ParticipantFactory)
    round = factory.SubFactory(RoundFactory)
    provider = factory.LazyAttribute(lambda i: i.participant.llm_provider)
    model = factory.LazyAttribute(lambda i: i.participant.llm_model)
    prompt_version = "v1"
    system_prompt = "You are a trader in a CFD competition."
    user_prompt = "Market snapshot and your portfolio."
    raw_response = '{"reasoning": "hold", "actions": [{"action": "hold"}]}'
    parsed_decision = factory.LazyFunction(lambda: {"reasoning": "hold", "actions": [{"action": "hold"}]})
    action_outcomes = factory.LazyFunction(list)
    status = Invocation.Status.SUCCESS
    latency_ms = 1200
    input_tokens = 1000
    output_tokens = 200
    cost_usd = Decimal("0.0030")


def snapshot_record(at: datetime, prices: dict[str, Decimal]) -> MarketSnapshotRecord:
    """A stored snapshot holding just the prices (what the market strip and marks read)."""
    snapshot = MarketSnapshot(
        at=at,
        source="test",
        symbols={
            symbol: SymbolSnapshot(
                symbol=symbol,
                asset_class="crypto",
                price=price,
                price_time=at,
                change_24h_pct=Decimal("1.25"),
            )
            for symbol, price in prices.items()
        },
    )
    return MarketSnapshotRecord.objects.create(at=at, source="test", payload=snapshot.to_dict())


def prices_at(number: int, rng: random.Random) -> dict[str, Decimal]:
    return {
        symbol: (base * Decimal(str(1 + 0.02 * rng.uniform(-1, 1)))).quantize(Decimal("0.01"))
        for symbol, base in BASE_PRICES.items()
    }


def ledger_competition(
    *,
    participants: int = 3,
    rounds: int = 5,
    orders_per_round: int = 1,
    baselines: int = 1,
    seed: int = 7,
    status: str = Competition.Status.ACTIVE,
) -> Competition:
    """A competition with `rounds` rounds in which every participant trades and is marked.

    Each round every participant places `orders_per_round` orders, alternately opening 1000 USD
    of BTC/USDT at 2x and closing it (so the fill count is participants x rounds x
    orders_per_round), gets one invocation whose reasoning names the round, and one equity
    snapshot; then the round's aggregates are stored, as when a round completes.
    """
    rng = random.Random(seed)
    competition = CompetitionFactory(status=Competition.Status.ACTIVE, symbols=SYMBOLS)
    players = []
    for index in range(participants):
        is_baseline = index < baselines
        players.append(
            ParticipantFactory(
                competition=competition,
                name=f"{'Baseline' if is_baseline else 'Model'} {index + 1}",
                llm_provider="baseline" if is_baseline else "openai",
                llm_model="buy_and_hold" if is_baseline else "gpt-test",
            )
        )
    for player in players:
        account_open(participant=player, initial_capital=competition.initial_capital)
    rules = trading_rules(competition)
    for number in range(1, rounds + 1):
        market_time = competition.start_time + timedelta(hours=number)
        prices = prices_at(number, rng)
        round_ = RoundFactory(
            competition=competition,
            number=number,
            market_time=market_time,
            snapshot=snapshot_record(market_time, prices),
        )
        for player in players:
            invocation = InvocationFactory(
                participant=player,
                round=round_,
                parsed_decision={
                    "reasoning": f"{player.name} thinks round {number} is a trade",
                    "actions": [],
                },
            )
            outcomes = []
            for k in range(orders_per_round):
                # open 1000 USD of BTC at 2x, then close exactly what is open: each pair is a round trip
                held = Position.objects.filter(
                    account__participant=player, symbol="BTC/USDT", is_open=True
                ).first()
                if held is None:
                    request = engine.OrderRequest(
                        symbol="BTC/USDT", side="sell" if (number + k) % 2 else "buy",
                        notional_usd=Decimal(1000), leverage=Decimal(2),
                    )  # fmt: skip
                    action = {"action": "open", "side": "long" if request.side == "buy" else "short",
                              "symbol": "BTC/USDT", "notional_usd": 1000, "leverage": 2}  # fmt: skip
                else:
                    request = engine.OrderRequest(
                        symbol="BTC/USDT",
                        side="sell" if held.side == "long" else "buy",
                        quantity=held.quantity,
                    )
                    action = {"action": "close", "symbol": "BTC/USDT", "quantity": str(held.quantity)}
                order = order_place(
                    participant=player, rules=rules, order_request=request, prices=prices, market_time=market_time,
                    invocation_id=invocation.pk,
                )  # fmt: skip
                outcomes.append({"index": k, "action": action, "status": order.status, "order_id": order.pk})
            invocation.action_outcomes = outcomes
            invocation.parsed_decision = {
                "reasoning": invocation.parsed_decision["reasoning"], "actions": [o["action"] for o in outcomes],
            }  # fmt: skip
            invocation.raw_response = json.dumps(invocation.parsed_decision)
            invocation.save(update_fields=["action_outcomes", "parsed_decision", "raw_response"])
            account_mark(participant=player, rules=rules, prices=prices, market_time=market_time, round_number=number)
        # what competitions.rounds.run does as it completes a round
        aggregates.round_completed(round_=round_)
    Competition.objects.filter(pk=competition.pk).update(
        status=status, market_time=competition.start_time + timedelta(hours=rounds)
    )
    competition.refresh_from_db()
    return competition


# --- a real replay --------------------------------------------------------------------------

REPLAY_DATASET = "test-replay-1h"


def candles_load(*, symbols=SYMBOLS, start: datetime, hours: int, seed: int = 3) -> None:
    """A seeded random walk of hourly candles per symbol, stored like an imported CSV."""
    rng = random.Random(seed)
    for symbol in symbols:
        price = float(BASE_PRICES.get(symbol, Decimal(100)))
        rows = []
        for i in range(hours):
            open_ = price
            close = open_ * (1 + rng.gauss(0, 0.01))
            high = max(open_, close) * (1 + abs(rng.gauss(0, 0.003)))
            low = min(open_, close) * (1 - abs(rng.gauss(0, 0.003)))
            q = Decimal("0.01")
            rows.append(
                CandleRow(
                    line=i + 2,
                    open_time=start + timedelta(hours=i),
                    open=Decimal(str(open_)).quantize(q),
                    high=Decimal(str(high)).quantize(q),
                    low=Decimal(str(low)).quantize(q),
                    close=Decimal(str(close)).quantize(q),
                    volume=Decimal(str(round(rng.uniform(10, 100), 2))),
                )
            )
            price = close
        candles_store(
            dataset_name=REPLAY_DATASET, symbol=symbol, timeframe="1h", parsed=ParsedCandles(rows=rows)
        )


def replay_competition(
    *, strategies=("buy_and_hold", "momentum", "random", "flat"), history_hours: int = 80, hours: int = 48
) -> Competition:
    """An active replay competition of baseline agents on a stored random-walk dataset."""
    candles_load(start=START, hours=history_hours + hours + 2)
    start = START + timedelta(hours=history_hours)
    competition = competition_create(
        name="Replay for the dashboard",
        start_time=start,
        end_time=start + timedelta(hours=hours),
        mode="replay",
        dataset=REPLAY_DATASET,
        timeframe="1h",
        symbols=SYMBOLS,
    )
    for strategy in strategies:
        participant_register(
            competition_id=competition.pk, name=strategy.replace("_", " ").title(),
            llm_provider=Participant.Provider.BASELINE, llm_model=strategy,
        )  # fmt: skip
    return competition_start(competition_id=competition.pk)
