"""HTML pages: competitions list, live dashboard, participant page (and its logs, a page at
a time), compare page, invocations; tournaments: list, page, window, compare, memory gap."""

from django.urls import path

from web import tournament_compare, tournament_memory, tournament_views, views

PARTICIPANT = "competitions/<int:competition_id>/participants/<int:participant_id>/"

urlpatterns = [
    path("", views.competition_list, name="competition-list"),
    path("competitions/<int:competition_id>/", views.competition_dashboard, name="competition-dashboard"),
    path(PARTICIPANT, views.participant_detail, name="participant-detail"),
    path(f"{PARTICIPANT}closed/", views.participant_log, {"log": "closed"}, name="participant-closed"),
    path(f"{PARTICIPANT}fills/", views.participant_log, {"log": "fills"}, name="participant-fills"),
    path(
        f"{PARTICIPANT}invocations/",
        views.participant_log,
        {"log": "invocations"},
        name="participant-invocations",
    ),
    path("competitions/<int:competition_id>/compare/", views.competition_compare, name="competition-compare"),
    path("invocations/<int:invocation_id>/", views.invocation_detail, name="invocation-detail"),
    path("tournaments/", tournament_views.tournament_list, name="tournament-list-page"),
    path("tournaments/<int:tournament_id>/", tournament_views.tournament_detail, name="tournament-page"),
    path(
        "tournaments/<int:tournament_id>/memory-gap/",
        tournament_memory.tournament_memory_gap,
        name="tournament-memory-gap-page",
    ),
    path(
        "tournaments/<int:tournament_id>/windows/<int:window_index>/",
        tournament_views.tournament_window,
        name="tournament-window",
    ),
    path(
        "tournaments/<int:tournament_id>/compare/",
        tournament_compare.tournament_compare,
        name="tournament-compare",
    ),
]
