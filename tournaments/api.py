"""REST endpoints for tournaments, under /api/v1/tournaments: one viewset, thin doors into
tournaments.services (writes) and tournaments.selectors (reads).

    GET/POST          /tournaments
    GET/PATCH/DELETE  /tournaments/{id}            (PATCH and DELETE: drafts only, else 409)
    POST              /tournaments/{id}/start | /cancel
    GET               /tournaments/{id}/runs
    GET               /tournaments/{id}/export?format=json|csv&what=runs|invocations|bundle|agent_runs|agents
    GET               /tournaments/{id}/results?metric=return_pct|sharpe|max_drawdown_pct|cost_adjusted_return_pct
    POST              /tournaments/import
"""

from django.db import transaction
from django.http import HttpResponse
from django.urls import path, re_path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.response import Response
from rest_framework.viewsets import ViewSetMixin

from gauntlet.api import ApiView
from gauntlet.errors import ConflictError, DomainError

from . import bundle, in_sample, results, selectors, services
from .serializers import (
    BundleImportSerializer,
    ImportedSerializer,
    RunSerializer,
    TournamentDetailSerializer,
    TournamentSerializer,
    TournamentWriteSerializer,
)

TOURNAMENT_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="Id of the tournament")
CREATE_EXAMPLE = {
    "name": "January crypto cup",
    "dataset": "binance-1h",
    "timeframe": "1h",
    "symbols": ["BTC/USDT", "ETH/USDT"],
    "rules": {"initial_capital": "10000", "max_leverage": "5", "fee_pct": "0.05"},
    "windows_spec": {"start": "2025-01-01T00:00:00Z", "count": 4, "length_minutes": 10080},
    "instances": 3,
    "seed": 1,
    "cache_mode": "read_write",
    "entries": [
        {"name": "GPT", "llm_provider": "openai", "llm_model": "gpt-4o-mini", "llm_config": {"temperature": 0.2}},
        {"name": "Buy and hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"},
    ],
}
TOURNAMENT_EXAMPLE = {
    "id": 3, "status": "draft", "description": "", "max_attempts": 3,
    **{k: v for k, v in CREATE_EXAMPLE.items() if k != "entries"},
    "entries": [{**e, "llm_config": e.get("llm_config", {}), "has_api_key": False} for e in CREATE_EXAMPLE["entries"]],
    "windows": [{"index": 0, "start_time": "2025-01-01T00:00:00Z", "end_time": "2025-01-08T00:00:00Z"}],
    "created_at": "2026-12-01T09:00:00Z", "started_at": None, "completed_at": None,
}
PROGRESS_EXAMPLE = {
    "status": "running", "runs_total": 12, "runs_done": 5, "runs_pending": 5, "runs_running": 2, "runs_completed": 5,
    "runs_failed": 0, "runs_cancelled": 0, "rounds_done": 900, "rounds_total": 2028, "llm_cost_usd": "1.23400000",
    "cache_hits": 40, "failures": [],
}
RUN_EXAMPLE = {
    "id": 41, "window": 0, "window_start": "2025-01-01T00:00:00Z", "window_end": "2025-01-08T00:00:00Z",
    "instance": 1, "seed": 2, "status": "completed", "attempts": 1, "error": "", "claimed_by": "local:host:811",
    "competition_id": 77, "rounds_done": 169, "llm_cost_usd": "0.41200000",
    "result": {"participants": [{"name": "GPT", "llm_provider": "openai", "llm_model": "gpt-4o-mini",
                                 "final_equity": "10412.5", "return_pct": "4.1250"}]},
    "started_at": "2026-12-01T09:01:00Z", "finished_at": "2026-12-01T09:04:00Z", "seconds": 180.2,
}

