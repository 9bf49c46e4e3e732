"""Baselines make their documented trades on fixed series, through the same parser path."""

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from agents.context import AccountView, AgentContext, DecisionHistoryItem, PositionView
from agents.decision import CloseAction, OpenAction
from agents.invoke import invoke_agent
from agents.tests.conftest import NOW, make_rules
from marketdata.snapshot import Candle, MarketSnapshot, SymbolSnapshot

RULES = make_rules(symbols=("BTC/USDT", "ETH/USDT"))
# Equal weight: 10000 x min(0.95 / 2, 0.95 x 25 / 100) = 10000 x 0.2375
NOTIONAL = Decimal("2375.00")


def series_snapshot(closes_by_symbol: dict[str, list[int]], indicators: dict | None = None) -> MarketSnapshot:
    symbols = {}
    for symbol, closes in closes_by_symbol.items():
        candles = [
            Candle(
                open_time=NOW - timedelta(hours=len(closes) - i),
                open=Decimal(c),
                high=Decimal(c),
                low=Decimal(c),
                close=Decimal(c),
                volume=Decimal(1),
            )
            for i, c in enumerate(closes)
        ]
        symbols[symbol] = SymbolSnapshot(
            symbol=symbol,
            asset_class="crypto",
            price=Decimal(closes[-1]),
            price_time=NOW,
            change_24h_pct=None,
            candles={"1h": candles},
            indicators={"1h": (indicators or {}).get(symbol, {})},
        )
    return MarketSnapshot(at=NOW, source="replay", symbols=symbols)


RISING = list(range(100, 160))  # 60 bars up: EMA20 above EMA50, RSI 100
FALLING = list(range(160, 100, -1))  # 60 bars down: EMA20 below EMA50, RSI 0


def position(symbol: str, side: str) -> PositionView:
    return PositionView(
        symbol, side, Decimal("1"), Decimal("100"), Decimal("100"), Decimal("0"), Decimal("1"), Decimal("100")
    )


def context(snapshot, positions=(), index=0, history=(), participant_id=11, seed=7) -> AgentContext:
    account = replace(AccountView.flat(Decimal("10000")), positions=tuple(positions))
    return AgentContext(
        rules=replace(RULES, seed=seed),
        snapshot=snapshot,
        account=account,
        now=NOW,
        history=tuple(history),
        participant_id=participant_id,
        invocation_index=index,
    )


def decide(strategy: str, ctx: AgentContext):
    outcome = invoke_agent(provider="baseline", model=strategy, config={}, api_key=None, context=ctx)
    assert outcome.status == "success", outcome.error
    assert outcome.cost_usd == 0
    assert outcome.response.raw_text.startswith("{")  # raw JSON text went through the parser
    return outcome.decision


def opens(symbol, side):
    return OpenAction(symbol=symbol, side=side, leverage=Decimal("1"), notional_usd=NOTIONAL)


def test_buy_and_hold_buys_every_symbol_equally_on_its_first_round():
    decision = decide("buy_and_hold", context(series_snapshot({"BTC/USDT": RISING, "ETH/USDT": FALLING})))
    assert decision.actions == (opens("BTC/USDT", "long"), opens("ETH/USDT", "long"))


def test_buy_and_hold_then_holds_while_invested_and_after_its_first_trades():
    snap = series_snapshot({"BTC/USDT": RISING, "ETH/USDT": RISING})
    assert decide("buy_and_hold", context(snap, positions=[position("BTC/USDT", "long")], index=1)).is_hold
    history = [DecisionHistoryItem(1, NOW, "open long BTC/USDT", "filled")]
    assert decide("buy_and_hold", context(snap, index=5, history=history)).is_hold


def test_momentum_goes_long_on_a_rising_series_and_short_on_a_falling_one():
    decision = decide("momentum", context(series_snapshot({"BTC/USDT": RISING, "ETH/USDT": FALLING})))
    assert decision.actions == (opens("BTC/USDT", "long"), opens("ETH/USDT", "short"))


def test_momentum_flips_a_long_when_the_emas_cross_down_and_keeps_a_position_on_trend():
    snap = series_snapshot({"BTC/USDT": FALLING, "ETH/USDT": FALLING})
    decision = decide(
        "momentum", context(snap, positions=[position("BTC/USDT", "long"), position("ETH/USDT", "short")])
    )
    assert decision.actions == (CloseAction(symbol="BTC/USDT"), opens("BTC/USDT", "short"))


def test_momentum_holds_without_50_bars_of_history():
    snap = series_snapshot({"BTC/USDT": RISING[:40], "ETH/USDT": RISING[:40]})
    assert decide("momentum", context(snap)).is_hold


def test_momentum_reads_the_snapshot_indicators_when_present():
    snap = series_snapshot(
        {"BTC/USDT": RISING, "ETH/USDT": RISING},
        indicators={"BTC/USDT": {"ema_20": 90.0, "ema_50": 95.0}},  # says down, despite the rising closes
    )
    decision = decide("momentum", context(snap))
    assert decision.actions == (opens("BTC/USDT", "short"), opens("ETH/USDT", "long"))


def test_mean_reversion_buys_oversold_and_sells_overbought():
    decision = decide("mean_reversion", context(series_snapshot({"BTC/USDT": FALLING, "ETH/USDT": RISING})))
    assert decision.actions == (opens("BTC/USDT", "long"), opens("ETH/USDT", "short"))


def test_mean_reversion_exits_at_rsi_50_and_not_before():
    snap = series_snapshot(
        {"BTC/USDT": RISING, "ETH/USDT": RISING},
        indicators={"BTC/USDT": {"rsi_14": 50.0}, "ETH/USDT": {"rsi_14": 49.9}},
    )
    decision = decide(
        "mean_reversion",
        context(snap, positions=[position("BTC/USDT", "long"), position("ETH/USDT", "long")]),
    )
    assert decision.actions == (CloseAction(symbol="BTC/USDT"),)


def test_mean_reversion_holds_in_the_neutral_band():
    snap = series_snapshot(
        {"BTC/USDT": RISING, "ETH/USDT": RISING},
        indicators={"BTC/USDT": {"rsi_14": 45.0}, "ETH/USDT": {"rsi_14": 69.0}},
    )
    assert decide("mean_reversion", context(snap)).is_hold


def test_random_is_deterministic_per_seed_participant_and_round():
    snap = series_snapshot({"BTC/USDT": RISING, "ETH/USDT": RISING})

    def run(participant_id, seed):
        return [
            decide("random", context(snap, index=i, participant_id=participant_id, seed=seed)).actions
            for i in range(40)
        ]

    first = run(11, 7)
    assert first == run(11, 7)
    assert first != run(12, 7)
    assert first != run(11, 8)
    trades = [a for actions in first for a in actions if a.action == "open"]
    assert trades, "over 40 rounds and 2 symbols, a 20% open chance trades"


def test_flat_never_trades():
    snap = series_snapshot({"BTC/USDT": FALLING, "ETH/USDT": RISING})
    for index in range(3):
        assert decide("flat", context(snap, index=index)).is_hold


def test_unknown_strategy_is_a_recorded_error():
    outcome = invoke_agent(
        provider="baseline",
        model="martingale",
        config={},
        api_key=None,
        context=context(series_snapshot({"BTC/USDT": RISING})),
    )
    assert outcome.status == "error"
    assert "martingale" in outcome.error
