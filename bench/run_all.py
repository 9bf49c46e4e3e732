"""`make bench`: run every bench/bench_*.py, print their numbers, collect them in one summary.

Each script runs in its own process (its own settings and scratch database), prints its
numbers and writes bench-results/<name>.json (bench_rounds.py -> rounds.json). This runner
then writes bench-results/summary.json: per benchmark its exit code, wall time and the
results it wrote in this run. It exits non-zero if any benchmark failed.

Run: python bench/run_all.py [--only rounds,engine] [--skip pages]

bench_tournament_pages.py (name "tournament_pages") is found like the others: every
bench_*.py here is registered by its file name.
Arguments for one benchmark come from BENCH_<NAME>_ARGS, e.g. the tournament bench (40 one-week
runs by default at 1x1, 2x1, 4x1 and 2x4 workers x threads, then a cached re-run: over two
hours on 2 cores, the one-worker pass alone over an hour) as a trial:
    BENCH_TOURNAMENT_ARGS="--runs 8 --window-hours 24" python bench/run_all.py --only tournament
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
RESULTS_DIR = ROOT / "bench-results"


def benchmark_scripts() -> dict[str, Path]:
    """bench_<name>.py -> name, in name order."""
    return {path.stem.removeprefix("bench_"): path for path in sorted(BENCH_DIR.glob("bench_*.py"))}


def run_one(name: str, script: Path) -> dict:
    results_file = RESULTS_DIR / f"{name}.json"
    started_wall = time.time()
    began = time.perf_counter()
    print(f"\n===== {name} ({script.relative_to(ROOT)}) =====", flush=True)
    extra = shlex.split(os.environ.get(f"BENCH_{name.upper()}_ARGS", ""))
    completed = subprocess.run([sys.executable, str(script), *extra], cwd=ROOT, check=False)
    seconds = time.perf_counter() - began
    entry: dict = {
        "script": str(script.relative_to(ROOT)),
        "returncode": completed.returncode,
        "seconds": round(seconds, 1),
        "results_file": str(results_file.relative_to(ROOT)),
        "arguments": extra,
    }
    # only numbers written by this run count: an old file would pass stale numbers off as new
    if results_file.exists() and results_file.stat().st_mtime >= started_wall - 1:
        try:
            entry["results"] = json.loads(results_file.read_text())
        except ValueError as exc:
            entry["error"] = f"{results_file.name} is not JSON: {exc}"
    else:
        entry["error"] = f"{results_file.name} was not written by this run"
    print(f"----- {name}: exit {completed.returncode} in {seconds:.1f}s", flush=True)
    return entry


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every bench/bench_*.py and write bench-results/summary.json.")
    parser.add_argument("--only", default="", help="comma-separated benchmark names to run (e.g. rounds,engine)")
    parser.add_argument("--skip", default="", help="comma-separated benchmark names to leave out")
    args = parser.parse_args()
    scripts = benchmark_scripts()
    only = {n for n in args.only.split(",") if n}
    skip = {n for n in args.skip.split(",") if n}
    unknown = (only | skip) - set(scripts)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; present: {sorted(scripts)}")
    chosen = {name: path for name, path in scripts.items() if (not only or name in only) and name not in skip}
    RESULTS_DIR.mkdir(exist_ok=True)
    summary = {
        "at": datetime.now(UTC).isoformat(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus",
        "database_url_set": bool(os.environ.get("DATABASE_URL")),
        "benchmarks": {},
    }
    for name, script in chosen.items():
        summary["benchmarks"][name] = run_one(name, script)
    (RESULTS_DIR / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print("\n===== summary =====")
    failed = []
    for name, entry in summary["benchmarks"].items():
        ok = entry["returncode"] == 0 and "error" not in entry
        if not ok:
            failed.append(name)
        note = "" if ok else f"  FAILED ({entry.get('error') or 'exit ' + str(entry['returncode'])})"
        print(f"{name:<10} {entry['seconds']:>7.1f}s  {entry['results_file']}{note}")
    print(f"wrote {(RESULTS_DIR / 'summary.json').relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