RESULTS_EXAMPLE = {
    "tournament_id": 3, "runs_completed": 12, "last_finished_at": "2026-12-01T10:04:00+00:00",
    "settings": {"metric": "return_pct", "resamples": 2000, "seed": 0, "alpha": 0.05, "test": "wilcoxon",
                 "mcs_size": 0.1, "mcs_block_size": 1, "mcs_reps": 1000, "power": 0.8, "in_sample": "exclude"},
    "metric": "return_pct", "alpha": 0.05, "resamples": 2000, "seed": 0,
    "test": "wilcoxon", "windows": [0, 1, 2, 3],
    "ranking": [{"rank": 1, "agent": "GPT", "windows": 4, "runs": 12, "is_baseline": False, "in_confidence_set": True,
                 "metrics": {"return_pct": {"windows": 4, "mean": 2.1, "median": 1.9,
                                            "mean_interval": {"low": 0.4, "high": 3.8, "level": 0.95},
                                            "median_interval": {"low": 0.2, "high": 4.0, "level": 0.95}}},
                 "win_rates": [{"opponent": "buy and hold", "windows": 4, "wins": 3, "ties": 0, "losses": 1,
                                "rate_pct": 75.0}],
                 "sharpe_confidence": {"rounds": 672, "sharpe_per_round": 0.05, "lo_standard_error": 0.04,
                                       "psr": 0.89, "dsr": 0.61},
                 "usage": {"runs": 12, "invocations": 2016, "invalid_response_rate_pct": 0.5, "cost_usd": 4.2}}],
    "pairs": {"return_pct": [{"first": "GPT", "second": "Buy and hold", "metric": "return_pct", "windows": 4,
                              "mean_difference": 1.4, "interval": {"low": -0.3, "high": 3.1, "level": 0.95},
                              "p_bootstrap": 0.11, "p_wilcoxon": 0.25, "test": "wilcoxon", "p_value": 0.25,
                              "p_adjusted": 0.25, "verdict": "not distinguishable",
                              "minimum_detectable_difference": 2.9}]},
    "model_confidence_set": {"size": 0.1, "members": ["GPT", "Buy and hold"], "p_values": {"GPT": 1.0}},
    "power": {"metric": "return_pct", "windows": 4, "sd_difference": 2.0, "minimum_detectable_difference": 2.8},
    "power_sentence": {"windows": 4, "unit": "%", "minimum_detectable_difference": 2.8, "gap": 1.4, "first": "GPT",
                       "second": "Buy and hold", "windows_needed": 17, "more_windows": 13},
    "baselines": ["Buy and hold"],
    "window_values": {"return_pct": {"GPT": [3.1, -0.4, 2.2, 3.5], "Buy and hold": [1.0, -1.2, 0.9, 2.1]}},
    "in_sample": {
        "mode": "exclude", "masked": False, "windows_left_out": 0, "results": None,
        "note": "Windows that start before an agent's training-data cutoff may be answered from memory: they are "
                "left out of that agent's statistics. A pair of agents is compared only on the windows both have "
                "out of sample; the best set uses the windows every agent has out of sample.",
        "agents": [{"agent": "GPT", "status": "known", "training_cutoff": "2023-10-01",
                    "cutoff_source": "https://developers.openai.com/api/docs/models/gpt-4o-mini",
                    "cutoff_verified": True, "in_sample_windows": [], "windows_left_out": 0,
                    "windows_in_sample_with_results": 0,
                    "reason": "Every window with results starts after its training-data cutoff 2023-10-01 (source: "
                              "https://developers.openai.com/api/docs/models/gpt-4o-mini): every window counts."},
                   {"agent": "Buy and hold", "status": "code", "training_cutoff": None, "cutoff_source": None,
                    "cutoff_verified": None, "in_sample_windows": [], "windows_left_out": 0,
                    "windows_in_sample_with_results": 0,
                    "reason": "A built-in strategy remembers nothing: every window counts."}],
    },
}


class TournamentErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField(required=False)


