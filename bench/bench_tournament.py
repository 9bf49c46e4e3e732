"""Tournament benchmark: runs per minute with 1, 2 and 4 worker processes, and a cached re-run.

A tournament of --runs runs (default 40: 20 windows x 2 instances, each window --window-hours
of hourly rounds, default one week) with 5 baselines (the five strategies) and 5 model agents
(`openai_compatible`, answering after --latency L seconds, default 0.5, from
bench/fake_llm_server.py in its own process), on PostgreSQL with Redis (decision cache,
provider limits), the shipped binance-1h data. The same tournament (a fresh one per
configuration, its own seed so no configuration reads another's cached answers) is played
by W worker processes x T threads, each thread claiming and executing runs the way
run_tournament and the Celery task do (tournaments.runs). Target: speedup >= 1.7 at 2 workers.

Then the cached re-run: a copy of the last tournament (same seed, so the same prompts) with
the decision cache read-only: it must make zero model requests; its throughput is reported.

Scratch database "gauntlet_bench_tournament" on DATABASE_URL's server, dropped and created
afresh; REDIS_URL (default redis://127.0.0.1:6379/3) is flushed of this bench's keys only.
Needs both; without them it writes a result saying so and exits 0.

Model-bound runs scale with concurrent runs rather than cores: a round waits L for its
models and spends only a fraction of that on CPU, so threads per worker process (each one run
at a time) add throughput beyond the core count until the CPU is busy. The default
configurations are 1, 2 and 4 processes of one thread, then 2 processes x 4 threads.

Run: python bench/bench_tournament.py [--runs 40] [--window-hours 168] [--latency 0.5]
     [--configs 1x1,2x1,4x1,2x4]   (or --workers 1,2,4 --threads 1,4 for every combination)
A one-worker pass over 40 one-week runs takes over an hour (40 x 169 rounds x (L + a round's
CPU)), the whole default about 2 h 15 min on 2 cores; use --runs 8 --window-hours 24 for a trial. Writes bench-results/tournament.json,
rewritten after every configuration ("partial": true until the cached re-run is done), each
row with the machine's load average before and after it (other jobs share the CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from bench_rounds import _start_model_server, ensure_postgres_database, log, postgres_url

RESULTS = ROOT / "bench-results" / "tournament.json"
BENCH_DATABASE = "gauntlet_bench_tournament"
DEFAULT_REDIS = "redis://127.0.0.1:6379/3"
SYMBOLS = ["BTC/USDT", "ETH/USDT"]
STRATEGIES = ["buy_and_hold", "momentum", "mean_reversion", "random", "flat"]
START = datetime(2024, 10, 1, tzinfo=UTC)  # two weeks of shipped history before it
INSTANCES = 2
TARGET_SPEEDUP_AT_2 = 1.7
DEFAULT_CONFIGS = "1x1,2x1,4x1,2x4"


def redis_ok(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url).ping())
    except Exception:  # noqa: BLE001 -- any failure means "no Redis here"
        return False


# --- parent ---------------------------------------------------------------------------------


def run_parent(args) -> int:
    database = postgres_url(BENCH_DATABASE)
    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    RESULTS.parent.mkdir(exist_ok=True)
    if database is None or not redis_ok(redis_url):
        reason = "DATABASE_URL is not postgres://" if database is None else f"no Redis at {redis_url}"
        log(f"tournament bench skipped: {reason}")
        RESULTS.write_text(json.dumps({"skipped": reason}, indent=2) + "\n")
        return 0
    ensure_postgres_database(database)
    server, base_url = _start_model_server(args.latency)
    env = {key: value for key, value in os.environ.items() if key not in {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}}
    env.update({
        "DATABASE_URL": database, "REDIS_URL": redis_url, "CELERY_BROKER_URL": "", "DEBUG": "false",
        "SECRET_KEY": "bench-secret-key-not-for-production", "API_KEY": "bench-api-key", "LOG_LEVEL": "WARNING",
        "ROUND_RUNNER": "inprocess", "DJANGO_SETTINGS_MODULE": "gauntlet.settings", "DATABASE_CONN_MAX_AGE": "0",
    })
    try:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            command = [sys.executable, __file__, "--child", "--out", out.name, "--base-url", base_url,
                       "--runs", str(args.runs), "--window-hours", str(args.window_hours),
                       "--latency", str(args.latency), "--configs", ",".join(f"{w}x{t}" for w, t in configs(args)),
                       "--progress-file", str(RESULTS)]
            completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
            if completed.returncode != 0:
                log(f"the benchmark child failed (exit {completed.returncode})")
                return completed.returncode
            result = json.loads(Path(out.name).read_text())
    finally:
        server.kill()
        server.wait()
    result.update({"at": datetime.now(UTC).isoformat(), "python": platform.python_version(),
                   "machine": f"{platform.machine()}, {os.cpu_count()} cpus"})
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    return 0


def configs(args) -> list[tuple[int, int]]:
    """(workers, threads) pairs in order: --configs as given, else every --workers x --threads."""
    if args.configs:
        pairs = []
        for item in args.configs.split(","):
            workers, _, threads = item.strip().partition("x")
            pairs.append((int(workers), int(threads or 1)))
        return pairs
    return [(int(w), int(t)) for w in args.workers.split(",") if w for t in args.threads.split(",") if t]


def print_summary(result: dict) -> None:
    setup = result["setup"]
    print(f"\ntournament: {setup['runs']} runs x {setup['rounds_per_run']} rounds, {setup['agents']} agents "
          f"({setup['model_agents']} models answering after {setup['latency_s']} s)")
    for row in result["configurations"]:
        print(f"  {row['workers']} worker(s) x {row['threads']} thread(s): {row['runs_per_minute']:.2f} runs/min "
              f"({row['seconds']:.1f} s, {row['model_requests']} model requests), "
              f"speedup {row['speedup_vs_1_worker']:.2f}")
    cached = result["cached_rerun"]
    print(f"  cached re-run ({cached['workers']} worker(s) x {cached['threads']} thread(s)): "
          f"{cached['runs_per_minute']:.2f} runs/min, "
          f"{cached['model_requests']} model requests, {cached['cache_hits']} cache hits")
    at_two = result.get("speedup_at_2_workers")
    if at_two is not None:
        verdict = "meets" if at_two >= TARGET_SPEEDUP_AT_2 else "MISSES"
        print(f"  speedup at 2 workers {at_two:.2f}: {verdict} the target >= {TARGET_SPEEDUP_AT_2}")


# --- child: Django on the scratch database -------------------------------------------------


def model_requests(base_url: str) -> int:
    stats_url = base_url.removesuffix("/v1") + "/stats"
    stats = json.loads(urllib.request.urlopen(stats_url, timeout=5).read())
    return sum(stats["requests"].values())


def lineup(base_url: str) -> list[dict]:
    baselines = [{"name": f"Baseline {s}", "llm_provider": "baseline", "llm_model": s} for s in STRATEGIES]
    models = [
        {"name": f"Model {i}", "llm_provider": "openai_compatible", "llm_model": f"{'open' if i % 2 else 'hold'}-{i}",
         "llm_config": {"base_url": base_url, "pricing": {"input_per_mtok": 0, "output_per_mtok": 0}}}
        for i in range(5)
    ]
    return baselines + models


def tournament_fields(args, *, seed: int, cache_mode: str) -> dict:
    windows = max(1, args.runs // INSTANCES)
    return {
        "name": f"bench seed {seed}", "dataset": "binance-1h", "timeframe": "1h", "symbols": SYMBOLS,
        "windows_spec": {"start": START.isoformat(), "count": windows, "length_minutes": args.window_hours * 60,
                         "step_minutes": 24 * 60},
        "instances": INSTANCES, "seed": seed, "cache_mode": cache_mode, "entries": lineup(args.base_url),
    }


def _thread_loop(tournament_id: int, owner: str) -> None:
    from django.db import connections

    from tournaments import runs

    try:
        while (run := runs.run_claim(tournament_id=tournament_id, owner=owner)) is not None:
            runs.run_execute(run_id=run.pk, owner=owner)
    finally:
        connections.close_all()


def _worker_process(tournament_id: int, threads: int) -> None:
    pool = [threading.Thread(target=_thread_loop, args=(tournament_id, f"bench:{os.getpid()}:{i}"))
            for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def play(tournament_id: int, workers: int, threads: int) -> float:
    """Start the tournament, play it with `workers` forked processes x `threads`; seconds taken."""
    import multiprocessing

    from django.db import connections

    from tournaments import services

    services.tournament_start(tournament_id=tournament_id, enqueue=False)
    connections.close_all()  # no child may share the parent's socket
    context = multiprocessing.get_context("fork")
    started = time.perf_counter()
    processes = [context.Process(target=_worker_process, args=(tournament_id, threads)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    seconds = time.perf_counter() - started
    failed = [p.exitcode for p in processes if p.exitcode]
    if failed:
        raise RuntimeError(f"worker process(es) exited with {failed}")
    return seconds


def measure(args, *, workers: int, threads: int, seed: int, cache_mode: str) -> dict:
    from tournaments import selectors, services

    tournament = services.tournament_create(**tournament_fields(args, seed=seed, cache_mode=cache_mode))
    before = model_requests(args.base_url)
    load_before = os.getloadavg()[0]
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = play(tournament.pk, workers, threads)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the worker processes, once joined
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    progress = selectors.tournament_progress(tournament.pk)
    if progress.runs_completed != progress.runs_total:
        raise RuntimeError(f"tournament {tournament.pk}: {progress.runs_completed}/{progress.runs_total} completed, "
                           f"failures {progress.failures}")
    row = {
        "tournament_id": tournament.pk, "workers": workers, "threads": threads, "runs": progress.runs_total,
        "rounds": progress.rounds_done, "seconds": round(seconds, 2),
        "runs_per_minute": round(progress.runs_total / seconds * 60, 3),
        "rounds_per_second": round(progress.rounds_done / seconds, 2),
        "model_requests": model_requests(args.base_url) - before, "cache_hits": progress.cache_hits,
        # CPU the worker processes used per round: what bounds throughput once model waits overlap
        "worker_cpu_seconds": round(cpu, 1), "cpu_ms_per_round": round(cpu / max(progress.rounds_done, 1) * 1000, 1),
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    log(f"{workers} worker(s) x {threads} thread(s): {row['runs_per_minute']:.2f} runs/min "
        f"in {seconds:.1f} s ({row['model_requests']} model requests, {row['cache_hits']} cache hits)")
    return row


def run_child(args) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from io import StringIO

    from django.core.management import call_command

    from agents.limits import limits_reset

    call_command("migrate", verbosity=0)
    call_command("load_datasets", "binance-1h", stdout=StringIO())
    limits_reset()
    pairs = configs(args)
    rows: list[dict] = []
    setup = {"runs": args.runs, "rounds_per_run": args.window_hours + 1, "agents": 10, "model_agents": 5,
             "latency_s": args.latency, "window_hours": args.window_hours, "database": "postgresql",
             "redis": os.environ.get("REDIS_URL", "")}

    def write(cached: dict | None) -> None:
        single = next((r for r in rows if r["workers"] == 1 and r["threads"] == 1), rows[0] if rows else None)
        for row in rows:
            row["speedup_vs_1_worker"] = round(row["runs_per_minute"] / single["runs_per_minute"], 2)
        at_two = next((r["speedup_vs_1_worker"] for r in rows if r["workers"] == 2 and r["threads"] == 1), None)
        result = {"at": datetime.now(UTC).isoformat(), "setup": setup, "configurations": rows, "speedup_at_2_workers": at_two,
                  "target_speedup_at_2_workers": TARGET_SPEEDUP_AT_2, "cached_rerun": cached,
                  "partial": cached is None}
        Path(args.out).write_text(json.dumps(result, indent=2))
        if cached is None and args.progress_file:  # what is measured so far survives an interrupted run
            Path(args.progress_file).write_text(json.dumps(result, indent=2) + "\n")

    for w, t in pairs:
        rows.append(measure(args, workers=w, threads=t, seed=1000 * w + t, cache_mode="read_write"))
        write(None)
    last = rows[-1]
    cached = measure(args, workers=last["workers"], threads=last["threads"],
                     seed=1000 * last["workers"] + last["threads"], cache_mode="read_only")
    write(cached)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--window-hours", type=int, default=7 * 24)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--configs", default="",
                        help="workers x threads per worker, comma-separated, measured in this order "
                             "(default 1x1,2x1,4x1,2x4 unless --workers/--threads are given)")
    parser.add_argument("--workers", default="", help="worker processes, comma-separated (with --threads: every pair)")
    parser.add_argument("--threads", default="1", help="threads per worker process, comma-separated (e.g. 1,4)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--progress-file", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.configs and not args.workers:
        args.configs = DEFAULT_CONFIGS
    if args.child:
        run_child(args)
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())

