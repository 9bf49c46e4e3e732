"""REST endpoints for competitions and participants: thin doors into competitions.services.

Views validate the request with a serializer, call one service (the only writer) and
return what the selectors read. Every list is paginated (limit/offset) and read in a fixed
number of queries whatever the number of participants, rounds or trades.
"""

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response

from agents.invoke import provider_config_warnings
from agents.models import Invocation
from gauntlet.api import ApiView
from gauntlet.errors import ConflictError
from trading.models import EquitySnapshot, Fill
from trading.selectors import fill_list, position_list

from . import analytics, selectors, services
from .models import Competition, Participant, Round
from .page_queries import market_quotes
from .rounds import dispatch as runner
from .rounds.claim import RoundBusy
from .rules import account_view
from .serializers import (
    CompetitionActionSerializer,
    CompetitionHistorySerializer,
    CompetitionSerializer,
    CompetitionWriteSerializer,
    InvocationSerializer,
    LeaderboardRowSerializer,
    LeaderboardSerializer,
    ParticipantHistorySerializer,
    ParticipantRegisteredSerializer,
    ParticipantRegisterSerializer,
    ParticipantSerializer,
    ParticipantUpdateSerializer,
    PortfolioSerializer,
    PositionSerializer,
    RoundSerializer,
    RoundTriggeredSerializer,
    TradeSerializer,
    plain_decimal,
)

# -- shared schema pieces ------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description="Invalid input: `{field: [messages]}`, or `{detail, code}` when no single field is at fault",
    examples=[
        OpenApiExample(
            "a field refused",
            value={"max_leverage": ["max_leverage must be between 1 and 100/margin_requirement_pct = 10"]},
            status_codes=["400"],
            response_only=True,
        )
    ],
)
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object")
CONFLICT = OpenApiResponse(ErrorSerializer, description="Not allowed in the object's current state")
UNAUTHENTICATED = OpenApiResponse(ErrorSerializer, description="No X-API-Key header")
FORBIDDEN = OpenApiResponse(ErrorSerializer, description="The X-API-Key header holds no valid key")
THROTTLED = OpenApiResponse(ErrorSerializer, description="Too many writes; retry after Retry-After seconds")


def read_errors(*, not_found: bool = True, bad_query: bool = False) -> dict:
    errors = {401: UNAUTHENTICATED, 403: FORBIDDEN}
    if not_found:
        errors[404] = NOT_FOUND
    if bad_query:
        errors[400] = FIELD_ERRORS
    return errors


def write_errors(*, not_found: bool = True, conflict: bool = True, bad_input: bool = True) -> dict:
    errors = {401: UNAUTHENTICATED, 403: FORBIDDEN, 429: THROTTLED}
    if bad_input:
        errors[400] = FIELD_ERRORS
    if not_found:
        errors[404] = NOT_FOUND
    if conflict:
        errors[409] = CONFLICT
    return errors


def id_param(name: str, what: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.PATH, description=f"Id of the {what}")


COMPETITION_ID = id_param("id", "competition")
COMPETITION_FK = id_param("competition_id", "competition")
PARTICIPANT_ID = id_param("id", "participant")


def query_params(serializer_class, request) -> dict:
    """Validated query parameters (400 with the parameter named when one is wrong)."""
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# -- examples ------------------------------------------------------------------------------

COMPETITION_REQUEST_EXAMPLE = {
    "name": "BTC/ETH January replay",
    "description": "Hourly decisions on two coins, 10x max leverage",
    "start_time": "2025-01-01T00:00:00Z",
    "end_time": "2025-01-08T00:00:00Z",
    "invocation_interval_minutes": 60,
    "initial_capital": "10000",
    "max_leverage": "10",
    "max_position_size_pct": "50",
    "allowed_asset_classes": ["crypto"],
    "margin_requirement_pct": "10",
    "maintenance_margin_pct": "5",
    "max_participants": 10,
    "market_hours_only": False,
    "mode": "replay",
    "dataset": "binance-1h",
    "timeframe": "1h",
    "symbols": ["BTC/USDT", "ETH/USDT"],
}
COMPETITION_EXAMPLE = {
    "id": 1,
    **COMPETITION_REQUEST_EXAMPLE,
    "status": "draft",
    "fee_pct": "0.05",
    "spread_bps": "2",
    "slippage_bps": "1",
    "funding_rate_pct_8h": "0.01",
    "financing_rate_pct_annual": "3",
    "seed": 0,
    "prompt_leaderboard": False,
    "market_time": None,
    "created_at": "2026-01-05T09:30:00Z",
    "started_at": None,
    "completed_at": None,
    "participant_count": 0,
}
PARTICIPANT_REQUEST_EXAMPLE = {
    "name": "Claude",
    "llm_provider": "anthropic",
    "llm_model": "claude-haiku-4-5",
    "llm_config": {"temperature": 0.2, "max_tokens": 1024},
    "api_key": "sk-ant-...",
}
PARTICIPANT_EXAMPLE = {
    "id": 7,
    "competition": 1,
    "name": "Claude",
    "llm_provider": "anthropic",
    "llm_model": "claude-haiku-4-5",
    "llm_config": {"temperature": 0.2, "max_tokens": 1024},
    "has_api_key": True,
    "status": "active",
    "status_reason": "",
    "joined_at": "2026-01-05T09:31:00Z",
}


