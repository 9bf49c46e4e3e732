"""Per-round aggregates that pages read instead of recomputing history (issue 9).

round_completed() is called by competitions.rounds inside the transaction that completes a
round, after its equity snapshots are written.
"""

from __future__ import annotations

from .models import Round


def round_completed(*, round_: Round) -> None:
    """Bring the stored aggregates up to date with `round_` (nothing is stored yet)."""
