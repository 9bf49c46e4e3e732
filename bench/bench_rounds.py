"""Rounds benchmark: round wall time with N concurrent model agents, and replay throughput.

(a) Concurrency: a replay round with N = 1, 10, 50 `openai_compatible` agents whose model
    server (bench/fake_llm_server.py, another process on 127.0.0.1) answers after L seconds,
    through the real path: round_run -> invoke_agent -> the openai SDK over HTTP.
    Target (issue 6): wall time <= L x 1.15 + 0.2 s for N = 50. Measured as shipped and,
    for comparison, with one SSL context shared by the SDK clients (a proposed change in
    agents/providers/llm.py, applied here by a patch inside this process only).
(b) Replay throughput: 10 baseline agents (the five strategies twice) on 6 symbols of the
    shipped hourly Binance data, every round persisted: by default a whole year of hourly
    rounds (8,760) is run and timed, the first round (which loads the series) included.
    Target (issue 17): under 60 s on SQLite, 120 s on PostgreSQL. --replay-rounds N runs fewer and extrapolates (marked so).
(c) Cached re-run: the same market with 5 baselines and 5 `openai_compatible` agents. A first
    pass records their answers in the decision cache (the fake model server, answering at
    once); a copy of the competition (same seed, so the same prompts) with the cache
    read_only is then timed over --cached-rounds rounds: it must call no model and run at
    the speed of (b), batched like a replay of built-in strategies.

Every run uses a scratch database, never the developer's: a temporary SQLite file, and,
when DATABASE_URL points at PostgreSQL, a database named "gauntlet_bench" on that server,
dropped and created afresh by each run.
Each backend runs in its own child process (settings are read once per process).

Run: python bench/bench_rounds.py [--latency 1.0] [--agents 1,10,50] [--replay-rounds 8760]
     [--cached-rounds 2000] [--profile FILE] [--backends sqlite,postgres]
Writes bench-results/rounds.json.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench-results" / "rounds.json"
# GAUNTLET_BENCH_DATABASE names another scratch database (two benches on one server at once)
BENCH_DATABASE = os.environ.get("GAUNTLET_BENCH_DATABASE", "gauntlet_bench")
REPLAY_SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT", "XRP/USDT", "DOGE/USDT"]
STRATEGIES = ["buy_and_hold", "momentum", "mean_reversion", "random", "flat"]
REPLAY_START = datetime(2024, 10, 1, tzinfo=UTC)  # two weeks of shipped history before it
YEAR_OF_HOURLY_ROUNDS = 8760
# issue 17: a year of hourly rounds in under a minute on SQLite, two on PostgreSQL
REPLAY_TARGET_SECONDS = {"sqlite": 60, "postgresql": 120}
CONCURRENCY_START = datetime(2025, 3, 1, tzinfo=UTC)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- parent: one child per database backend ---------------------------------------------


def postgres_url(database: str = BENCH_DATABASE) -> str | None:
    """DATABASE_URL's server with the bench's own database, or None when it is not PostgreSQL."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None
    return urlunparse(urlparse(url)._replace(path="/" + database))


def ensure_postgres_database(url: str) -> None:
    """A fresh database each run (the one `url` names): numbers never depend on what earlier
    runs left behind."""
    import psycopg

    parsed = urlparse(url)
    database = parsed.path.lstrip("/")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{database}"')


def child_env(backend: str, scratch: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}}
    env.update({
        # production-like: DEBUG off (no query log kept), quiet logs, in-process runner
        "DEBUG": "false", "SECRET_KEY": "bench-secret-key-not-for-production", "API_KEY": "bench-api-key",
        "LOG_LEVEL": "WARNING", "ROUND_RUNNER": "inprocess", "DJANGO_SETTINGS_MODULE": "gauntlet.settings",
    })
    if backend == "postgres":
        env["DATABASE_URL"] = postgres_url()
    else:
        env["SQLITE_PATH"] = str(scratch / "bench.sqlite3")
    return env


def machine_reference() -> dict:
    """How fast this machine is today, so that numbers from two machines (or two VMs behind
    the same name) can be told apart from a change in the code: the seconds a fixed piece of
    pure Python takes (Decimal arithmetic, as the engine does), best of three, and the load."""
    from decimal import Decimal

    def workload() -> float:
        began = time.perf_counter()
        total, step = Decimal(0), Decimal("1.0001")
        for i in range(300_000):
            total = (total + step * i) / step
        return time.perf_counter() - began

    return {"reference_seconds": round(min(workload() for _ in range(3)), 3),
            "load_average_1m": round(os.getloadavg()[0], 2)}