FIELD_ERRORS = OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid input: `{field: [messages]}` or `{detail, code}`")
_ERROR = {
    401: OpenApiResponse(TournamentErrorSerializer, description="No X-API-Key header"),
    403: OpenApiResponse(TournamentErrorSerializer, description="The X-API-Key header holds no valid key"),
    404: OpenApiResponse(TournamentErrorSerializer, description="No such tournament"),
    409: OpenApiResponse(TournamentErrorSerializer, description="Not allowed in the tournament's current state"),
    429: OpenApiResponse(TournamentErrorSerializer, description="Too many writes; retry after Retry-After seconds"),
}


def errors(*codes: int) -> dict:
    return {code: FIELD_ERRORS if code == 400 else _ERROR[code] for code in codes}


READ = (400, 401, 403, 404)
WRITE = (400, 401, 403, 404, 409, 429)


def _example(name, value, code="200"):
    return OpenApiExample(name, value=value, response_only=True, status_codes=[code])


IN_SAMPLE_HELP = (
    "Windows that start before an agent's training-data cutoff: exclude them from its statistics, rank them apart, "
    "or include them; default: the tournament's in_sample setting (exclude unless changed)"
)


class ExportQuery(serializers.Serializer):
    format = serializers.ChoiceField(choices=["json", "csv"], default="json")
    what = serializers.ChoiceField(choices=["runs", "invocations", "bundle", "agent_runs", "agents"], default="runs")
    metric = serializers.ChoiceField(choices=list(results.METRICS), default="return_pct",
                                     help_text="what=agents: the metric of the ranking")
    in_sample = serializers.ChoiceField(choices=list(in_sample.MODES), required=False,
                                        help_text=f"what=agents: {IN_SAMPLE_HELP}")


class ResultsQuery(serializers.Serializer):
    metric = serializers.ChoiceField(choices=list(results.METRICS), default="return_pct",
                                     help_text="Orders the ranking; feeds the confidence set and the power sentence")
    in_sample = serializers.ChoiceField(choices=list(in_sample.MODES), required=False, help_text=IN_SAMPLE_HELP)


class NoBody(serializers.Serializer):
    pass


