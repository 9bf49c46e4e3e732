"""REST doors to the memory gap (issue 16, docs/memory.md), under /api/v1/tournaments:

    POST  /tournaments/{id}/copy         a draft with the same lineup and windows, masked or not
    GET   /tournaments/{id}/memory-gap   per agent: masked vs unmasked and before vs after its cutoff

Thin doors into tournaments.services.tournament_copy and tournaments.memory.memory_gap_report.
"""

from django.urls import re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.viewsets import ViewSetMixin

from gauntlet.api import ApiView
from gauntlet.errors import ConflictError

from . import memory, selectors, services
from .api import PROGRESS_EXAMPLE, READ, TOURNAMENT_EXAMPLE, TOURNAMENT_ID, WRITE, errors
from .models import RunStatus
from .serializers import TournamentDetailSerializer


class CopySerializer(serializers.Serializer):
    masked = serializers.BooleanField(
        required=False, allow_null=True, default=None,
        help_text="true: the copy replays a masked world (rules.masked); false: the real one; absent: as the original",
    )
    name = serializers.CharField(max_length=150, required=False, help_text="Default: the name plus (masked) or (unmasked)")


class MemoryGapQuery(serializers.Serializer):
    masked = serializers.IntegerField(
        min_value=1, required=False,
        help_text="Id of the masked (or unmasked) counterpart: the same lineup on the same windows. Default: the "
        "newest copy (copy_of) with results",
    )
    resamples = serializers.IntegerField(min_value=100, max_value=20000, default=2000,
                                         help_text="Bootstrap draws for the intervals")
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, default=0, help_text="Bootstrap seed")


GAP = {"value": 1.2, "interval": {"low": 0.3, "high": 2.1, "level": 0.95}, "windows": 8}
MEMORY_GAP_EXAMPLE = {
    "tournament_id": 3, "tournament_name": "January crypto cup", "masked_tournament_id": 4,
    "masked_tournament_name": "January crypto cup (masked)", "metric": "return_pct", "level": 0.95,
    "resamples": 2000, "seed": 0, "note": None,
    "agents": [
        {"agent": "GPT", "is_code": False, "training_cutoff": "2024-06-01",
         "cutoff_source": "https://developers.openai.com/api/docs/models/gpt-4.1-mini",
         "masked_gap": GAP, "cutoff_gap": {"value": 0.9, "interval": {"low": -0.4, "high": 2.2, "level": 0.95},
                                           "windows": 8},
         "windows_before_cutoff": 4, "windows_after_cutoff": 4,
         "masked_reading": "GPT made +1.20 % a window more when it could see the real names and dates (95 % interval "
                           "+0.30 % .. +2.10 %, 8 windows): the interval lies above 0, so part of its result may come "
                           "from remembering this history.",
         "cutoff_reading": "Before its cutoff 2024-06-01 minus after: +0.90 % a window (95 % interval -0.40 % .. "
                           "+2.20 %; 4 windows before, 4 after): no difference can be told apart. Before and after "
                           "are different markets, so this gap mixes memory with a change of regime."},
        {"agent": "Buy and hold", "is_code": True, "training_cutoff": None, "cutoff_source": None,
         "masked_gap": {"value": 0.0, "interval": {"low": 0.0, "high": 0.0, "level": 0.95}, "windows": 8},
         "cutoff_gap": None, "windows_before_cutoff": 0, "windows_after_cutoff": 0,
         "masked_reading": "Buy and hold is a built-in strategy: it trades the same way in both worlds, so its gap "
                           "(+0.00 %) is 0 by construction, a check that masking changed nothing but the names.",
         "cutoff_reading": "No training cutoff: no before/after comparison."},
    ],
    "meaning": memory.MEANING,
    "limits": list(memory.LIMITS),
}  # fmt: skip


class TournamentMemoryViewSet(ViewSetMixin, ApiView):
    """The memory gap: the same lineup masked and unmasked, before and after each model's cutoff."""

    serializer_class = TournamentDetailSerializer

    @extend_schema(
        operation_id="tournaments_copy", tags=["tournaments"], parameters=[TOURNAMENT_ID],
        summary="Copy a tournament as a draft with the same lineup and windows, masked or not",
        description="The way to run the same lineup masked and unmasked: `{\"masked\": true}` makes the masked "
        "counterpart (rules.masked; keys are copied encrypted, never shown). Start the copy, and when both have "
        "results GET .../memory-gap reads the gap between them (docs/memory.md).",
        request=CopySerializer, responses={201: TournamentDetailSerializer, **errors(*WRITE)},
        examples=[
            OpenApiExample("masked copy", value={"masked": True}, request_only=True),
            OpenApiExample("copied", value={**TOURNAMENT_EXAMPLE, "id": 4, "name": "January crypto cup (masked)",
                                            "rules": {**TOURNAMENT_EXAMPLE["rules"], "masked": True}, "copy_of": 3,
                                            "in_sample": "exclude", "progress": PROGRESS_EXAMPLE},
                           response_only=True, status_codes=["201"]),
        ],
    )
    def copy(self, request, id):
        data = CopySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        selectors.tournament_get(id)  # 404 for a missing tournament
        copy = services.tournament_copy(tournament_id=id, masked=data.validated_data.get("masked"),
                                        name=data.validated_data.get("name"))
        return Response(TournamentDetailSerializer(selectors.tournament_get(copy.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="tournaments_memory_gap", tags=["tournaments"], parameters=[TOURNAMENT_ID, MemoryGapQuery],
        summary="How much of each agent's result its memory may explain: masked vs unmasked, before vs after cutoff",
        description=(
            "Per agent, on return % per window (instances averaged first): `masked_gap` = unmasked minus masked over "
            "the windows both tournaments completed (paired, 95 % bootstrap interval over windows) and `cutoff_gap` = "
            "windows starting before the agent's training-data cutoff minus those after (two-sample bootstrap), each "
            "with a sentence saying what it means; `limits` says what they cannot mean. The tournament may be either "
            "side of the pair. 400 when `masked` names no tournament or not the same lineup and windows; 409 before "
            "a run of the unmasked tournament completes."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **errors(*READ, 409)},
        examples=[OpenApiExample("a pair", value=MEMORY_GAP_EXAMPLE, response_only=True, status_codes=["200"])],
    )
    def memory_gap(self, request, id):
        query = MemoryGapQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        selectors.tournament_get(id)
        report = memory.memory_gap_report(
            tournament_id=id, masked_tournament_id=query.validated_data.get("masked"),
            resamples=query.validated_data["resamples"], seed=query.validated_data["seed"],
        )
        if not selectors.run_list(report["tournament_id"]).filter(status=RunStatus.COMPLETED).exists():
            raise ConflictError("no run of the unmasked tournament has completed yet", code="no_results")
        return Response(report)


_ID = r"(?P<id>[0-9]{1,18})"
urlpatterns = [
    re_path(rf"^tournaments/{_ID}/copy$", TournamentMemoryViewSet.as_view({"post": "copy"}), name="tournament-copy"),
    re_path(rf"^tournaments/{_ID}/memory-gap$", TournamentMemoryViewSet.as_view({"get": "memory_gap"}),
            name="tournament-memory-gap"),
]
