"""REST endpoints for competitions and participants: thin doors into competitions.services.

One module per resource (competitions, rounds, participants, leaderboard, exports); the
OpenAPI example bodies in `examples`, the shared error shapes in `common`, the position
shapes in `presenters`. Every list is paginated (limit/offset) and read through selectors
in a fixed number of queries whatever the number of participants, rounds or trades.
"""

from .competitions import (
    CompetitionCancelView,
    CompetitionDetailView,
    CompetitionHistoryView,
    CompetitionListCreateView,
    CompetitionPauseView,
    CompetitionResumeView,
    CompetitionStartView,
    CompetitionStopView,
)
from .exports import CompetitionExportView
from .leaderboard import LeaderboardView
from .participants import (
    ParticipantDetailView,
    ParticipantHistoryView,
    ParticipantInvocationsView,
    ParticipantListView,
    ParticipantPerformanceView,
    ParticipantPortfolioView,
    ParticipantPositionsView,
    ParticipantRegisterView,
    ParticipantTradesView,
)
from .rounds import CompetitionRoundsView

__all__ = [
    "CompetitionCancelView",
    "CompetitionDetailView",
    "CompetitionExportView",
    "CompetitionHistoryView",
    "CompetitionListCreateView",
    "CompetitionPauseView",
    "CompetitionResumeView",
    "CompetitionRoundsView",
    "CompetitionStartView",
    "CompetitionStopView",
    "LeaderboardView",
    "ParticipantDetailView",
    "ParticipantHistoryView",
    "ParticipantInvocationsView",
    "ParticipantListView",
    "ParticipantPerformanceView",
    "ParticipantPortfolioView",
    "ParticipantPositionsView",
    "ParticipantRegisterView",
    "ParticipantTradesView",
]