class QueryFormatNegotiation(BaseContentNegotiation):
    """?format= picks the export's format here, not a DRF renderer."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class TournamentViewSet(ViewSetMixin, ApiView):
    """Tournaments: a lineup replayed over many windows and seeded instances."""

    content_negotiation_class = QueryFormatNegotiation
    serializer_class = TournamentSerializer

    @extend_schema(operation_id="tournaments_list", tags=["tournaments"], responses={200: TournamentSerializer(many=True), **errors(400, 401, 403)},
                   examples=[_example("a page", {"count": 1, "next": None, "previous": None,
                                                 "results": [TOURNAMENT_EXAMPLE]})])
    def list(self, request):
        return self.paginate(selectors.tournament_list(), TournamentSerializer)

    @extend_schema(
        operation_id="tournaments_create", tags=["tournaments"], summary="Create a draft tournament with its lineup",
        request=TournamentWriteSerializer, responses={201: TournamentDetailSerializer, **errors(*WRITE)},
        examples=[OpenApiExample("a cup", value=CREATE_EXAMPLE, request_only=True),
                  _example("created", {**TOURNAMENT_EXAMPLE, "progress": PROGRESS_EXAMPLE}, "201")],
    )
    def create(self, request):
        data = _valid(TournamentWriteSerializer(data=request.data))
        tournament = services.tournament_create(**data)
        return Response(TournamentDetailSerializer(selectors.tournament_get(tournament.pk)).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="tournaments_retrieve", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   responses={200: TournamentDetailSerializer, **errors(*READ)},
                   examples=[_example("running", {**TOURNAMENT_EXAMPLE, "progress": PROGRESS_EXAMPLE})])
    def retrieve(self, request, id):
        return Response(TournamentDetailSerializer(selectors.tournament_get(id)).data)

    @extend_schema(operation_id="tournaments_partial_update", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   summary="Change a draft (entries, when given, replace the lineup)",
                   request=TournamentWriteSerializer(partial=True), responses={200: TournamentDetailSerializer, **errors(*WRITE)},
                   examples=[_example("updated", {**TOURNAMENT_EXAMPLE, "progress": PROGRESS_EXAMPLE})])
    def partial_update(self, request, id):
        data = _valid(TournamentWriteSerializer(data=request.data, partial=True))
        services.tournament_update(tournament_id=id, **data)
        return Response(TournamentDetailSerializer(selectors.tournament_get(id)).data)

    @extend_schema(operation_id="tournaments_destroy", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   request=None, responses={204: None, **errors(*WRITE)})
    def destroy(self, request, id):
        services.tournament_delete(tournament_id=id)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(operation_id="tournaments_start", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   summary="Start a draft: one replay competition per window and instance", request=NoBody,
                   responses={200: TournamentDetailSerializer, **errors(*WRITE)},
                   examples=[_example("started", {**TOURNAMENT_EXAMPLE, "status": "running", "progress": PROGRESS_EXAMPLE})])
    def start(self, request, id):
        services.tournament_start(tournament_id=id)
        return Response(TournamentDetailSerializer(selectors.tournament_get(id)).data)

    @extend_schema(operation_id="tournaments_cancel", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   summary="Cancel: unfinished runs and their competitions stop", request=NoBody,
                   responses={200: TournamentDetailSerializer, **errors(*WRITE)},
                   examples=[_example("cancelled", {**TOURNAMENT_EXAMPLE, "status": "cancelled",
                                                    "progress": PROGRESS_EXAMPLE})])
    def cancel(self, request, id):
        services.tournament_cancel(tournament_id=id)
        return Response(TournamentDetailSerializer(selectors.tournament_get(id)).data)

    @extend_schema(operation_id="tournaments_runs", tags=["tournaments"], parameters=[TOURNAMENT_ID],
                   responses={200: RunSerializer(many=True), **errors(*READ)},
                   examples=[_example("a page", {"count": 1, "next": None, "previous": None, "results": [RUN_EXAMPLE]})])
    def runs(self, request, id):
        selectors.tournament_check(id)  # a 404 for a missing tournament, not an empty page
        return self.paginate(selectors.run_list(id), RunSerializer)

    @extend_schema(
        operation_id="tournaments_export", tags=["tournaments"], parameters=[TOURNAMENT_ID, ExportQuery],
        summary="Export runs or invocations (JSON or CSV), or the reproducibility bundle (JSON)",
        responses={(200, "application/json"): OpenApiResponse(OpenApiTypes.ANY),
                   (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR), **errors(*READ)},
        examples=[_example("runs as JSON", [{"run_id": 41, "window": 0, "instance": 1, "participant": "GPT",
                                             "final_equity": "10412.5", "return_pct": "4.1250"}])],
    )
    def export(self, request, id):
        query = _valid(ExportQuery(data=request.query_params))
        selectors.tournament_check(id)
        if query["what"] == "bundle":
            if query["format"] != "json":
                raise DomainError("the bundle is JSON only", field="format")
            return Response(bundle.bundle_export(tournament_id=id))
        rows, columns = _export_rows(id, query)
        if query["format"] == "csv":
            response = HttpResponse(bundle.rows_csv(rows, columns), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="tournament-{id}-{query["what"]}.csv"'
            return response
        return Response(rows)

    @extend_schema(
        operation_id="tournaments_results", tags=["tournaments"], parameters=[TOURNAMENT_ID, ResultsQuery],
        summary="Who is better and how sure: ranking with intervals, pairwise verdicts, confidence set, power",
        description=(
            "Computed from the completed runs' stored results (docs/tournament-statistics.md) when a run "
            "completes, and stored with the state it counts (`runs_completed`, `last_finished_at`). `ranking` is best first by `metric`; every interval is a 95 % percentile bootstrap "
            "over windows; `pairs` holds per metric every pair with its Holm-adjusted verdict; agents in "
            "`model_confidence_set.members` are not told apart from the best at 90 % (the loss is minus `metric` per "
            "window); `window_values` holds each agent's value per window (aligned with `windows`, instances "
            "averaged) for every metric. `in_sample` says, per agent, which windows start before its "
            "training-data cutoff (and the cutoff's source) and what the ranking did with them: by default they "
            "are left out of that agent's statistics (and of `window_values`), and a pair is compared only on the "
            "windows both agents have out of sample (docs/memory.md). Each mode is stored apart: the tournament's "
            "own when a run completes, another when first asked. 409 before a run completes."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT), **errors(*READ, 409)},
        examples=[_example("two windows", RESULTS_EXAMPLE)],
    )
    def results(self, request, id):
        query = _valid(ResultsQuery(data=request.query_params))
        tournament = selectors.tournament_results_choice_get(id)
        mode = query.get("in_sample") or tournament.in_sample
        settings = results.ResultsSettings(metric=query["metric"], in_sample=mode)
        data = results.tournament_results_get(
            tournament_id=id, settings=settings, selection=in_sample.selection_digest_get(tournament)
        )
        if data is None:
            raise ConflictError("no run of this tournament has completed yet", code="no_results")
        return Response(data)

    @extend_schema(operation_id="tournaments_import", tags=["tournaments"], request=BundleImportSerializer,
                   summary="Make a draft tournament from a bundle and add its recorded answers to the cache",
                   responses={201: ImportedSerializer, **errors(400, 401, 403, 409, 429)},
                   examples=[OpenApiExample("a bundle", value={"bundle": {"format": bundle.BUNDLE_FORMAT, "version": 1},
                                                               "cache_mode": "read_only"}, request_only=True),
                             _example("imported", {"tournament": TOURNAMENT_EXAMPLE, "warnings": []}, "201")])
    def import_bundle(self, request):
        data = _valid(BundleImportSerializer(data=request.data))
        with transaction.atomic():
            tournament, warnings = bundle.bundle_import(
                bundle=data["bundle"], cache_mode=data.get("cache_mode"),
                allow_other_data=data["allow_other_data"], api_keys=data.get("api_keys"),
            )
        return Response({"tournament": TournamentSerializer(selectors.tournament_get(tournament.pk)).data,
                         "warnings": warnings}, status=status.HTTP_201_CREATED)


def _export_rows(tournament_id: int, query: dict) -> tuple[list[dict], list[str]]:
    what = query["what"]
    if what == "runs":
        return bundle.run_rows(tournament_id), bundle.RUN_COLUMNS
    if what == "invocations":
        return bundle.invocation_rows(tournament_id), bundle.INVOCATION_COLUMNS
    if what == "agent_runs":
        return bundle.agent_result_rows(tournament_id), bundle.AGENT_RESULT_COLUMNS
    data = results.tournament_results_get(
        tournament_id=tournament_id, metric=query["metric"], in_sample=query.get("in_sample")
    )
    return (bundle.agent_summary_rows(data) if data else []), bundle.AGENT_SUMMARY_COLUMNS


def _valid(serializer) -> dict:
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


_ID = r"(?P<id>[0-9]{1,18})"
urlpatterns = [
    path("tournaments", TournamentViewSet.as_view({"get": "list", "post": "create"}), name="tournament-list"),
    path("tournaments/import", TournamentViewSet.as_view({"post": "import_bundle"}), name="tournament-import"),
    re_path(rf"^tournaments/{_ID}$",
            TournamentViewSet.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
            name="tournament-detail"),
    *[
        re_path(rf"^tournaments/{_ID}/{action}$", TournamentViewSet.as_view({method: action}), name=f"tournament-{action}")
        for method, action in (("post", "start"), ("post", "cancel"), ("get", "runs"), ("get", "export"),
                               ("get", "results"))
    ],
]
