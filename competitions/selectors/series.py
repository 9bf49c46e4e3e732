"""Equity and drawdown histories for charts, downsampled (the math is analytics.series)."""

from __future__ import annotations

from collections.abc import Sequence

from analytics import TimePoint, downsample, downsample_deepest, drawdown_series
from competitions.models import Participant
from competitions.selectors._load import _competition, _history, _load_snapshots, _ParticipantData


def equity_history(*, competition_id: int, target_points: int = 500) -> dict[int, list[TimePoint]]:
    """participant id -> [(market time, equity)] with the capital point first, downsampled to
    about target_points (analytics.downsample). Four queries."""
    competition = _competition(competition_id)
    participants = [
        _ParticipantData(pk, "", "", "", "", account_id, capital or competition.initial_capital)
        for pk, account_id, capital in Participant.objects.filter(competition=competition)
        .order_by("id")
        .values_list("id", "account__id", "account__initial_capital")
    ]
    _load_snapshots(competition, participants)
    return {p.participant_id: downsample(_history(competition, p), target_points) for p in participants}


def _participant_series(participant_id: int) -> list[TimePoint]:
    participant = Participant.objects.select_related("competition", "account").get(pk=participant_id)
    competition = participant.competition
    account = getattr(participant, "account", None)
    data = _ParticipantData(
        participant.pk,
        participant.name,
        "",
        "",
        "",
        account.pk if account else None,
        account.initial_capital if account else competition.initial_capital,
    )
    _load_snapshots(competition, [data])
    return _history(competition, data)


def participant_equity_history(*, participant_id: int, target_points: int = 500) -> list[TimePoint]:
    """[(market time, equity)] of one participant, capital first, downsampled. Three queries."""
    return downsample(_participant_series(participant_id), target_points)


def participant_drawdown_history(*, participant_id: int, target_points: int = 500) -> list[TimePoint]:
    """[(market time, drawdown %)] (<= 0, E_t / running peak - 1, x 100), downsampled keeping the
    deepest point of each bucket so the max drawdown stays on the chart. Three queries."""
    return drawdown_history(_participant_series(participant_id), target_points)


def drawdown_history(equity: Sequence[TimePoint], target_points: int = 500) -> list[TimePoint]:
    """participant_drawdown_history from an equity history already loaded (no query)."""
    return downsample_deepest(drawdown_series(equity), target_points)