def page_example(item: dict) -> dict:
    # drf-spectacular wraps a list operation's example in the page envelope itself.
    return item


# -- competitions --------------------------------------------------------------------------


def competitions_annotated():
    return Competition.objects.annotate(participant_count=Count("participants", distinct=True))


def competition_read(competition_id: int) -> Competition:
    return competitions_annotated().get(pk=competition_id)


class CompetitionListQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Competition.Status.choices, required=False)
    mode = serializers.ChoiceField(choices=Competition.Mode.choices, required=False)


class CompetitionListCreateView(ApiView):
    """Competitions: list them (filter by status or mode) or create a draft."""

    @extend_schema(
        operation_id="competitions_list",
        tags=["competitions"],
        summary="List competitions, newest first",
        parameters=[CompetitionListQuery],
        responses={200: CompetitionSerializer(many=True), **read_errors(not_found=False, bad_query=True)},
        examples=[
            OpenApiExample(
                "a page", value=page_example(COMPETITION_EXAMPLE), response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request):
        filters = query_params(CompetitionListQuery, request)
        competitions = competitions_annotated().filter(**filters).order_by("-created_at", "-id")
        return self.paginate(competitions, CompetitionSerializer)

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
        examples=[
            OpenApiExample(
                "replay on Binance hourly data", value=COMPETITION_REQUEST_EXAMPLE, request_only=True
            ),
            OpenApiExample("created", value=COMPETITION_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
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
        examples=[
            OpenApiExample("a draft", value=COMPETITION_EXAMPLE, response_only=True, status_codes=["200"])
        ],
    )
    def get(self, request, id):
        return Response(CompetitionSerializer(competition_read(id)).data)

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
        examples=[
            OpenApiExample("extend the end", value={"end_time": "2025-01-15T00:00:00Z"}, request_only=True),
            OpenApiExample(
                "updated",
                value={**COMPETITION_EXAMPLE, "end_time": "2025-01-15T00:00:00Z"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def patch(self, request, id):
        serializer = CompetitionWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.competition_update(competition_id=id, **serializer.validated_data)
        return Response(CompetitionSerializer(competition_read(id)).data)

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
            examples=[
                OpenApiExample(
                    status_after,
                    value={**COMPETITION_EXAMPLE, "status": status_after, "participant_count": 2},
                    response_only=True,
                    status_codes=["200"],
                )
            ],
        )
        def post(self, request, id):
            CompetitionActionSerializer(data=request.data or {}).is_valid(raise_exception=True)
            service(competition_id=id)
            return Response(CompetitionSerializer(competition_read(id)).data)

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


# -- participants --------------------------------------------------------------------------


def participants_of(competition_id: int):
    return Participant.objects.filter(competition_id=competition_id).order_by("id")


class ParticipantRegisterView(ApiView):
    """Register an agent in a competition (until it finishes or is full)."""

    @extend_schema(
        operation_id="participants_register",
        tags=["participants"],
        summary="Register a participant (an LLM agent or a baseline) in a competition",
        description=(
            "`api_key` is write-only: it is stored encrypted and reads show only `has_api_key`. "
            "`warnings` lists what would make this agent's calls fail (a missing key, an unknown strategy)."
        ),
        parameters=[COMPETITION_FK],
        request=ParticipantRegisterSerializer,
        responses={201: ParticipantRegisteredSerializer, **write_errors()},
        examples=[
            OpenApiExample("an Anthropic model", value=PARTICIPANT_REQUEST_EXAMPLE, request_only=True),
            OpenApiExample(
                "a baseline strategy",
                value={"name": "Momentum", "llm_provider": "baseline", "llm_model": "momentum"},
                request_only=True,
            ),
            OpenApiExample(
                "registered",
                value={**PARTICIPANT_EXAMPLE, "warnings": []},
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    def post(self, request, competition_id):
        serializer = ParticipantRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        participant = services.participant_register(competition_id=competition_id, **data)
        participant.warnings = provider_config_warnings(
            participant.llm_provider, participant.llm_model, participant.llm_config, participant.has_api_key
        )
        return Response(ParticipantRegisteredSerializer(participant).data, status=status.HTTP_201_CREATED)


class ParticipantListView(ApiView):
    """The participants of one competition."""

    @extend_schema(
        operation_id="participants_list",
        tags=["participants"],
        summary="Every participant of a competition, in registration order",
        parameters=[COMPETITION_FK],
        responses={200: ParticipantSerializer(many=True), **read_errors(bad_query=True)},
        examples=[
            OpenApiExample(
                "a page", value=page_example(PARTICIPANT_EXAMPLE), response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request, competition_id):
        if not Competition.objects.filter(pk=competition_id).exists():
            raise Competition.DoesNotExist
        return self.paginate(participants_of(competition_id), ParticipantSerializer)


class ParticipantDetailView(ApiView):
    """One participant: provider, model, config (never its key) and status."""

    @extend_schema(
        operation_id="participants_retrieve",
        tags=["participants"],
        parameters=[PARTICIPANT_ID],
        responses={200: ParticipantSerializer, **read_errors()},
        examples=[
            OpenApiExample(
                "a participant", value=PARTICIPANT_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request, id):
        return Response(ParticipantSerializer(Participant.objects.get(pk=id)).data)

    @extend_schema(
        operation_id="participants_partial_update",
        tags=["participants"],
        summary="Disqualify a participant, or change its model, config or key",
        description=(
            "`status: disqualified` (with an optional `status_reason`) works at any time. Model, config and key "
            "may change only while the competition is a draft or paused (409 otherwise)."
        ),
        parameters=[PARTICIPANT_ID],
        request=ParticipantUpdateSerializer,
        responses={200: ParticipantSerializer, **write_errors()},
        examples=[
            OpenApiExample(
                "disqualify",
                value={"status": "disqualified", "status_reason": "broke the rules"},
                request_only=True,
            ),
            OpenApiExample("change the model", value={"llm_model": "claude-opus-4-1"}, request_only=True),
            OpenApiExample(
                "disqualified",
                value={**PARTICIPANT_EXAMPLE, "status": "disqualified", "status_reason": "broke the rules"},
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def patch(self, request, id):
        serializer = ParticipantUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        disqualify = changes.pop("status", None) is not None
        reason = changes.pop("status_reason", "")
        with transaction.atomic():
            if changes:
                services.participant_update(participant_id=id, **changes)
            if disqualify:
                services.participant_disqualify(participant_id=id, reason=reason)
        return Response(ParticipantSerializer(Participant.objects.get(pk=id)).data)


# -- rounds and history --------------------------------------------------------------------

ROUND_EXAMPLE = {
    "id": 12,
    "competition": 1,
    "number": 3,
    "market_time": "2025-01-01T03:00:00Z",
    "status": "completed",
    "phase": "completed",
    "detail": "",
    "timings": {"snapshot_s": 0.05, "agents_s": 4.2, "execute_s": 0.03, "mark_s": 0.02},
    "snapshot": 40,
    "llm_cost_usd": "0.0123",
    "started_at": "2026-01-05T10:00:00Z",
    "finished_at": "2026-01-05T10:00:04Z",
    "invocation_count": 2,
}


def rounds_of(competition_id: int):
    return (
        Round.objects.filter(competition_id=competition_id)
        .annotate(invocation_count=Count("invocations"))
        .order_by("number")
    )


def competition_exists(competition_id: int) -> None:
    if not Competition.objects.filter(pk=competition_id).exists():
        raise Competition.DoesNotExist


class CompetitionRoundsView(ApiView):
    """The competition's rounds: list them, or run the next one now."""

    @extend_schema(
        operation_id="competitions_rounds_list",
        tags=["rounds"],
        summary="Rounds of a competition, oldest first",
        parameters=[COMPETITION_ID],
        responses={200: RoundSerializer(many=True), **read_errors(bad_query=True)},
        examples=[OpenApiExample("a page", value=ROUND_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def get(self, request, id):
        competition_exists(id)
        return self.paginate(rounds_of(id), RoundSerializer)

    @extend_schema(
        operation_id="competitions_rounds_create",
        tags=["rounds"],
        summary="Run the next round now",
        description=(
            "With the in-process runner the round runs inside this request (every agent is called) and "
            "comes back with 201. With Celery it is queued for a worker: 202 and `round: null`; poll "
            "GET /competitions/{id}/rounds. A replay whose clock reached end_time runs its final round and "
            "completes. 409 when the competition is not active or another runner holds the round."
        ),
        parameters=[COMPETITION_ID],
        request=CompetitionActionSerializer,
        responses={
            201: RoundTriggeredSerializer,
            202: RoundTriggeredSerializer,
            200: OpenApiResponse(RoundTriggeredSerializer, description="Nothing left to run"),
            **write_errors(),
        },
        examples=[
            OpenApiExample(
                "ran here",
                value={"queued": False, "round": ROUND_EXAMPLE},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "queued", value={"queued": True, "round": None}, response_only=True, status_codes=["202"]
            ),
        ],
    )
    def post(self, request, id):
        CompetitionActionSerializer(data=request.data or {}).is_valid(raise_exception=True)
        competition = Competition.objects.get(pk=id)
        if competition.status != Competition.Status.ACTIVE:
            raise ConflictError(
                f"the competition is {competition.status}; rounds run only while active", code="not_active"
            )
        if runner.uses_celery():
            runner.dispatch_round_trigger(competition_id=id)
            return Response({"queued": True, "round": None}, status=status.HTTP_202_ACCEPTED)
        try:
            round_ = runner.dispatch_round_trigger(competition_id=id)
        except RoundBusy as exc:
            raise ConflictError(str(exc), code="round_busy") from exc
        if round_ is None:
            return Response({"queued": False, "round": None}, status=status.HTTP_200_OK)
        round_data = RoundSerializer(rounds_of(id).get(pk=round_.pk)).data
        return Response({"queued": False, "round": round_data}, status=status.HTTP_201_CREATED)


class HistoryQuery(serializers.Serializer):
    target_points = serializers.IntegerField(
        min_value=2, max_value=5000, default=500, help_text="About how many points per series"
    )


def points(series) -> list[tuple]:
    return [(moment, value) for moment, value in series]


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
        examples=[
            OpenApiExample(
                "two rounds",
                value={
                    "competition_id": 1,
                    "target_points": 500,
                    "participants": [
                        {
                            "participant_id": 7,
                            "name": "Claude",
                            "points": [
                                {"time": "2025-01-01T00:00:00Z", "value": 10000.0},
                                {"time": "2025-01-01T01:00:00Z", "value": 10012.5},
                            ],
                        }
                    ],
                    "benchmark": [
                        {"time": "2025-01-01T01:00:00Z", "value": 10000.0},
                    ],
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, id):
        target_points = query_params(HistoryQuery, request)["target_points"]
        competition_exists(id)
        history = selectors.equity_history(competition_id=id, target_points=target_points)
        names = dict(participants_of(id).values_list("id", "name"))
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


# -- leaderboard ---------------------------------------------------------------------------


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


LEADERBOARD_ROW_EXAMPLE = {
    "rank": 1,
    "participant_id": 7,
    "name": "Claude",
    "provider": "anthropic",
    "model": "claude-haiku-4-5",
    "status": "active",
    "is_baseline": False,
    "is_benchmark": False,
    "equity": 10412.5,
    "return_pct": 4.125,
    "pnl": 412.5,
    "sharpe": 1.83,
    "sortino": 2.4,
    "max_drawdown": -2.1,
    "cost_adjusted_return": 4.06,
    "trades": 6,
    "win_rate": 66.67,
    "llm_cost_usd": 6.2,
}


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
        examples=[
            OpenApiExample(
                "by Sharpe",
                value={"competition_id": 1, "metric": "sharpe", "results": [LEADERBOARD_ROW_EXAMPLE]},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, competition_id):
        query = query_params(LeaderboardQuery, request)
        competition_exists(competition_id)
        rows = selectors.leaderboard_list(
            competition_id=competition_id,
            metric=query["metric"],
            limit=query.get("limit"),
            include_benchmark=query["include_benchmark"],
        )
        body = {"competition_id": competition_id, "metric": query["metric"], "results": rows}
        return Response(LeaderboardSerializer(body).data)


# -- one participant's book ----------------------------------------------------------------


def participant_read(participant_id: int) -> Participant:
    return Participant.objects.select_related("competition").get(pk=participant_id)


def _open_position(line, marked: bool) -> dict:
    return {
        "id": None,
        "is_open": True,
        "symbol": line.symbol,
        "asset_class": line.asset_class,
        "side": line.side,
        "quantity": line.quantity,
        "entry_price": line.entry_price,
        "leverage": line.leverage,
        "initial_margin": line.initial_margin,
        "stop_loss": line.stop_loss,
        "take_profit": line.take_profit,
        "realised_pnl": line.realised_pnl,
        "fees": line.fees,
        "funding": line.funding,
        "opened_at": line.opened_at,
        "mark_price": line.mark_price,
        "marked": marked,
        "notional": line.notional,
        "unrealised_pnl": line.unrealised_pnl,
        "liquidation_price": line.liquidation_price,
        "exit_price": None,
        "closed_quantity": None,
        "net_pnl": None,
        "closed_at": None,
        "close_reason": "",
    }


def _closed_position(row) -> dict:
    return {
        "id": row.pk,
        "is_open": False,
        "symbol": row.symbol,
        "asset_class": row.asset_class,
        "side": row.side,
        "quantity": row.quantity,
        "entry_price": row.entry_price,
        "leverage": row.leverage,
        "initial_margin": row.initial_margin,
        "stop_loss": row.stop_loss,
        "take_profit": row.take_profit,
        "realised_pnl": row.realised_pnl,
        "fees": row.fees,
        "funding": row.funding,
        "opened_at": row.opened_at,
        "mark_price": None,
        "marked": False,
        "notional": None,
        "unrealised_pnl": None,
        "liquidation_price": None,
        "exit_price": row.exit_price,
        "closed_quantity": row.closed_quantity,
        "net_pnl": row.realised_pnl - row.fees + row.funding,
        "closed_at": row.closed_at,
        "close_reason": row.close_reason,
    }


def portfolio_of(participant: Participant) -> dict:
    """The account marked at the last round's snapshot prices (capital only before the first round)."""
    marked_at, quotes = market_quotes(participant.competition)
    prices = {quote.symbol: quote.price for quote in quotes}
    view = account_view(participant=participant, prices=prices)
    return {
        "participant_id": participant.pk,
        "marked_at": marked_at,
        "initial_capital": view.initial_capital,
        "cash": view.cash,
        "equity": view.equity,
        "unrealised_pnl": view.unrealised_pnl,
        "used_margin": view.used_margin,
        "free_margin": view.free_margin,
        "margin_level": view.margin_level,
        "maintenance_requirement": view.maintenance_requirement,
        "positions": [_open_position(line, line.symbol in prices) for line in view.positions],
    }


OPEN_POSITION_EXAMPLE = {
    "id": None,
    "is_open": True,
    "symbol": "BTC/USDT",
    "asset_class": "crypto",
    "side": "long",
    "quantity": "0.1",
    "entry_price": "94250.5",
    "leverage": "2",
    "initial_margin": "4712.525",
    "stop_loss": "90000",
    "take_profit": None,
    "realised_pnl": "0",
    "fees": "4.712525",
    "funding": "-0.94",
    "opened_at": "2025-01-01T00:00:00Z",
    "mark_price": "95010",
    "marked": True,
    "notional": "9501",
    "unrealised_pnl": "75.95",
    "liquidation_price": "48020.1",
    "exit_price": None,
    "closed_quantity": None,
    "net_pnl": None,
    "closed_at": None,
    "close_reason": "",
}


class ParticipantPortfolioView(ApiView):
    """Cash, equity, margins and open positions of one participant."""

    @extend_schema(
        operation_id="participants_portfolio",
        tags=["participants"],
        summary="The participant's account marked at the last round's prices",
        parameters=[PARTICIPANT_ID],
        responses={200: PortfolioSerializer, **read_errors()},
        examples=[
            OpenApiExample(
                "one long",
                value={
                    "participant_id": 7,
                    "marked_at": "2025-01-01T05:00:00Z",
                    "initial_capital": "10000",
                    "cash": "9994.35",
                    "equity": "10070.3",
                    "unrealised_pnl": "75.95",
                    "used_margin": "4712.525",
                    "free_margin": "5357.775",
                    "margin_level": "2.1369",
                    "maintenance_requirement": "475.05",
                    "positions": [OPEN_POSITION_EXAMPLE],
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, id):
        return Response(PortfolioSerializer(portfolio_of(participant_read(id))).data)


class PositionQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=["open", "closed"], default="open")


class ParticipantPositionsView(ApiView):
    """Open positions (marked) or closed ones (with their realised result)."""

    @extend_schema(
        operation_id="participants_positions",
        tags=["participants"],
        summary="Open positions (oldest first) or closed ones (latest closed first)",
        parameters=[PARTICIPANT_ID, PositionQuery],
        responses={200: PositionSerializer(many=True), **read_errors(bad_query=True)},
        examples=[
            OpenApiExample(
                "an open long", value=OPEN_POSITION_EXAMPLE, response_only=True, status_codes=["200"]
            )
        ],
    )
    def get(self, request, id):
        wanted = query_params(PositionQuery, request)["status"]
        participant = participant_read(id)
        if wanted == "open":
            return self.paginate(portfolio_of(participant)["positions"], PositionSerializer)
        closed = position_list(participant=participant, is_open=False).order_by("-closed_at", "-id")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(closed, request, view=self)
        return paginator.get_paginated_response(
            PositionSerializer([_closed_position(p) for p in page], many=True).data
        )


class SelectorPage:
    """A limit/offset page over a selector that returns the newest `limit` rows: count once,
    fetch offset + limit rows, keep the page (a fixed number of queries at any depth)."""

    def __init__(self, view, count: int, fetch):
        self.view, self.count, self.fetch = view, count, fetch

    def response(self, serializer_class):
        paginator = self.view.pagination_class()
        request = self.view.request
        paginator.request = request
        paginator.limit = paginator.get_limit(request)
        paginator.offset = paginator.get_offset(request)
        paginator.count = self.count
        rows = self.fetch(paginator.offset + paginator.limit)[paginator.offset :] if self.count else []
        return paginator.get_paginated_response(serializer_class(rows, many=True).data)


TRADE_EXAMPLE = {
    "id": 31,
    "symbol": "BTC/USDT",
    "side": "buy",
    "quantity": "0.1",
    "price": "94250.5",
    "fee": "4.712525",
    "realised_pnl": "0",
    "closes": False,
    "reason": "agent",
    "market_time": "2025-01-01T00:00:00Z",
    "order_id": 18,
    "invocation_id": 55,
    "reasoning": "BTC broke above its 20-bar high with rising volume",
}


class ParticipantTradesView(ApiView):
    """Every fill of one participant with the reasoning behind it."""

    @extend_schema(
        operation_id="participants_trades",
        tags=["participants"],
        summary="Fills, newest first, with the fill reason and the decision's reasoning",
        parameters=[PARTICIPANT_ID],
        responses={200: TradeSerializer(many=True), **read_errors(bad_query=True)},
        examples=[
            OpenApiExample("an agent's buy", value=TRADE_EXAMPLE, response_only=True, status_codes=["200"])
        ],
    )
    def get(self, request, id):
        participant = participant_read(id)
        count = fill_list(participant=participant).count()
        page = SelectorPage(
            self, count, lambda n: selectors.participant_fills(participant_id=participant.pk, limit=n)
        )
        return page.response(TradeSerializer)


class ParticipantPerformanceView(ApiView):
    """Every metric of one participant."""

    @extend_schema(
        operation_id="participants_performance",
        tags=["participants"],
        summary="Every metric of the participant (its leaderboard line; rank null)",
        parameters=[PARTICIPANT_ID],
        responses={200: LeaderboardRowSerializer, **read_errors()},
        examples=[
            OpenApiExample(
                "a line",
                value={**LEADERBOARD_ROW_EXAMPLE, "rank": None},
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, id):
        participant_read(id)
        return Response(LeaderboardRowSerializer(selectors.participant_performance(participant_id=id)).data)


class ParticipantHistoryView(ApiView):
    """Equity and drawdown series of one participant."""

    @extend_schema(
        operation_id="participants_history",
        tags=["participants"],
        summary="Equity and drawdown series, about target_points points each",
        parameters=[PARTICIPANT_ID, HistoryQuery],
        responses={200: ParticipantHistorySerializer, **read_errors(bad_query=True)},
        examples=[
            OpenApiExample(
                "two rounds",
                value={
                    "participant_id": 7,
                    "target_points": 500,
                    "equity": [
                        {"time": "2025-01-01T00:00:00Z", "value": 10000.0},
                        {"time": "2025-01-01T01:00:00Z", "value": 9950.0},
                    ],
                    "drawdown": [
                        {"time": "2025-01-01T00:00:00Z", "value": 0.0},
                        {"time": "2025-01-01T01:00:00Z", "value": -0.5},
                    ],
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, id):
        target_points = query_params(HistoryQuery, request)["target_points"]
        participant_read(id)
        body = {
            "participant_id": id,
            "target_points": target_points,
            "equity": points(
                selectors.participant_equity_history(participant_id=id, target_points=target_points)
            ),
            "drawdown": points(
                selectors.participant_drawdown_history(participant_id=id, target_points=target_points)
            ),
        }
        return Response(ParticipantHistorySerializer(body).data)


class InvocationQuery(serializers.Serializer):
    status = serializers.ChoiceField(choices=Invocation.Status.choices, required=False)


def invocations_of(participant_id: int, status: str | None = None):
    """Full invocation records, newest round first. agents.selectors has no list of full
    records (competitions.selectors.participant_invocations leaves the prompts out)."""
    rows = Invocation.objects.filter(participant_id=participant_id).select_related("round")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("-round__number", "-id")


class ParticipantInvocationsView(ApiView):
    """Every agent call of one participant, as recorded."""

    @extend_schema(
        operation_id="participants_invocations",
        tags=["participants"],
        summary="Invocations, newest first: prompts, raw answer, parsed decision, outcomes, tokens, cost",
        parameters=[PARTICIPANT_ID, InvocationQuery],
        responses={200: InvocationSerializer(many=True), **read_errors(bad_query=True)},
        examples=[
            OpenApiExample(
                "a valid decision",
                value={
                    "id": 55,
                    "participant_id": 7,
                    "round_id": 12,
                    "round_number": 0,
                    "market_time": "2025-01-01T00:00:00Z",
                    "snapshot_id": 40,
                    "provider": "anthropic",
                    "model": "claude-haiku-4-5",
                    "prompt_version": "v1",
                    "system_prompt": "You trade CFDs...",
                    "user_prompt": "Market at 2025-01-01T00:00Z...",
                    "raw_response": '{"reasoning": "BTC broke out", "actions": [...]}',
                    "parsed_decision": {
                        "reasoning": "BTC broke out",
                        "actions": [
                            {
                                "action": "open",
                                "symbol": "BTC/USDT",
                                "side": "long",
                                "quantity": "0.1",
                                "leverage": "2",
                            }
                        ],
                    },
                    "action_outcomes": [{"index": 0, "status": "filled", "order_id": 18}],
                    "status": "success",
                    "error": "",
                    "latency_ms": 4120,
                    "input_tokens": 5200,
                    "output_tokens": 180,
                    "cost_usd": "0.0183",
                    "retries": 0,
                    "created_at": "2026-01-05T10:00:04Z",
                },
                response_only=True,
                status_codes=["200"],
            )
        ],
    )
    def get(self, request, id):
        wanted = query_params(InvocationQuery, request).get("status")
        participant_read(id)
        return self.paginate(invocations_of(id, wanted), InvocationSerializer)


# -- exports -------------------------------------------------------------------------------


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["csv", "json"], default="csv")
    what = serializers.ChoiceField(choices=["trades", "equity", "invocations"], default="trades")


def _reasoning_of_order():
    return Subquery(
        Invocation.objects.filter(pk=OuterRef("order__invocation_id")).values(
            reasoning=KeyTextTransform("reasoning", "parsed_decision")
        )[:1]
    )


# what -> (columns, rows as tuples in that order); one query each, streamed with .iterator().
def _export_trades(competition_id: int):
    columns = [
        "fill_id",
        "participant_id",
        "participant",
        "market_time",
        "symbol",
        "side",
        "quantity",
        "price",
        "fee",
        "realised_pnl",
        "closes",
        "reason",
        "order_id",
        "invocation_id",
        "reasoning",
    ]
    rows = (
        Fill.objects.filter(account__participant__competition_id=competition_id)
        .annotate(reasoning=_reasoning_of_order())
        .order_by("market_time", "id")
        .values_list(
            "id",
            "account__participant_id",
            "account__participant__name",
            "market_time",
            "symbol",
            "side",
            "quantity",
            "price",
            "fee",
            "realised_pnl",
            "closes",
            "reason",
            "order_id",
            "order__invocation_id",
            "reasoning",
        )
    )
    return columns, rows


def _export_equity(competition_id: int):
    columns = [
        "participant_id",
        "participant",
        "market_time",
        "round_number",
        "equity",
        "cash",
        "unrealised_pnl",
        "used_margin",
        "free_margin",
        "maintenance_requirement",
        "open_positions",
    ]
    rows = (
        EquitySnapshot.objects.filter(account__participant__competition_id=competition_id)
        .order_by("market_time", "account__participant_id", "id")
        .values_list("account__participant_id", "account__participant__name", *columns[2:])
    )
    return columns, rows


def _export_invocations(competition_id: int):
    columns = [
        "invocation_id",
        "participant_id",
        "participant",
        "round_number",
        "market_time",
        "provider",
        "model",
        "prompt_version",
        "status",
        "error",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "retries",
        "reasoning",
        "actions",
        "action_outcomes",
        "created_at",
    ]
    rows = (
        Invocation.objects.filter(participant__competition_id=competition_id)
        .order_by("round__number", "participant_id", "id")
        .values_list(
            "id",
            "participant_id",
            "participant__name",
            "round__number",
            "round__market_time",
            "provider",
            "model",
            "prompt_version",
            "status",
            "error",
            "latency_ms",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "retries",
            KeyTextTransform("reasoning", "parsed_decision"),
            KeyTransform("actions", "parsed_decision"),
            "action_outcomes",
            "created_at",
        )
    )
    return columns, rows


EXPORTS = {"trades": _export_trades, "equity": _export_equity, "invocations": _export_invocations}


def export_value(value):
    """One cell: decimals exact, times ISO-8601 UTC, JSON kept as JSON (text in CSV)."""
    if isinstance(value, Decimal):
        return plain_decimal(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _csv_lines(columns, rows):
    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    yield writer.writerow(columns)
    for row in rows.iterator(chunk_size=2000):
        cells = []
        for value in row:
            value = export_value(value)
            if isinstance(value, dict | list):
                value = json.dumps(value, separators=(",", ":"))
            cells.append("" if value is None else value)
        yield writer.writerow(cells)


def _json_lines(columns, rows):
    yield "["
    separator = ""
    for row in rows.iterator(chunk_size=2000):
        record = {column: export_value(value) for column, value in zip(columns, row)}
        yield separator + json.dumps(record, separators=(",", ":"))
        separator = ",\n"
    yield "]\n"


class ExportNegotiation(BaseContentNegotiation):
    """The export chooses its format with ?format=, which DRF would otherwise read as a renderer name."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class CompetitionExportView(ApiView):
    """Trades, equity snapshots or invocations of a whole competition, streamed for pandas."""

    content_negotiation_class = ExportNegotiation

    @extend_schema(
        operation_id="competitions_export",
        tags=["competitions"],
        summary="Stream a competition's trades, equity snapshots or invocations as CSV or JSON",
        description=(
            "Streamed row by row (constant memory whatever the size). CSV has a header row; JSON is one array "
            "of objects. Decimals are exact strings, times ISO-8601 UTC. Load with "
            "`pandas.read_csv(url)` or `pandas.read_json(url)`."
        ),
        parameters=[COMPETITION_ID, ExportQuery],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV with a header row"),
            (200, "application/json"): OpenApiResponse(
                OpenApiTypes.ANY, description="A JSON array of row objects"
            ),
            **read_errors(bad_query=True),
        },
        examples=[
            OpenApiExample(
                "trades as CSV",
                value=(
                    "fill_id,participant_id,participant,market_time,symbol,side,quantity,price,fee,realised_pnl,"
                    "closes,reason,order_id,invocation_id,reasoning\r\n31,7,Claude,2025-01-01T00:00:00Z,BTC/USDT,"
                    "buy,0.1,94250.5,4.712525,0,False,agent,18,55,BTC broke out\r\n"
                ),
                media_type="text/csv",
                response_only=True,
                status_codes=["200"],
            ),
            OpenApiExample(
                "equity as JSON",
                value=[
                    {
                        "participant_id": 7,
                        "participant": "Claude",
                        "market_time": "2025-01-01T01:00:00Z",
                        "round_number": 1,
                        "equity": "10012.5",
                        "cash": "9995.29",
                        "unrealised_pnl": "17.21",
                        "used_margin": "4712.525",
                        "free_margin": "5299.975",
                        "maintenance_requirement": "475.05",
                        "open_positions": 1,
                    }
                ],
                media_type="application/json",
                response_only=True,
                status_codes=["200"],
            ),
        ],
    )
    def get(self, request, id):
        query = query_params(ExportQuery, request)
        competition_exists(id)
        columns, rows = EXPORTS[query["what"]](id)
        filename = f"competition-{id}-{query['what']}.{query['format']}"
        if query["format"] == "csv":
            response = StreamingHttpResponse(
                _csv_lines(columns, rows), content_type="text/csv; charset=utf-8"
            )
        else:
            response = StreamingHttpResponse(_json_lines(columns, rows), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
