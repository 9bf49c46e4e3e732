"""A competition's rounds: list them, or run the next one now (in this request or on a worker)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from gauntlet.api import ApiView
from gauntlet.errors import ConflictError

from .. import selectors
from ..models import Competition
from .. import dispatch as runner
from ..rounds.claim import RoundBusy
from . import examples
from .common import COMPETITION_ID, read_errors, write_errors
from .serializers import CompetitionActionSerializer, RoundSerializer, RoundTriggeredSerializer


class CompetitionRoundsView(ApiView):
    """The competition's rounds: list them, or run the next one now."""

    @extend_schema(
        operation_id="competitions_rounds_list",
        tags=["rounds"],
        summary="Rounds of a competition, oldest first",
        parameters=[COMPETITION_ID],
        responses={200: RoundSerializer(many=True), **read_errors(bad_query=True)},
        examples=examples.ROUNDS_LIST,
    )
    def get(self, request, id):
        selectors.competition_ensure_exists(competition_id=id)
        return self.paginate(selectors.round_list(competition_id=id), RoundSerializer)

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
        examples=examples.ROUNDS_CREATE,
    )
    def post(self, request, id):
        CompetitionActionSerializer(data=request.data or {}).is_valid(raise_exception=True)
        competition = selectors.competition_get(competition_id=id)
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
        round_data = RoundSerializer(selectors.round_list(competition_id=id).get(pk=round_.pk)).data
        return Response({"queued": False, "round": round_data}, status=status.HTTP_201_CREATED)
