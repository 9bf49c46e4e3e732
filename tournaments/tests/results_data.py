"""Completed tournaments made of stored per-run results only (no competitions replayed): for
page tests and the page bench, which read stored results and must never recompute a run."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from tournaments.models import RunStatus, Tournament, TournamentEntry, TournamentRun, TournamentWindow
from tournaments.results import STATISTICS_VERSION, results_refresh
from tournaments.runs import run_result_record

START = datetime(2025, 1, 1, tzinfo=UTC)


def _statistics(returns: list[float], is_baseline: bool) -> dict:
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    equity, peak, deepest = 1.0, 1.0, 0.0
    for value in returns:
        equity *= 1 + value
        peak = max(peak, equity)
        deepest = min(deepest, (equity / peak - 1) * 100)
    return {
        "is_baseline": is_baseline, "sharpe": mean / sd * math.sqrt(8760) if sd else None,
        "max_drawdown_pct": deepest, "cost_adjusted_return_pct": (equity - 1) * 100 - (0 if is_baseline else 0.01),
        "cost_usd": "0" if is_baseline else "0.00500000", "input_tokens": 0 if is_baseline else 1000 * len(returns),
        "output_tokens": 0 if is_baseline else 100 * len(returns), "invocations": len(returns),
        "invalid_responses": 0 if is_baseline else 1, "actions_proposed": 4, "actions_rejected": 0 if is_baseline else 1,
        "latency_seconds_sum": 0.0 if is_baseline else 0.8 * len(returns),
        "latency_samples": 0 if is_baseline else len(returns), "returns": [round(value, 12) for value in returns],
    }  # fmt: skip


def stored_tournament(
    *,
    agents: int = 4,
    windows: int = 3,
    instances: int = 2,
    rounds: int = 24,
    seed: int = 1,
    running: int = 0,
    name: str = "Stored cup",
    results: bool = True,
) -> Tournament:
    """A tournament whose runs are completed with stored results (the last `running` runs are
    still running, with no result, claimed by "worker"). Agent k drifts by k x 0.02 % a round;
    the last agent is a buy-and-hold baseline. With `results`, the tournament-level results are
    stored as the worker completing the last run would have stored them."""
    rng = random.Random(seed)
    tournament = Tournament.objects.create(
        name=name, dataset="stored-1h", timeframe="1h", symbols=["BTC/USDT"], instances=instances, seed=seed,
        status=Tournament.Status.COMPLETED if not running else Tournament.Status.RUNNING,
        windows_spec={"start": START.isoformat(), "count": windows, "length_minutes": rounds * 60},
        started_at=timezone.now(),
    )  # fmt: skip
    names = [f"Agent {k}" for k in range(agents - 1)] + ["Buy and hold"]
    TournamentEntry.objects.bulk_create([
        TournamentEntry(tournament=tournament, name=agent, llm_provider="baseline" if agent == "Buy and hold" else "openai",
                        llm_model="buy_and_hold" if agent == "Buy and hold" else "gpt-test")
        for agent in names
    ])  # fmt: skip
    window_rows = TournamentWindow.objects.bulk_create([
        TournamentWindow(tournament=tournament, index=index, start_time=START + timedelta(hours=rounds * index),
                         end_time=START + timedelta(hours=rounds * (index + 1)))
        for index in range(windows)
    ])  # fmt: skip
    runs, total = [], windows * instances
    for window in window_rows:
        market = [rng.gauss(0, 0.003) for _ in range(rounds)]
        for instance in range(instances):
            number = len(runs)
            if number >= total - running:
                runs.append(
                    TournamentRun(
                        tournament=tournament,
                        window=window,
                        instance=instance,
                        seed=seed + instance,
                        status=RunStatus.RUNNING,
                        claimed_by="worker",
                        rounds_done=rounds // 2,
                    )
                )
                continue
            participants = []
            for k, agent in enumerate(names):
                baseline = agent == "Buy and hold"
                returns = [m if baseline else 0.5 * m + 0.0002 * k + rng.gauss(0, 0.002) for m in market]
                stats = _statistics(returns, baseline)
                growth = math.prod(1 + r for r in returns)
                participants.append({
                    "name": agent, "llm_provider": "baseline" if baseline else "openai",
                    "llm_model": "buy_and_hold" if baseline else "gpt-test",
                    "final_equity": f"{10000 * growth:.2f}", "return_pct": f"{(growth - 1) * 100:.4f}",
                    "statistics": stats,
                })  # fmt: skip
            hold = math.prod(1 + m for m in market)
            runs.append(TournamentRun(
                tournament=tournament, window=window, instance=instance, seed=seed + instance,
                status=RunStatus.COMPLETED, rounds_done=rounds + 1, finished_at=timezone.now(), attempts=1,
                result={"participants": participants, "benchmark_return_pct": (hold - 1) * 100,
                        "statistics_version": STATISTICS_VERSION},
            ))  # fmt: skip
    TournamentRun.objects.bulk_create(runs)
    if results:
        results_refresh(tournament_id=tournament.pk)
    return tournament


def run_finish(run: TournamentRun) -> bool:
    """Complete a running run of a stored tournament the way a worker does (runs.run_result_record:
    its result and the tournament's results in one commit), with the result of a completed run
    of its window (or of any window): the same market, so the same kind of numbers."""
    done = TournamentRun.objects.filter(tournament_id=run.tournament_id, status=RunStatus.COMPLETED)
    source = done.filter(window_id=run.window_id).first() or done.first()
    return run_result_record(
        run=TournamentRun.objects.select_related("window").get(pk=run.pk), owner="worker", now=timezone.now(),
        result=source.result, rounds_done=source.rounds_done, attempts=1,
    )
