"""Engine throughput on one core: fills/s and marks/s of a 10-position account (pure engine).

Run: python bench/bench_engine.py [--seconds 2]. Prints a summary and writes
bench-results/engine.json. Target: >= 20,000 marks/s (issue 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from trading import engine

SYMBOLS = [f"C{i}/USDT" for i in range(10)]
RULES = engine.Rules(
    max_leverage=Decimal(10),
    margin_requirement_pct=Decimal(10),
    maintenance_margin_pct=Decimal(5),
    max_position_size_pct=Decimal(100),
    fee_pct=Decimal("0.05"),
    spread_bps=Decimal(2),
    slippage_bps=Decimal(1),
)
AT = datetime(2025, 1, 1, tzinfo=UTC)


def ten_position_account() -> tuple[engine.Account, dict[str, Decimal]]:
    account = engine.Account.new(Decimal(1_000_000))
    prices = {symbol: Decimal(100 + i) for i, symbol in enumerate(SYMBOLS)}
    for i, symbol in enumerate(SYMBOLS):
        order = engine.OrderRequest(
            symbol, "buy" if i % 2 else "sell", quantity=Decimal("10.5"), leverage=Decimal(5)
        )
        result = engine.place_order(
            account, order, rules=RULES, instrument=engine.Instrument(symbol), prices=prices, at=AT
        )
        assert result.rejection is None, result.rejection
        account = result.account
    return account, prices


def price_paths(prices: dict[str, Decimal], count: int) -> list[dict[str, Decimal]]:
    # small deterministic moves that never trigger the close-out: the common mark path
    return [
        {
            symbol: price + Decimal((step * 7 + i) % 11 - 5) / 10
            for i, (symbol, price) in enumerate(prices.items())
        }
        for step in range(count)
    ]


def bench_marks(seconds: float) -> tuple[float, int]:
    account, prices = ten_position_account()
    paths = price_paths(prices, 256)
    mark = engine.mark
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for path in paths:
            result = mark(account, path, rules=RULES, at=AT)
        done += len(paths)
    elapsed = time.perf_counter() - start
    assert not result.events  # the benchmark measured marks, not liquidations
    return done / elapsed, done


def bench_fills(seconds: float) -> tuple[float, int]:
    """Alternating add/reduce orders on a 10-position account: every order makes one fill."""
    account, prices = ten_position_account()
    orders = [
        engine.OrderRequest(symbol, side, quantity=Decimal("0.5"), leverage=Decimal(5))
        for symbol in SYMBOLS
        for side in ("buy", "sell")
    ]
    instruments = {symbol: engine.Instrument(symbol) for symbol in SYMBOLS}
    place = engine.place_order
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for order in orders:
            result = place(
                account, order, rules=RULES, instrument=instruments[order.symbol], prices=prices, at=AT
            )
            account = result.account
        done += len(orders)
    elapsed = time.perf_counter() - start
    assert len(account.positions) == 10
    return done / elapsed, done


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "engine.json"))
    args = parser.parse_args(argv)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as the issue asks
    marks_per_second, marks = bench_marks(args.seconds)
    fills_per_second, fills = bench_fills(args.seconds)
    results = {
        "benchmark": "engine",
        "positions": len(SYMBOLS),
        "marks_per_second": round(marks_per_second),
        "fills_per_second": round(fills_per_second),
        "marks_measured": marks,
        "fills_measured": fills,
        "target_marks_per_second": 20000,
        "meets_target": marks_per_second >= 20000,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    verdict = "met" if results["meets_target"] else "MISSED"
    print(
        f"engine: {results['marks_per_second']:,} marks/s, {results['fills_per_second']:,} fills/s "
        f"(10 positions, one core; target >= 20,000 marks/s: {verdict})"
    )
    print(f"written to {output}")
    return results


if __name__ == "__main__":
    main()
