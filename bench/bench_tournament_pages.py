"""Tournament page bench: server time and SQL queries of the tournament pages and the results API
(issue 15).

A tournament of 100 runs (10 windows x 10 instances) and 10 agents, 168 rounds a run, made of
stored per-run results (tournaments.tests.results_data: what a completed run stores) in a
throwaway test database (SQLite in memory by default, PostgreSQL when DATABASE_URL is set).
The last REPEAT runs are still running. Each page and API call is measured in three states:

  first     the first view after a run completes: a run is completed the way a worker
            completes it (runs.run_result_record: the run's result and the tournament's results
            for every metric in one commit; its time is printed as "worker s"), every cache
            is emptied before each request (the web server is another process, and each page is
            the first it serves), then each page is requested once;
            repeated REPEAT times, one more completed run each time (the last one makes 100);
  warm      the same again with this process's caches as the first view left them (a poll
            with nothing new, another visitor);
  computed  the stored results deleted and the caches emptied: the request finds them missing
            and computes them (bootstrap intervals, pairwise tests, the model confidence set),
            as after a worker died between a run and its results; for the record.

Target: "first" and "warm" under 300 ms, with a query count that does not grow with the runs.
Writes bench-results/tournament_pages.json.

    .venv/bin/python bench/bench_tournament_pages.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from pagebench import ROOT, TARGET_MS, as_dict, database_vendor, measure, scratch_database, settle, write_report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=168)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", default=str(ROOT / "bench-results" / "tournament_pages.json"))
    args = parser.parse_args()

    with scratch_database("tournament_pages"):
        from django.core.cache import cache
        from django.test import Client
        from django.urls import reverse

        from tournaments.models import RunStatus, TournamentEntry, TournamentResults, TournamentRun
        from tournaments.tests.results_data import run_finish, stored_tournament

        started = time.perf_counter()
        tournament = stored_tournament(
            agents=args.agents, windows=args.windows, instances=args.instances, rounds=args.rounds,
            running=args.repeat,
        )  # fmt: skip
        build_seconds = time.perf_counter() - started
        settle()
        detail = reverse("tournament-page", args=[tournament.pk])
        entries = list(TournamentEntry.objects.filter(tournament=tournament).order_by("id"))
        api = f"/api/v1/tournaments/{tournament.pk}/results"
        hx = {"HTTP_HX_REQUEST": "true"}
        pages = {
            "tournament list": (reverse("tournament-list-page"), {}),
            "tournament page": (detail, {}),
            "tournament page, Sharpe": (detail + "?metric=sharpe", {}),
            "tournament live partial (htmx)": (detail, hx),
            "compare two agents": (
                reverse("tournament-compare", args=[tournament.pk]) + f"?a={entries[0].pk}&b={entries[1].pk}", {}
            ),
            "results API": (api, {}),
            "results API, Sharpe": (f"{api}?metric=sharpe", {}),
            "window (htmx)": (reverse("tournament-window", args=[tournament.pk, 0]), hx),
        }
        client = Client()
        for name, (url, headers) in pages.items():  # warm up (imports, template compilation)
            assert client.get(url, **headers).status_code in (200, 286), name

        first: dict[str, list] = {name: [] for name in pages}
        worker_seconds = []
        for run in TournamentRun.objects.filter(tournament=tournament, status=RunStatus.RUNNING).order_by("id"):
            began = time.perf_counter()
            assert run_finish(run)
            worker_seconds.append(time.perf_counter() - began)
            for name, (url, headers) in pages.items():  # each the first request of a fresh process
                first[name].append(measure(client, url, headers, repeat=1, before=cache.clear))
        runs_completed = TournamentRun.objects.filter(tournament=tournament, status=RunStatus.COMPLETED).count()

        def results_missing():
            TournamentResults.objects.filter(tournament=tournament).delete()
            cache.clear()

        rows = []
        for name, (url, headers) in pages.items():
            firsts = first[name]
            warm = measure(client, url, headers, repeat=args.repeat)
            computed = measure(client, url, headers, repeat=args.repeat, before=results_missing)
            first_ms = statistics.median(m.median_ms for m in firsts)
            rows.append({
                "page": name, "url": url, "first_median_ms": round(first_ms, 1),
                "first_max_ms": max(m.max_ms for m in firsts), "first_queries": [m.queries for m in firsts],
                **as_dict(warm, "warm_"), **as_dict(computed, "computed_"),
                "under_target": first_ms < TARGET_MS and warm.median_ms < TARGET_MS,
            })  # fmt: skip
        report = {
            "database": database_vendor(), "agents": args.agents, "windows": args.windows,
            "instances": args.instances, "runs": args.windows * args.instances, "runs_completed": runs_completed,
            "rounds": args.rounds, "build_seconds": round(build_seconds, 1), "repeat": args.repeat,
            "worker_seconds_per_completion": [round(seconds, 2) for seconds in worker_seconds],
            "target_ms": TARGET_MS, "pages": rows,
        }  # fmt: skip

    print(
        f"{report['runs']} runs x {report['agents']} agents, {report['rounds']} rounds a run, on {report['database']};"
        f" a worker completing a run (its results for every metric included): "
        f"{', '.join(f'{s:.2f}' for s in report['worker_seconds_per_completion'])} s"
    )
    print(f"{'page':32} {'first ms':>9} {'q':>3} | {'warm ms':>8} {'q':>3} | {'computed ms':>11} {'q':>3} {'KiB':>5}")
    for row in rows:
        flag = "" if row["under_target"] else f"  over {TARGET_MS:.0f} ms"
        queries = sorted(set(row["first_queries"]))
        print(
            f"{row['page']:32} {row['first_median_ms']:>9.1f} {'/'.join(map(str, queries)):>3} | "
            f"{row['warm_median_ms']:>8.1f} {row['warm_queries']:>3} | {row['computed_median_ms']:>11.1f} "
            f"{row['computed_queries']:>3} {row['warm_bytes'] / 1024:>5.0f}{flag}"
        )
    write_report(report, args.output)
    return 0 if all(row["under_target"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
