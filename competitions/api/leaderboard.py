"""The competition's ranking by one metric (docs/analytics.md)."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

import analytics
from gauntlet.api import ApiView

from .. import selectors
from . import examples
from .common import COMPETITION_FK, query_params, read_errors
from .serializers import LeaderboardSerializer


class LeaderboardQuery(serializers.Serializer):
    metric = serializers.ChoiceField(
        choices=sorted(analytics.LEADERBOARD_METRICS),
        default=analytics.DEFAULT_LEADERBOARD_METRIC,
        help_text="Sort key, best first (max_drawdown: the shallowest first)",
    )
    limit = serializers.IntegerField(min_value=1, max_value=1000, required=False, help_text="Top N rows")
    include_benchmark = serializers.BooleanField(
        default=False, help_text="Add the equal-weight buy-and-hold row (rank null)"
    )


class LeaderboardView(ApiView):
    """The competition's ranking by one metric."""

    @extend_schema(
        operation_id="leaderboard",
        tags=["leaderboard"],
        summary="Participants ranked by a metric",
        description=(
            "Metrics follow docs/analytics.md: returns, drawdowns and rates in percent, Sharpe/Sortino "
            "annualised, durations in seconds. A metric that the data cannot define is null and sorts last."
        ),
        parameters=[COMPETITION_FK, LeaderboardQuery],
        responses={200: LeaderboardSerializer, **read_errors(bad_query=True)},
        examples=examples.LEADERBOARD,
    )
    def get(self, request, competition_id):
        query = query_params(LeaderboardQuery, request)
        selectors.competition_ensure_exists(competition_id=competition_id)
        rows = selectors.leaderboard_list(
            competition_id=competition_id,
            metric=query["metric"],
            limit=query.get("limit"),
            include_benchmark=query["include_benchmark"],
        )
        in_sample = selectors.in_sample_map(selectors.competition_get(competition_id=competition_id))
        rows = [
            {**row.as_dict(), "in_sample": in_sample.get(row.participant_id)} if hasattr(row, "as_dict") else row
            for row in rows
        ]
        body = {"competition_id": competition_id, "metric": query["metric"], "results": rows}
        return Response(LeaderboardSerializer(body).data)
