"""What the page benches share (bench_pages.py, bench_tournament_pages.py): Django set up for a
scratch test database of their own (SQLite in memory by default, PostgreSQL when DATABASE_URL
is set), a page's server time and SQL queries through the test client, and the JSON report.

Not a benchmark itself: run_all.py runs bench_*.py only.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gauntlet.settings")

TARGET_MS = 300.0


@contextmanager
def scratch_database(name: str) -> Iterator[None]:
    """Django set up on a throwaway database `bench_<name>_<database>`, so a bench never clobbers
    a test run's test_<name> database; destroyed on the way out."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    if connection.vendor != "sqlite":
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"bench_{name}_{old_name}"
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def settle() -> None:
    """After building the data: its garbage is not the pages' to collect, and the served app
    freezes what it loaded (gauntlet/wsgi.py, asgi.py)."""
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Measured:
    median_ms: float
    max_ms: float
    queries: int  # of the last request
    bytes: int
    status: int


def measure(client, url: str, headers: dict, *, repeat: int, before: Callable[[], None] | None = None) -> Measured:
    """GET `url` `repeat` times, each timed with its SQL queries counted; `before` runs (untimed)
    before each request, to put the server in the state being measured."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, response = [], 0, None
    for _ in range(repeat):
        if before is not None:
            before()
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            response = client.get(url, **headers)
            times.append((time.perf_counter() - began) * 1000)
        queries = len(captured.captured_queries)
    return Measured(
        round(statistics.median(times), 1), round(max(times), 1), queries, len(response.content), response.status_code
    )


def as_dict(measured: Measured, prefix: str = "") -> dict:
    return {f"{prefix}{key}": value for key, value in asdict(measured).items()}


def database_vendor() -> str:
    from django.db import connection

    return connection.vendor


def write_report(report: dict, output: str) -> None:
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