def run_parent(args) -> int:
    backends = [b for b in args.backends.split(",") if b]
    if "postgres" in backends and postgres_url() is None:
        log("PostgreSQL skipped: DATABASE_URL is not a postgres:// URL")
        backends.remove("postgres")
    results = {"benchmark": "rounds", "at": datetime.now(UTC).isoformat(), "python": platform.python_version(),
               "machine": f"{platform.machine()}, {os.cpu_count()} cpus", "speed": machine_reference(),
               "latency_seconds": args.latency, "backends": {}}
    with tempfile.TemporaryDirectory(prefix="gauntlet-bench-") as scratch_dir:
        scratch = Path(scratch_dir)
        for backend in backends:
            if backend == "postgres":
                ensure_postgres_database(postgres_url())
            out = scratch / f"{backend}.json"
            command = [sys.executable, __file__, "--child", backend, "--out", str(out),
                       "--latency", str(args.latency), "--agents", args.agents,
                       "--rounds-per-size", str(args.rounds_per_size), "--replay-rounds", str(args.replay_rounds),
                       "--cached-rounds", str(args.cached_rounds)]
            if args.profile:
                command += ["--profile", f"{args.profile}.{backend}"]
            log(f"== {backend} ==")
            completed = subprocess.run(command, env=child_env(backend, scratch), cwd=ROOT, check=False)
            if completed.returncode != 0 or not out.exists():
                results["backends"][backend] = {"error": f"child exited with {completed.returncode}"}
                continue
            results["backends"][backend] = json.loads(out.read_text())
    print_summary(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    failed = any("error" in result for result in results["backends"].values())
    return 1 if failed or not results["backends"] else 0


def print_summary(results: dict) -> None:
    latency = results["latency_seconds"]
    speed = results.get("speed") or {}
    if speed:
        print(f"machine: {results['machine']}, reference workload {speed['reference_seconds']:.3f}s "
              f"(smaller is faster; compare runs only on like machines), load {speed['load_average_1m']}")
    for backend, result in results["backends"].items():
        print(f"\n[{backend}]")
        if "error" in result:
            print(f"  failed: {result['error']}")
            continue
        for variant, sizes in result["concurrency"].items():
            for size in sizes:
                verdict = ""
                if size["agents"] == max(s["agents"] for s in sizes):
                    verdict = "  PASS" if size["meets_target"] else "  MISS"
                print(
                    f"  round wall, {size['agents']:>2} agents, L={latency}s ({variant}): median "
                    f"{size['wall_seconds_median']:.2f}s (min {size['wall_seconds_min']:.2f}, "
                    f"agents phase {size['agents_phase_seconds_median']:.2f}s, target <= "
                    f"{size['target_seconds']:.2f}s){verdict}"
                )
        replay = result["replay"]
        year = (
            f"8,760 rounds took {replay['year_seconds']:.0f}s" if replay["year_measured"]
            else f"8,760 rounds ~ {replay['year_seconds']:.0f}s (estimated from {replay['rounds']})"
        )
        print(
            f"  replay: {replay['rounds']} rounds x {replay['agents']} baselines x {len(replay['symbols'])} symbols "
            f"in {replay['seconds']:.1f}s = {replay['rounds_per_second']:.1f} rounds/s; {year} "
            f"(target < {replay['target_seconds']}s) {'PASS' if replay['meets_target'] else 'MISS'}"
        )
        phases = replay.get("ms_per_round_by_phase") or {}
        print("  ms per round: " + ", ".join(f"{name} {value:.2f}" for name, value in phases.items()))
        cached = result.get("cached_rerun")
        if cached:
            print(
                f"  cached re-run: {cached['rounds']} rounds (5 baselines + 5 cached models) in {cached['seconds']:.1f}s "
                f"= {cached['rounds_per_second']:.1f} rounds/s, {cached['model_requests']} model requests, "
                f"{cached['cached_invocations']}/{cached['model_invocations']} answers cached; a year at this rate "
                f"~ {cached['year_seconds_estimated']:.0f}s (target < {cached['target_seconds']}s) "
                f"{'PASS' if cached['meets_target'] else 'MISS'}"
            )
            phases = cached.get("ms_per_round_by_phase") or {}
            print("  ms per round: " + ", ".join(f"{name} {value:.2f}" for name, value in phases.items()))


# --- child: runs against one scratch database ----------------------------------------------


def run_child(args) -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    loaded = StringIO()
    call_command("load_datasets", "binance-1h", stdout=loaded)
    log(f"{connection.vendor}: database ready in {time.perf_counter() - started:.1f}s "
        f"({loaded.getvalue().strip().splitlines()[-1]})")
    result = {"vendor": connection.vendor, "database": str(connection.settings_dict["NAME"])}
    sizes = [int(n) for n in args.agents.split(",") if n]
    result["concurrency"] = {
        "as_shipped": bench_concurrency(args.latency, sizes, args.rounds_per_size, shared_ssl=False),
        "shared_ssl_context": bench_concurrency(args.latency, sizes, args.rounds_per_size, shared_ssl=True),
    }
    result["replay"] = bench_replay(args.replay_rounds, profile_path=args.profile)
    if args.cached_rounds:
        result["cached_rerun"] = bench_cached_rerun(
            args.cached_rounds, profile_path=args.profile and args.profile + ".cached")
    Path(args.out).write_text(json.dumps(result, indent=2))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_model_server(latency: float) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "fake_llm_server.py"), "--latency", str(latency), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=1).read()
            return process, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the fake model server did not start")


