"""Per-round returns on one grid and the significance of every pair's difference."""

from __future__ import annotations

import analytics
from analytics import PairComparison
from competitions.models import Competition
from competitions.selectors._load import _competition, _history, _load_participants, _periods_per_year


def aligned_returns(*, competition_id: int) -> dict[str, list[float]]:
    """Per-round returns of every participant (by name) on one grid: the union of snapshot
    times (analytics.aligned_returns: capital before the first mark, equity carried forward
    after the last)."""
    return _aligned_returns(_competition(competition_id))


def _aligned_returns(competition: Competition) -> dict[str, list[float]]:
    participants = _load_participants(competition, equity_only=True)
    return analytics.aligned_returns({p.name: _history(competition, p) for p in participants.values()})


def significance_matrix(
    *,
    competition_id: int,
    statistic: analytics.Statistic = "sharpe",
    seed: int | None = None,
    n_resamples: int = 2000,
) -> list[PairComparison]:
    """For each pair of participants (in id order), the seeded block-bootstrap 95 % interval of
    the difference in Sharpe or total return and its verdict (analytics.compare_participants).

    Returns are aligned per round (aligned_returns); seed defaults to the competition's seed,
    so the page and the API show the same intervals every time.
    """
    if statistic not in ("sharpe", "total_return"):
        raise ValueError(f"unknown statistic {statistic!r}; choose from ['sharpe', 'total_return']")
    competition = _competition(competition_id)
    return analytics.compare_participants(
        _aligned_returns(competition),
        statistic=statistic,
        periods_per_year=_periods_per_year(competition),
        n_resamples=n_resamples,
        seed=competition.seed if seed is None else seed,
    )
