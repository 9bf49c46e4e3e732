"""REST API routes under /api/v1, without trailing slashes, as the published examples use them."""

from django.http import JsonResponse
from django.urls import include, path, re_path, register_converter
from django.views.decorators.csrf import csrf_exempt

from competitions import api as competitions_api
from gauntlet.api import HealthView
from marketdata import urls as marketdata_urls
from tournaments import api as tournaments_api
from tournaments import api_memory as tournaments_memory_api


class IdConverter:
    """A database id: 1 to 18 digits, so an oversized number is a 404, not a database overflow."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")


@csrf_exempt  # a write to a wrong path is a 404 like a read, not a CSRF page
def api_not_found(request, unmatched: str = ""):
    return JsonResponse({"detail": f"no API endpoint at {request.path}", "code": "not_found"}, status=404)


competition_paths = [
    path("competitions", competitions_api.CompetitionListCreateView.as_view(), name="competition-list"),
    path("competitions/<id:id>", competitions_api.CompetitionDetailView.as_view(), name="competition-detail"),
    path(
        "competitions/<id:id>/start",
        competitions_api.CompetitionStartView.as_view(),
        name="competition-start",
    ),
    path(
        "competitions/<id:id>/pause",
        competitions_api.CompetitionPauseView.as_view(),
        name="competition-pause",
    ),
    path(
        "competitions/<id:id>/resume",
        competitions_api.CompetitionResumeView.as_view(),
        name="competition-resume",
    ),
    path(
        "competitions/<id:id>/stop", competitions_api.CompetitionStopView.as_view(), name="competition-stop"
    ),
    path(
        "competitions/<id:id>/cancel",
        competitions_api.CompetitionCancelView.as_view(),
        name="competition-cancel",
    ),
    path(
        "competitions/<id:id>/rounds",
        competitions_api.CompetitionRoundsView.as_view(),
        name="competition-rounds",
    ),
    path(
        "competitions/<id:id>/history",
        competitions_api.CompetitionHistoryView.as_view(),
        name="competition-history",
    ),
    path(
        "competitions/<id:id>/export",
        competitions_api.CompetitionExportView.as_view(),
        name="competition-export",
    ),
]

participant_paths = [
    path(
        "participants/competitions/<id:competition_id>/participants",
        competitions_api.ParticipantRegisterView.as_view(),
        name="participant-register",
    ),
    path(
        "participants/competitions/<id:competition_id>/all",
        competitions_api.ParticipantListView.as_view(),
        name="participant-list",
    ),
    path("participants/<id:id>", competitions_api.ParticipantDetailView.as_view(), name="participant-detail"),
    *[
        path(f"participants/<id:id>/{name}", view.as_view(), name=f"participant-{name}")
        for name, view in {
            "portfolio": competitions_api.ParticipantPortfolioView,
            "positions": competitions_api.ParticipantPositionsView,
            "trades": competitions_api.ParticipantTradesView,
            "performance": competitions_api.ParticipantPerformanceView,
            "history": competitions_api.ParticipantHistoryView,
            "invocations": competitions_api.ParticipantInvocationsView,
        }.items()
    ],
]

leaderboard_paths = [
    path(
        "leaderboard/competitions/<id:competition_id>/leaderboard",
        competitions_api.LeaderboardView.as_view(),
        name="leaderboard",
    ),
]

urlpatterns = [
    *competition_paths,
    *participant_paths,
    *leaderboard_paths,
    # Market data views follow the same key rules as every view: settings.REST_FRAMEWORK defaults.
    path("market-data/", include((marketdata_urls.urlpatterns, marketdata_urls.app_name))),
    path("health", HealthView.as_view(), name="health"),
    *tournaments_api.urlpatterns,
    *tournaments_memory_api.urlpatterns,
    # Anything else under /api/v1 answers a JSON 404, never an HTML page.
    re_path(r"^(?P<unmatched>.*)$", api_not_found),
]
