"""Speed of the pure hot spots that must stay fast on any input: the decision parser on
hostile model output, replay snapshots of six symbols, and the significance bootstrap.

Writes bench-results/analysis.json. Targets: every corpus case parses in < 2 s; a replay
year (8,760 snapshots of 6 symbols) in < 60 s; 45 pairs x 720 rounds x 2,000 resamples < 5 s.
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gauntlet.settings")
os.environ.setdefault("SQLITE_PATH", "/tmp/gauntlet-bench-analysis.sqlite3")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.management import call_command  # noqa: E402

from agents.decision import DecisionRules  # noqa: E402
from agents.parser import parse_response  # noqa: E402
from agents.tests.test_parser import CORPUS, build_text  # noqa: E402
from analytics import compare_participants  # noqa: E402
from marketdata.sources import get_source  # noqa: E402
from marketdata.sources.synthetic import DEFAULT_START  # noqa: E402


def parser_bench() -> dict:
    from decimal import Decimal

    rules = DecisionRules(allowed_symbols=("BTC/USDT", "ETH/USDT", "SOL/USDT"), max_leverage=Decimal(10))
    worst, worst_name, total = 0.0, "", 0.0
    for case in CORPUS:
        text = build_text(case)
        started = time.perf_counter()
        parse_response(text, rules=rules, structured=case.get("structured"))
        took = time.perf_counter() - started
        total += took
        if took > worst:
            worst, worst_name = took, case["name"]
    return {"cases": len(CORPUS), "total_s": round(total, 4), "worst_case_s": round(worst, 4),
            "worst_case": worst_name, "target_worst_case_s": 2.0, "met": worst < 2.0}


def snapshot_bench() -> dict:
    call_command("migrate", verbosity=0)
    symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "EUR/USD", "US500", "AAPL"]
    get_source("synthetic", seed=1).snapshot(symbols, DEFAULT_START + timedelta(days=30))  # warm
    rounds = 1000
    started = time.perf_counter()
    for hour in range(rounds):
        get_source("synthetic", seed=1).snapshot(symbols, DEFAULT_START + timedelta(days=30, hours=hour)).to_dict()
    per_round = (time.perf_counter() - started) / rounds
    year = per_round * 8760
    return {"rounds": rounds, "ms_per_snapshot": round(per_round * 1000, 3), "year_of_hourly_s": round(year, 1),
            "target_year_s": 60, "met": year < 60}


def bootstrap_bench() -> dict:
    rng = np.random.default_rng(1)
    returns = {f"p{i}": rng.normal(0.0, 0.01, 720) for i in range(10)}
    started = time.perf_counter()
    compare_participants(returns, periods_per_year=8760)
    took = time.perf_counter() - started
    return {"pairs": 45, "rounds": 720, "resamples": 2000, "seconds": round(took, 3), "target_s": 5.0,
            "met": took < 5.0}


def main() -> None:
    results = {"parser": parser_bench(), "snapshots": snapshot_bench(), "bootstrap": bootstrap_bench()}
    for name, numbers in results.items():
        print(f"{name:10s} {json.dumps(numbers)}")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "analysis.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
