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
import sys
import time

from pagebench import ROOT, TARGET_MS, database_vendor, measure, scratch_database, settle, write_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--orders-per-round", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "pages.json"))
    args = parser.parse_args()

    with scratch_database("pages"):
        from django.core.cache import cache
        from django.test import Client
        from django.urls import reverse

        from competitions.tests.dashboard_data import ledger_competition
        from trading.models import Fill

        started = time.perf_counter()
        competition = ledger_competition(
            participants=args.participants, rounds=args.rounds, orders_per_round=args.orders_per_round
        )
        build_seconds = time.perf_counter() - started
        settle()
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
            # cold: a round has just changed the data, so the live region is rebuilt from the database
            cold = measure(client, url, headers, repeat=args.repeat, before=cache.clear)
            warm = measure(client, url, headers, repeat=args.repeat)  # a poll with nothing new
            results.append(
                {
                    "page": name,
                    "url": url,
                    "median_ms": cold.median_ms,
                    "max_ms": cold.max_ms,
                    "queries": cold.queries,
                    "warm_median_ms": warm.median_ms,
                    "warm_queries": warm.queries,
                    "bytes": warm.bytes,
                    "under_target": cold.median_ms < TARGET_MS,
                }
            )
        report = {
            "database": database_vendor(),
            "participants": args.participants,
            "rounds": args.rounds,
            "fills": fills,
            "build_seconds": round(build_seconds, 1),
            "repeat": args.repeat,
            "target_ms": TARGET_MS,
            "pages": results,
        }

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
    write_report(report, args.output)
    return 0 if all(row["under_target"] for row in results) else 1


if __name__ == "__main__":
    sys.exit(main())
