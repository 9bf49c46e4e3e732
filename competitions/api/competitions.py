"""Competitions: list, create, read, change, delete, move through the lifecycle, equity history.

Views validate the request with a serializer, call one service (the only writer) and return
what the selectors read, in a fixed number of queries whatever the competition's size.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from gauntlet.api import ApiView

from .. import selectors, services
from ..models import Competition
from . import examples
from .common import COMPETITION_ID, HistoryQuery, points, query_params, read_errors, write_errors
from .serializers import (
    CompetitionActionSerializer,
    CompetitionHistorySerializer,
    CompetitionSerializer,
    CompetitionWriteSerializer,
)


class CompetitionListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Competition.Status.choices, required=False)
    mode = serializers.ChoiceField(choices=Competition.Mode.choices, required=False)


def competition_body(competition_id: int) -> dict:
    return CompetitionSerializer(selectors.competition_counted_get(competition_id=competition_id)).data


class CompetitionListCreateView(ApiView):
    """Competitions: list them (filter by status or mode) or create a draft."""

    @extend_schema(
        operation_id="competitions_list",
        tags=["competitions"],
        summary="List competitions, newest first",
        parameters=[CompetitionListQuery],
        responses={200: CompetitionSerializer(many=True), **read_errors(not_found=False, bad_query=True)},
        examples=examples.COMPETITIONS_LIST,
    )
    def get(self, request):
        filters = query_params(CompetitionListQuery, request)
        return self.paginate(selectors.competition_counted_list(**filters), CompetitionSerializer)

    @extend_schema(
        operation_id="competitions_create",
        tags=["competitions"],
        summary="Create a competition (draft)",
        description=(
            "Decimals may be sent as strings or numbers and come back as strings. Times are ISO-8601; "
            "without an offset they are read as UTC. Omitted rules take the defaults shown in the response."
        ),
        request=CompetitionWriteSerializer,
        responses={201: CompetitionSerializer, **write_errors(not_found=False, conflict=False)},
        examples=examples.COMPETITIONS_CREATE,
    )
    def post(self, request):
        serializer = CompetitionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        competition = services.competition_create(**serializer.validated_data)
        competition.participant_count = 0
        return Response(CompetitionSerializer(competition).data, status=status.HTTP_201_CREATED)


class CompetitionDetailView(ApiView):
    """One competition: its rules, status and replay clock."""

    @extend_schema(
        operation_id="competitions_retrieve",
        tags=["competitions"],
        parameters=[COMPETITION_ID],
        responses={200: CompetitionSerializer, **read_errors()},
        examples=examples.COMPETITIONS_RETRIEVE,
    )
    def get(self, request, id):
        return Response(competition_body(id))

    @extend_schema(
        operation_id="competitions_partial_update",
        tags=["competitions"],
        summary="Change a competition",
        description=(
            "Name, description, end_time and prompt_leaderboard may change until the competition finishes; "
            "every other rule only while it is a draft (409 otherwise)."
        ),
        parameters=[COMPETITION_ID],
        request=CompetitionWriteSerializer(partial=True),
        responses={200: CompetitionSerializer, **write_errors()},
        examples=examples.COMPETITIONS_PARTIAL_UPDATE,
    )
    def patch(self, request, id):
        serializer = CompetitionWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.competition_update(competition_id=id, **serializer.validated_data)
        return Response(competition_body(id))

    @extend_schema(
        operation_id="competitions_destroy",
        tags=["competitions"],
        summary="Delete a draft competition",
        parameters=[COMPETITION_ID],
        request=None,
        responses={204: None, **write_errors(bad_input=False)},
    )
    def delete(self, request, id):
        services.competition_delete(competition_id=id)
        return Response(status=status.HTTP_204_NO_CONTENT)


def lifecycle_view(action: str, service, summary: str, status_after: str) -> type[ApiView]:
    class CompetitionLifecycleView(ApiView):
        """Move the competition through its lifecycle; an illegal move is a 409."""

        @extend_schema(
            operation_id=f"competitions_{action}",
            tags=["competitions"],
            summary=summary,
            parameters=[COMPETITION_ID],
            request=CompetitionActionSerializer,
            responses={200: CompetitionSerializer, **write_errors()},
            examples=examples.competition_lifecycle(status_after),
        )
        def post(self, request, id):
            CompetitionActionSerializer(data=request.data or {}).is_valid(raise_exception=True)
            service(competition_id=id)
            return Response(competition_body(id))

    CompetitionLifecycleView.__name__ = f"Competition{action.title()}View"
    CompetitionLifecycleView.__qualname__ = CompetitionLifecycleView.__name__
    return CompetitionLifecycleView


CompetitionStartView = lifecycle_view(
    "start", services.competition_start, "Start a draft competition (needs a participant)", "active"
)
CompetitionPauseView = lifecycle_view(
    "pause", services.competition_pause, "Pause an active competition", "paused"
)
CompetitionResumeView = lifecycle_view(
    "resume", services.competition_resume, "Resume a paused competition", "active"
)
CompetitionStopView = lifecycle_view(
    "stop", services.competition_stop, "End a running competition now; results stand as they are", "completed"
)
CompetitionCancelView = lifecycle_view(
    "cancel", services.competition_cancel, "Cancel a competition (it will not count)", "cancelled"
)


class CompetitionHistoryView(ApiView):
    """Equity curves of every participant, downsampled for charts."""

    @extend_schema(
        operation_id="competitions_history",
        tags=["competitions"],
        summary="Equity series of every participant, about target_points points each",
        description=(
            "Each series starts at the initial capital and keeps the last point of each bucket, so the final "
            "equity is always there. Values are JSON numbers (chart data); exact amounts are in the export."
        ),
        parameters=[COMPETITION_ID, HistoryQuery],
        responses={200: CompetitionHistorySerializer, **read_errors(bad_query=True)},
        examples=examples.COMPETITIONS_HISTORY,
    )
    def get(self, request, id):
        target_points = query_params(HistoryQuery, request)["target_points"]
        selectors.competition_ensure_exists(competition_id=id)
        history = selectors.equity_history(competition_id=id, target_points=target_points)
        names = selectors.participant_names(competition_id=id)
        benchmark = selectors.downsample(selectors.buy_and_hold_reference(competition_id=id), target_points)
        body = {
            "competition_id": id,
            "target_points": target_points,
            "participants": [
                {"participant_id": pk, "name": names.get(pk, ""), "points": points(series)}
                for pk, series in history.items()
            ],
            "benchmark": points(benchmark),
        }
        return Response(CompetitionHistorySerializer(body).data)


__all__ = [
    "CompetitionCancelView",
    "CompetitionDetailView",
    "CompetitionHistoryView",
    "CompetitionListCreateView",
    "CompetitionPauseView",
    "CompetitionResumeView",
    "CompetitionStartView",
    "CompetitionStopView",
]
