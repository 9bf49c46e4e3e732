"""HTML pages: competitions list, live dashboard, participant page, compare page, invocations."""

from django.urls import path

from competitions import views

urlpatterns = [
    path("", views.competition_list, name="competition-list"),
    path("competitions/<int:competition_id>/", views.competition_dashboard, name="competition-dashboard"),
    path(
        "competitions/<int:competition_id>/participants/<int:participant_id>/",
        views.participant_detail,
        name="participant-detail",
    ),
    path("competitions/<int:competition_id>/compare/", views.competition_compare, name="competition-compare"),
    path("invocations/<int:invocation_id>/", views.invocation_detail, name="invocation-detail"),
]
