"""Tournament page bench: server time and SQL queries of the tournament pages (issue 15).

A completed tournament of 100 runs (10 windows x 10 instances) and 10 agents, 168 rounds a
run, made of stored per-run results (tournaments.tests.results_data: what a completed run
stores) in a throwaway test database (SQLite in memory by default, PostgreSQL when
DATABASE_URL is set). Each page is measured REPEAT times in three states:

  computed  every cache empty: a run has just completed, so the statistics (bootstrap
            intervals, pairwise tests, model confidence set) are computed from the stored
            results once for this state, and the page rendered;
  cached    the state's results cached, the page rendered (a new visitor, another metric seen before);
  poll      an htmx poll with nothing new: the cached live region.

Target: "cached" and "poll" under 300 ms; "computed" is paid once per completed run and printed
for the record. Writes bench-results/tournament_pages.json.

    .venv/bin/python bench/bench_tournament_pages.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gauntlet.settings")

TARGET_MS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=168)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "tournament_pages.json"))
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    if connection.vendor != "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_tournament_pages_{old_name}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tournaments.results import tournament_results_get
        from tournaments.tests.results_data import stored_tournament

        started = time.perf_counter()
        tournament = stored_tournament(
            agents=args.agents, windows=args.windows, instances=args.instances, rounds=args.rounds
        )
        build_seconds = time.perf_counter() - started
        gc.collect()
        gc.freeze()
        detail = reverse("tournament-page", args=[tournament.pk])
        pages = {
            "tournament list": (reverse("tournament-list-page"), {}),
            "tournament page": (detail, {}),
            "tournament page, Sharpe": (detail + "?metric=sharpe", {}),
            "tournament live partial (htmx)": (detail, {"HTTP_HX_REQUEST": "true"}),
            "window (htmx)": (
                reverse("tournament-window", args=[tournament.pk, 0]),
                {"HTTP_HX_REQUEST": "true"},
            ),
        }
        client = Client()
        rows = []
        for name, (url, headers) in pages.items():
            assert client.get(url, **headers).status_code in (200, 286), name  # warm up
            metric = "sharpe" if "sharpe" in url else "return_pct"
            measured = {}
            for mode in ("computed", "cached", "poll"):
                times, queries = [], 0
                for _ in range(args.repeat):
                    if mode != "poll":
                        cache.clear()
                    if mode == "cached":
                        tournament_results_get(tournament_id=tournament.pk, metric=metric)
                    with CaptureQueriesContext(connection) as captured:
                        began = time.perf_counter()
                        response = client.get(url, **headers)
                        times.append((time.perf_counter() - began) * 1000)
                    queries = len(captured.captured_queries)
                measured[mode] = {
                    "median_ms": round(statistics.median(times), 1),
                    "max_ms": round(max(times), 1),
                    "queries": queries,
                }
            rows.append({
                "page": name, "url": url, **{f"{mode}_{k}": v for mode, m in measured.items() for k, v in m.items()},
                "bytes": len(response.content),
                "under_target": measured["cached"]["median_ms"] < TARGET_MS and measured["poll"]["median_ms"] < TARGET_MS,
            })  # fmt: skip
        report = {
            "database": connection.vendor, "agents": args.agents, "windows": args.windows,
            "instances": args.instances, "runs": args.windows * args.instances, "rounds": args.rounds,
            "build_seconds": round(build_seconds, 1), "repeat": args.repeat, "target_ms": TARGET_MS, "pages": rows,
        }  # fmt: skip
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    print(
        f"{report['runs']} runs x {report['agents']} agents, {report['rounds']} rounds a run, on {report['database']}"
    )
    print(
        f"{'page':32} {'computed ms':>12} {'q':>3} | {'cached ms':>10} {'q':>3} | {'poll ms':>8} {'q':>3} {'KiB':>6}"
    )
    for row in rows:
        flag = "" if row["under_target"] else f"  over {TARGET_MS:.0f} ms"
        print(
            f"{row['page']:32} {row['computed_median_ms']:>12.1f} {row['computed_queries']:>3} | "
            f"{row['cached_median_ms']:>10.1f} {row['cached_queries']:>3} | {row['poll_median_ms']:>8.1f} "
            f"{row['poll_queries']:>3} {row['bytes'] / 1024:>6.0f}{flag}"
        )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if all(row["under_target"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
