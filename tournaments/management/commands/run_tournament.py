"""Run a tournament's runs here, in N local processes, with a progress line.

Each process claims runs (tournaments.runs.run_claim) until none is left, so processes
never share a run and any number of commands (or Celery workers) may work on the same
tournament at once. Ctrl-C: every process stops after its current round and gives its run
back; run the command again to resume. A draft tournament is started first.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from gauntlet.errors import DomainError
from tournaments import runs, selectors, services
from tournaments.models import Tournament


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def work(tournament_id: int, stop_event=None) -> int:
    """Claim and execute runs of the tournament until none is left to claim; returns how many ran."""
    owner = f"local:{socket.gethostname()}:{os.getpid()}"
    stopping = (lambda: stop_event.is_set()) if stop_event is not None else (lambda: False)
    executed = 0
    while not stopping():
        run = runs.run_claim(tournament_id=tournament_id, owner=owner)
        if run is None:
            break
        runs.run_execute(run_id=run.pk, owner=owner, stop=stopping)
        executed += 1
    return executed


def _child(tournament_id: int, stop_event) -> None:
    # Ctrl-C reaches the whole process group: the parent sets the event; children ignore the signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        work(tournament_id, stop_event)
    finally:
        connections.close_all()


class Command(BaseCommand):
    help = "Run a tournament's runs in N local processes (a draft is started first); Ctrl-C stops cleanly."

    def add_arguments(self, parser):
        parser.add_argument("tournament_id", type=int)
        parser.add_argument("--workers", type=int, default=1, help="local processes, each executing one run at a time")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between progress lines")

    def handle(self, *args, tournament_id, workers, interval, **options):
        tournament = Tournament.objects.filter(pk=tournament_id).first()
        if tournament is None:
            raise CommandError(f"no tournament with id {tournament_id}")
        if workers < 1 or workers > 64:
            raise CommandError("--workers must be between 1 and 64")
        try:
            if tournament.status == Tournament.Status.DRAFT:
                services.tournament_start(tournament_id=tournament_id, enqueue=False)
                self.stdout.write(f"tournament {tournament_id} started")
            elif tournament.status != Tournament.Status.RUNNING:
                raise CommandError(f"the tournament is {tournament.status}")
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        started = time.monotonic()
        first = selectors.tournament_progress(tournament_id)
        if workers == 1:
            self._run_here(tournament_id, interval, started, first.rounds_done)
        else:
            self._run_in_processes(tournament_id, workers, interval, started, first.rounds_done)
        progress = selectors.tournament_progress(tournament_id)
        self._show(progress, started, first.rounds_done, final=True)
        self.stdout.write(
            f"tournament {tournament_id} {progress.status}: {progress.runs_completed} completed, "
            f"{progress.runs_failed} failed, {progress.runs_pending + progress.runs_running} not finished, "
            f"LLM cost ${progress.llm_cost_usd}, cache hits {progress.cache_hits}"
        )
        for failure in progress.failures:
            self.stdout.write(
                f"  run {failure['run_id']} (window {failure['window']}, instance {failure['instance']}) "
                f"failed after {failure['attempts']} attempts: {failure['error']}"
            )
        if progress.runs_failed:
            raise CommandError(f"{progress.runs_failed} run(s) failed")

    def _run_here(self, tournament_id: int, interval: float, started: float, rounds_before: int) -> None:
        """One worker in this process. It shows the progress itself, between rounds (asked
        whether to stop after each one), on its own database connection: on SQLite a second
        connection would only wait for the worker's write lock."""
        stop = threading.Event()
        shown = {"at": time.monotonic()}

        class Stopping:  # work()'s stop event, showing the progress every `interval` seconds
            @staticmethod
            def is_set() -> bool:
                if time.monotonic() - shown["at"] >= interval:
                    self._show(selectors.tournament_progress(tournament_id), started, rounds_before)
                    shown["at"] = time.monotonic()
                return stop.is_set()

        def request_stop(signum, frame):
            stop.set()
            self.stderr.write("\nstopping after the current round (the run resumes next time)")

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            work(tournament_id, Stopping())
        finally:
            signal.signal(signal.SIGINT, previous)

    def _run_in_processes(self, tournament_id: int, workers: int, interval: float, started: float,
                          rounds_before: int) -> None:
        # fork: children inherit the configured settings (and a test's database name); the
        # parent closes its connections first so no child shares the parent's socket.
        context = multiprocessing.get_context("fork")
        stop = context.Event()
        connections.close_all()
        processes = [context.Process(target=_child, args=(tournament_id, stop), daemon=False) for _ in range(workers)]
        for process in processes:
            process.start()

        def request_stop(signum, frame):
            stop.set()
            self.stderr.write("\nstopping after the current round of each run (they resume next time)")

        previous = signal.signal(signal.SIGINT, request_stop)
        try:
            while any(p.is_alive() for p in processes):
                for process in processes:
                    process.join(timeout=interval / len(processes))
                self._show(selectors.tournament_progress(tournament_id), started, rounds_before)
        finally:
            signal.signal(signal.SIGINT, previous)
            for process in processes:
                process.join()
        crashed = [p.exitcode for p in processes if p.exitcode]
        if crashed:
            self.stderr.write(f"\n{len(crashed)} worker process(es) exited with an error: {crashed}")

    def _show(self, progress, started: float, rounds_before: int, final: bool = False) -> None:
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = (progress.rounds_done - rounds_before) / elapsed
        remaining = max(progress.rounds_total - progress.rounds_done, 0)
        eta = remaining / rate if rate > 0 else None
        line = (
            f"runs {progress.runs_done}/{progress.runs_total} ({progress.runs_running} running, "
            f"{progress.runs_failed} failed)  rounds {progress.rounds_done}/{progress.rounds_total} "
            f"{rate:.1f}/s  ETA {_duration(eta)}  LLM ${progress.llm_cost_usd}  cache hits {progress.cache_hits}"
        )
        if sys.stdout.isatty() and not final:
            self.stdout.write("\r" + line, ending="")
        else:
            self.stdout.write(line)
