"""Participants: register, list, read, change or disqualify; and one participant's book
(portfolio, positions, trades, performance, equity history, invocations)."""

from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from agents.invoke import provider_config_warnings
from agents.models import Invocation
from gauntlet.api import ApiView
from gauntlet.pagination import SelectorPage
from trading.selectors import closed_position_list, fill_count

from .. import selectors, services
from . import examples
from .common import (
    COMPETITION_FK,
    PARTICIPANT_ID,
    HistoryQuery,
    points,
    query_params,
    read_errors,
    write_errors,
)
from .presenters import closed_position_body, portfolio_body
from .serializers import (
    InvocationSerializer,
    LeaderboardRowSerializer,
    ParticipantHistorySerializer,
    ParticipantRegisteredSerializer,
    ParticipantRegisterSerializer,
    ParticipantSerializer,
    ParticipantUpdateSerializer,
    PortfolioSerializer,
    PositionSerializer,
    TradeSerializer,
)


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
        examples=examples.PARTICIPANTS_REGISTER,
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
        examples=examples.PARTICIPANTS_LIST,
    )
    def get(self, request, competition_id):
        selectors.competition_ensure_exists(competition_id=competition_id)
        return self.paginate(selectors.participant_list(competition_id=competition_id), ParticipantSerializer)


class ParticipantDetailView(ApiView):
    """One participant: provider, model, config (never its key) and status."""

    @extend_schema(
        operation_id="participants_retrieve",
        tags=["participants"],
        parameters=[PARTICIPANT_ID],
        responses={200: ParticipantSerializer, **read_errors()},
        examples=examples.PARTICIPANTS_RETRIEVE,
    )
    def get(self, request, id):
        return Response(ParticipantSerializer(selectors.participant_get(participant_id=id)).data)

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
        examples=examples.PARTICIPANTS_PARTIAL_UPDATE,
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
        return Response(ParticipantSerializer(selectors.participant_get(participant_id=id)).data)


# -- one participant's book ----------------------------------------------------------------


class ParticipantPortfolioView(ApiView):
    """Cash, equity, margins and open positions of one participant."""

    @extend_schema(
        operation_id="participants_portfolio",
        tags=["participants"],
        summary="The participant's account marked at the last round's prices",
        parameters=[PARTICIPANT_ID],
        responses={200: PortfolioSerializer, **read_errors()},
        examples=examples.PARTICIPANTS_PORTFOLIO,
    )
    def get(self, request, id):
        participant = selectors.participant_with_competition_get(participant_id=id)
        return Response(PortfolioSerializer(portfolio_body(participant)).data)


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
        examples=examples.PARTICIPANTS_POSITIONS,
    )
    def get(self, request, id):
        wanted = query_params(PositionQuery, request)["status"]
        participant = selectors.participant_with_competition_get(participant_id=id)
        if wanted == "open":
            return self.paginate(portfolio_body(participant)["positions"], PositionSerializer)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(closed_position_list(participant=participant), request, view=self)
        return paginator.get_paginated_response(
            PositionSerializer([closed_position_body(p) for p in page], many=True).data
        )


class ParticipantTradesView(ApiView):
    """Every fill of one participant with the reasoning behind it."""

    @extend_schema(
        operation_id="participants_trades",
        tags=["participants"],
        summary="Fills, newest first, with the fill reason and the decision's reasoning",
        parameters=[PARTICIPANT_ID],
        responses={200: TradeSerializer(many=True), **read_errors(bad_query=True)},
        examples=examples.PARTICIPANTS_TRADES,
    )
    def get(self, request, id):
        participant = selectors.participant_with_competition_get(participant_id=id)
        page = SelectorPage(
            self,
            fill_count(participant=participant),
            lambda n: selectors.participant_fills(participant_id=participant.pk, limit=n),
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
        examples=examples.PARTICIPANTS_PERFORMANCE,
    )
    def get(self, request, id):
        selectors.participant_with_competition_get(participant_id=id)
        return Response(LeaderboardRowSerializer(selectors.participant_performance(participant_id=id)).data)


class ParticipantHistoryView(ApiView):
    """Equity and drawdown series of one participant."""

    @extend_schema(
        operation_id="participants_history",
        tags=["participants"],
        summary="Equity and drawdown series, about target_points points each",
        parameters=[PARTICIPANT_ID, HistoryQuery],
        responses={200: ParticipantHistorySerializer, **read_errors(bad_query=True)},
        examples=examples.PARTICIPANTS_HISTORY,
    )
    def get(self, request, id):
        target_points = query_params(HistoryQuery, request)["target_points"]
        selectors.participant_with_competition_get(participant_id=id)
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


class ParticipantInvocationsView(ApiView):
    """Every agent call of one participant, as recorded."""

    @extend_schema(
        operation_id="participants_invocations",
        tags=["participants"],
        summary="Invocations, newest first: prompts, raw answer, parsed decision, outcomes, tokens, cost",
        parameters=[PARTICIPANT_ID, InvocationQuery],
        responses={200: InvocationSerializer(many=True), **read_errors(bad_query=True)},
        examples=examples.PARTICIPANTS_INVOCATIONS,
    )
    def get(self, request, id):
        wanted = query_params(InvocationQuery, request).get("status")
        selectors.participant_with_competition_get(participant_id=id)
        return self.paginate(
            selectors.invocation_record_list(participant_id=id, status=wanted), InvocationSerializer
        )
