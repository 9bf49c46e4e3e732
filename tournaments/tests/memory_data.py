"""Completed tournaments with chosen per-window returns (stored results only, nothing replayed),
for the in-sample ranking and the memory gap: an agent that "remembers" scores well on the
windows before its training cutoff and not after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from tournaments.models import RunStatus, Tournament, TournamentEntry, TournamentRun, TournamentWindow
from tournaments.results import STATISTICS_VERSION

API_KEY = "memory-tests-key"
START = datetime(2024, 1, 1, tzinfo=UTC)
WEEK = timedelta(weeks=1)
# 16 weekly windows from 2024-01-01; a cutoff of 2024-03 covers windows 0..12 (they start before 2024-04-01)
WINDOWS = 16
LINEUP = [
    # name, provider, model, llm_config
    ("Memory", "openai", "gpt-test", {"training_cutoff": "2024-03"}),
    ("Fresh", "openai", "gpt-test", {"training_cutoff": "2023-06"}),
    ("Hold", "baseline", "buy_and_hold", {}),
]


def remembering(window: int, in_sample: bool) -> float:
    """+5 % a window on history it may have read, -0.5 % on the rest."""
    return 5.0 if in_sample else -0.5


def plain(agent: str) -> Callable[[int], float]:
    if agent == "Fresh":
        return lambda window: 0.05 + 0.1 * ((window * 3) % 4 - 1.5)
    return lambda window: 0.1 * ((window * 7) % 5 - 2)  # small, varied, no trend


def stored_memory_tournament(
    *, name: str = "Memory cup", masked: bool = False, instances: int = 1, windows: int = WINDOWS,
    returns: Callable[[str, int], float] | None = None, copy_of: Tournament | None = None,
    status: str = Tournament.Status.COMPLETED, in_sample: str = "exclude",
) -> Tournament:
    """A tournament of LINEUP over weekly windows with stored results. `returns(agent, window)` gives
    each return %; by default Memory remembers (unless masked) and the others drift near 0."""
    tournament = Tournament.objects.create(
        name=name, dataset="memory-1h", timeframe="1h", symbols=["BTC/USDT"], instances=instances, seed=3,
        rules={"masked": True} if masked else {}, status=status, started_at=timezone.now(), copy_of=copy_of,
        windows_spec={"start": START.isoformat(), "count": windows, "length_minutes": 7 * 24 * 60},
        in_sample=in_sample,
    )  # fmt: skip
    TournamentEntry.objects.bulk_create([
        TournamentEntry(tournament=tournament, name=agent, llm_provider=provider, llm_model=model, llm_config=config)
        for agent, provider, model, config in LINEUP
    ])  # fmt: skip
    rows = TournamentWindow.objects.bulk_create([
        TournamentWindow(tournament=tournament, index=i, start_time=START + WEEK * i, end_time=START + WEEK * (i + 1))
        for i in range(windows)
    ])  # fmt: skip
    cutoff_end = datetime(2024, 4, 1, tzinfo=UTC)

    def default(agent: str, window: int) -> float:
        if agent == "Memory":
            return remembering(window, not masked and START + WEEK * window < cutoff_end)
        return plain(agent)(window)

    value = returns or default
    runs = []
    for window in rows:
        for instance in range(instances):
            participants = []
            for agent, provider, model, _ in LINEUP:
                pct = value(agent, window.index)
                step = (1 + pct / 100) ** 0.5 - 1
                participants.append({
                    "name": agent, "llm_provider": provider, "llm_model": model,
                    "final_equity": f"{10000 * (1 + pct / 100):.2f}", "return_pct": f"{pct:.4f}",
                    "statistics": {"sharpe": None, "max_drawdown_pct": min(0.0, pct), "cost_adjusted_return_pct": pct,
                                   "cost_usd": "0", "returns": [round(step, 12), round(step, 12)]},
                })  # fmt: skip
            runs.append(TournamentRun(
                tournament=tournament, window=window, instance=instance, seed=3 + instance,
                status=RunStatus.COMPLETED, rounds_done=2, finished_at=timezone.now(), attempts=1,
                result={"participants": participants, "benchmark_return_pct": 0.0,
                        "statistics_version": STATISTICS_VERSION},
            ))  # fmt: skip
    TournamentRun.objects.bulk_create(runs)
    return tournament


@pytest.fixture
def api(settings):
    """An API client with a valid key (import it into a test module as a fixture)."""
    settings.API_KEYS = [API_KEY]
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=API_KEY)
    return client