def _shared_ssl_patch():
    """Proposed for agents/providers/llm.py: build the CA store once per process, not per call.

    Creating an SDK client loads the system CA bundle into a new SSL context (~100 ms of CPU
    holding the GIL), once per agent per round; a shared context makes a client cheap.
    """
    import ssl
    from unittest import mock

    import openai

    from agents.providers import llm

    context = ssl.create_default_context()

    def cheap_client(self):
        from agents.providers.base import DEFAULT_TIMEOUT_SECONDS, config_float

        timeout = config_float(self.config, "timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        return openai.OpenAI(
            api_key=self.api_key, base_url=self.config.get("base_url"), timeout=timeout, max_retries=0,
            http_client=openai.DefaultHttpxClient(verify=context, timeout=timeout),
        )

    return mock.patch.object(llm.OpenAIChatAgent, "client", cheap_client)


def bench_concurrency(latency: float, sizes: list[int], rounds_per_size: int, *, shared_ssl: bool) -> list[dict]:
    import contextlib

    from competitions import services
    from competitions.models import Round
    from competitions.rounds.run import round_run

    server, base_url = _start_model_server(latency)
    rows = []
    try:
        patch = _shared_ssl_patch() if shared_ssl else contextlib.nullcontext()
        with patch:
            for size in sizes:
                competition = services.competition_create(
                    name=f"bench: {size} agents, L={latency}s{' shared ssl' if shared_ssl else ''}",
                    start_time=CONCURRENCY_START, end_time=CONCURRENCY_START + timedelta(days=30),
                    invocation_interval_minutes=60, mode="replay", dataset="binance-1h", timeframe="1h",
                    symbols=["BTC/USDT", "ETH/USDT"], max_participants=max(size, 10),
                )
                for index in range(size):
                    services.participant_register(
                        competition_id=competition.pk, name=f"Model {index}", llm_provider="openai_compatible",
                        llm_model=f"hold-{index}",
                        llm_config={"base_url": base_url, "timeout_seconds": 30, "max_retries": 0,
                                    "pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}},
                    )
                services.competition_start(competition_id=competition.pk)
                walls, agent_phases = [], []
                # round 0 warms the process (SDK imports, series cache); rounds 1.. are measured
                for number in range(rounds_per_size + 1):
                    began = time.perf_counter()
                    round_ = round_run(competition_id=competition.pk, number=number)
                    wall = time.perf_counter() - began
                    assert round_ is not None and round_.status == Round.Status.COMPLETED, round_
                    statuses = set(round_.invocations.values_list("status", flat=True))
                    assert statuses == {"success"}, f"agents failed: {statuses}"
                    if number:
                        walls.append(wall)
                        agent_phases.append(round_.timings.get("agents_s", 0.0))
                target = latency * 1.15 + 0.2
                row = {
                    "agents": size,
                    "wall_seconds": [round(w, 3) for w in walls],
                    "wall_seconds_median": round(statistics.median(walls), 3),
                    "wall_seconds_min": round(min(walls), 3),
                    "agents_phase_seconds_median": round(statistics.median(agent_phases), 3),
                    "target_seconds": round(target, 3),
                    "meets_target": statistics.median(walls) <= target,
                }
                log(f"  {'shared ssl' if shared_ssl else 'as shipped'}: {size} agents -> median "
                    f"{row['wall_seconds_median']}s (agents phase {row['agents_phase_seconds_median']}s)")
                rows.append(row)
    finally:
        server.kill()
        server.wait()
    return rows


def _replay_competition(name: str, *, rounds: int = YEAR_OF_HOURLY_ROUNDS):
    from competitions import services

    return services.competition_create(
        name=name, start_time=REPLAY_START, end_time=REPLAY_START + timedelta(hours=rounds),
        invocation_interval_minutes=60, mode="replay", dataset="binance-1h", timeframe="1h",
        symbols=REPLAY_SYMBOLS, seed=42, max_leverage=2, margin_requirement_pct=50, maintenance_margin_pct=25,
    )


def bench_replay(rounds: int, *, profile_path: str | None) -> dict:
    from django.db import connection

    from agents.models import Invocation
    from competitions import services
    from competitions.rounds.replay import replay_run
    from trading.models import EquitySnapshot

    competition = _replay_competition("bench: replay throughput")
    for copy in (1, 2):
        for strategy in STRATEGIES:
            services.participant_register(
                competition_id=competition.pk, name=f"{strategy} {copy}", llm_provider="baseline", llm_model=strategy
            )
    services.competition_start(competition_id=competition.pk)
    began = time.perf_counter()
    replay_run(competition_id=competition.pk, rounds=1)  # first round loads the series cache
    first_round = time.perf_counter() - began
    progress, seconds, cpu_seconds = _timed_replay(
        competition.pk, max(0, min(rounds, YEAR_OF_HOURLY_ROUNDS) - 1), profile_path)
    rounds = progress.rounds_done  # the first round is timed on its own, above
    breakdown = _phase_breakdown(competition, seconds, rounds - 1)
    rate = (rounds - 1) / seconds
    measured = rounds >= YEAR_OF_HOURLY_ROUNDS
    # measured: the wall time of every round, the first (which loads the series) included
    year = first_round + seconds if measured else first_round + (YEAR_OF_HOURLY_ROUNDS - 1) / rate
    result = {
        "vendor": connection.vendor,
        "rounds": rounds,
        "agents": 10,
        "symbols": REPLAY_SYMBOLS,
        "first_round_seconds": round(first_round, 3),
        "seconds": round(seconds, 3),
        "rounds_per_second": round(rate, 2),
        "ms_per_round": round(1000 * seconds / max(1, rounds - 1), 1),
        # this process's CPU time (not the database server's): on a shared machine, the
        # part of the wall time that was this replay's own work
        "cpu_seconds": round(cpu_seconds, 3),
        "cpu_ms_per_round": round(1000 * cpu_seconds / max(1, rounds - 1), 1),
        "year_seconds": round(year, 1),
        "year_measured": measured,
        "target_seconds": REPLAY_TARGET_SECONDS.get(connection.vendor, 60),
        "meets_target": year < REPLAY_TARGET_SECONDS.get(connection.vendor, 60),
        "rounds_done": progress.rounds_done,
        "invocations": Invocation.objects.filter(round__competition=competition).count(),
        "equity_snapshots": EquitySnapshot.objects.filter(account__participant__competition=competition).count(),
        "profiled": bool(profile_path),
        "ms_per_round_by_phase": breakdown,
    }
    log(f"  replay: {rounds} rounds in {first_round + seconds:.1f}s -> {rate:.1f} rounds/s, "
        f"year {'took' if measured else '~'} {year:.0f}s")
    return result


def _timed_replay(competition_id: int, rounds: int, profile_path: str | None):
    """replay_run of `rounds` rounds: (progress, wall seconds, this process's CPU seconds),
    under cProfile into profile_path (+ .txt and .tottime.txt summaries) when given."""
    from competitions.rounds.replay import replay_run

    profiler = cProfile.Profile() if profile_path else None
    began = time.perf_counter()
    cpu_began = time.process_time()
    if profiler:
        profiler.enable()
    progress = replay_run(competition_id=competition_id, rounds=rounds)
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    cpu_seconds = time.process_time() - cpu_began
    if profiler:
        profiler.dump_stats(profile_path)
        for order, suffix in (("cumulative", ".txt"), ("tottime", ".tottime.txt")):
            text = StringIO()
            pstats.Stats(profiler, stream=text).sort_stats(order).print_stats(40)
            Path(profile_path + suffix).write_text(text.getvalue())
    return progress, seconds, cpu_seconds


def bench_cached_rerun(rounds: int, *, profile_path: str | None = None) -> dict:
    """(c): record 5 models' answers, then time a read_only copy of the competition."""
    from django.db import connection

    from agents.models import Invocation
    from competitions import services
    from competitions.rounds.replay import replay_run

    server, base_url = _start_model_server(0.0)
    stats_url = base_url.removesuffix("/v1") + "/stats"

    def requests_made() -> int:
        return sum(json.loads(urllib.request.urlopen(stats_url, timeout=5).read())["requests"].values())

    def lineup(competition, cache_mode: str) -> None:
        for strategy in STRATEGIES:
            services.participant_register(
                competition_id=competition.pk, name=strategy, llm_provider="baseline", llm_model=strategy
            )
        for index in range(5):  # two open small longs every round, three hold
            services.participant_register(
                competition_id=competition.pk, name=f"model {index}", llm_provider="openai_compatible",
                llm_model=f"open-{index}" if index < 2 else f"hold-{index}",
                llm_config={"base_url": base_url, "timeout_seconds": 30, "max_retries": 0, "decision_cache": cache_mode,
                            "pricing": {"input_per_mtok": "0", "output_per_mtok": "0"}},
            )
        services.competition_start(competition_id=competition.pk)

    try:
        recorded = _replay_competition("bench: cached re-run", rounds=rounds)
        lineup(recorded, "read_write")
        began = time.perf_counter()
        replay_run(competition_id=recorded.pk, rounds=rounds)
        recording_seconds = time.perf_counter() - began
        requests_recording = requests_made()
        log(f"  cached re-run: {rounds} rounds recorded in {recording_seconds:.1f}s ({requests_recording} model requests)")
        rerun = _replay_competition("bench: cached re-run", rounds=rounds)
        lineup(rerun, "read_only")
        progress, seconds, cpu_seconds = _timed_replay(rerun.pk, rounds, profile_path)
        requests_rerun = requests_made() - requests_recording
    finally:
        server.kill()
        server.wait()
    invocations = Invocation.objects.filter(round__competition=rerun, participant__llm_provider="openai_compatible")
    done = progress.rounds_done
    result = {
        "vendor": connection.vendor,
        "rounds": done,
        "agents": "5 baselines + 5 models answered from the decision cache (read_only)",
        "recording_seconds": round(recording_seconds, 3),
        "seconds": round(seconds, 3),
        "rounds_per_second": round(done / seconds, 2),
        "cpu_ms_per_round": round(1000 * cpu_seconds / max(1, done), 1),
        "model_requests": requests_rerun,
        "cached_invocations": invocations.filter(cached=True).count(),
        "model_invocations": invocations.count(),
        "year_seconds_estimated": round(YEAR_OF_HOURLY_ROUNDS * seconds / max(1, done), 1),
        "ms_per_round_by_phase": _phase_breakdown(rerun, seconds, done),
        "target_seconds": REPLAY_TARGET_SECONDS.get(connection.vendor, 60),
    }
    result["meets_target"] = requests_rerun == 0 and result["year_seconds_estimated"] < result["target_seconds"]
    log(f"  cached re-run: {done} rounds in {seconds:.1f}s -> {result['rounds_per_second']:.1f} rounds/s, "
        f"{requests_rerun} model requests, {result['cached_invocations']}/{result['model_invocations']} cached")
    return result


def _phase_breakdown(competition, seconds: float, rounds: int) -> dict:
    """Mean milliseconds per round in each phase the rounds time themselves (Round.timings),
    and "write" for the rest of the wall time: the claim, completing the round, the commits."""
    from competitions.models import Round

    phases = {"snapshot_s": "snapshot", "bars_s": "bars", "agents_s": "agents", "execute_s": "execute",
              "mark_s": "mark"}
    totals = dict.fromkeys(phases.values(), 0.0)
    for timings in Round.objects.filter(competition=competition, number__gte=1).values_list("timings", flat=True):
        for key, name in phases.items():
            totals[name] += float((timings or {}).get(key, 0.0))
    count = max(1, rounds)
    breakdown = {name: round(1000 * total / count, 2) for name, total in totals.items()}
    breakdown["write"] = round(1000 * seconds / count - sum(breakdown.values()), 2)
    return breakdown


def main() -> int:
    parser = argparse.ArgumentParser(description="Round wall time with N model agents, and replay throughput.")
    parser.add_argument("--latency", type=float, default=1.0, help="seconds the fake model takes to answer")
    parser.add_argument("--agents", default="1,10,50", help="agent counts to measure, comma separated")
    parser.add_argument("--rounds-per-size", type=int, default=3, help="measured rounds per agent count")
    parser.add_argument(
        "--replay-rounds", type=int, default=YEAR_OF_HOURLY_ROUNDS,
        help="replay rounds to time (default: the whole year, measured; fewer give an estimate)",
    )
    parser.add_argument("--cached-rounds", type=int, default=2000,
                        help="rounds of the cached re-run (c); 0 skips it")
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite and/or postgres (if DATABASE_URL)")
    parser.add_argument("--profile", help="cProfile the replay into FILE.<backend> and the cached re-run into "
                             "FILE.<backend>.cached (+ .txt summaries)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return 0
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main())
