"""Page bench: server time and SQL queries of the dashboard and participant pages.

A competition with 10 participants and 10,000 fills (500 rounds x 10 participants x 2 orders,
made through the trading services, each round's aggregates stored as when a round completes:
competitions.aggregates) in a throwaway test database (SQLite in memory by default,
PostgreSQL when DATABASE_URL is set). Each page is rendered once to warm up, then REPEAT
times "cold" (cache cleared first: a round has just changed the data, so the live region
is rebuilt from the database) and REPEAT times "warm" (a poll with nothing new: one query
and the cached live region). Prints median and worst times and query counts, and writes
bench-results/pages.json. Target: every page under 300 ms cold.

    .venv/bin/python bench/bench_pages.py [--rounds 500] [--repeat 10]
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
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--orders-per-round", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "pages.json"))
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from django.urls import reverse

    from trading.models import Fill

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    # Its own throwaway database, so it never clobbers a test run's test_<name> database.
    if connection.vendor != "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_pages_{old_name}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from competitions.tests.dashboard_data import ledger_competition

        started = time.perf_counter()
        competition = ledger_competition(
            participants=args.participants, rounds=args.rounds, orders_per_round=args.orders_per_round
        )
        build_seconds = time.perf_counter() - started
        gc.collect()  # the build's garbage is not the pages' to collect
        gc.freeze()  # what the served app does after loading (gauntlet/wsgi.py, asgi.py)
        fills = Fill.objects.filter(account__participant__competition=competition).count()
        participant = competition.participants.order_by("id").last()
        dashboard = reverse("competition-dashboard", args=[competition.pk])
        pages = {
            "competition list": (reverse("competition-list"), {}),
            "dashboard": (dashboard, {}),
            "dashboard live partial (htmx)": (dashboard, {"HTTP_HX_REQUEST": "true"}),
            "participant": (reverse("participant-detail", args=[competition.pk, participant.pk]), {}),
            "participant live partial (htmx)": (
                reverse("participant-detail", args=[competition.pk, participant.pk]),
                {"HTTP_HX_REQUEST": "true"},
            ),
            "compare (2 participants)": (
                reverse("competition-compare", args=[competition.pk])
                + f"?p={participant.pk}&p={participant.pk - 1}",
                {},
            ),
        }
        client = Client()
        results = []
        for name, (url, headers) in pages.items():
            response = client.get(url, **headers)  # warm up (imports, template compilation)
            assert response.status_code == 200, (name, response.status_code)
            measured = {}
            for mode in ("cold", "warm"):
                times = []
                queries = 0
                for _ in range(args.repeat):
                    if mode == "cold":
                        cache.clear()
                    with CaptureQueriesContext(connection) as captured:
                        started = time.perf_counter()
                        response = client.get(url, **headers)
                        times.append((time.perf_counter() - started) * 1000)
                    queries = len(captured.captured_queries)
                measured[mode] = (statistics.median(times), max(times), queries)
            cold, warm = measured["cold"], measured["warm"]
            results.append(
                {
                    "page": name,
                    "url": url,
                    "median_ms": round(cold[0], 1),
                    "max_ms": round(cold[1], 1),
                    "queries": cold[2],
                    "warm_median_ms": round(warm[0], 1),
                    "warm_queries": warm[2],
                    "bytes": len(response.content),
                    "under_target": cold[0] < TARGET_MS,
                }
            )
        report = {
            "database": connection.vendor,
            "participants": args.participants,
            "rounds": args.rounds,
            "fills": fills,
            "build_seconds": round(build_seconds, 1),
            "repeat": args.repeat,
            "target_ms": TARGET_MS,
            "pages": results,
        }
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)

    print(
        f"{report['participants']} participants, {report['rounds']} rounds, {report['fills']} fills "
        f"on {report['database']} (built in {report['build_seconds']} s)"
    )
    print(
        f"{'page':34} {'cold ms':>8} {'max ms':>8} {'queries':>8} | {'warm ms':>8} {'queries':>8} {'KiB':>6}"
    )
    for row in results:
        flag = "" if row["under_target"] else f"  over {TARGET_MS:.0f} ms"
        print(
            f"{row['page']:34} {row['median_ms']:>8.1f} {row['max_ms']:>8.1f} {row['queries']:>8} | "
            f"{row['warm_median_ms']:>8.1f} {row['warm_queries']:>8} {row['bytes'] / 1024:>6.0f}{flag}"
        )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {output}")
    return 0 if all(row["under_target"] for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
