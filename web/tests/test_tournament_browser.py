"""The tournament page in Chromium: the run grid follows a running tournament, then the
ranking, forest plot, pairwise matrix and window heatmap; a heatmap click opens a window's
equity curves. Screenshots in artifacts/screenshots/tournament-*.png."""

import pytest
from django.utils import timezone

from tournaments.models import RunStatus, Tournament, TournamentRun
from tournaments.tests.results_data import stored_tournament
from web.tests.test_browser import SCREENSHOTS, browser, empty_cache, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _finish_running_runs(tournament):
    done = (
        TournamentRun.objects.filter(tournament=tournament, status=RunStatus.COMPLETED).order_by("id").first()
    )
    TournamentRun.objects.filter(tournament=tournament, status=RunStatus.RUNNING).update(
        status=RunStatus.COMPLETED,
        result=done.result,
        rounds_done=done.rounds_done,
        finished_at=timezone.now(),
    )
    Tournament.objects.filter(pk=tournament.pk).update(status=Tournament.Status.COMPLETED)


def test_the_tournament_page_follows_the_runs_then_says_who_is_better(live_server, page):  # noqa: F811
    tournament = stored_tournament(
        agents=6, windows=12, instances=2, rounds=48, running=2, name="Browser cup"
    )
    page.goto(f"{live_server.url}/tournaments/{tournament.pk}/")
    assert page.locator("#run-grid .badge-running").count() == 2
    assert "22 / 24" in page.locator(".facts").inner_text()
    page.wait_for_selector("#forest-chart .main-svg")
    page.wait_for_selector("#pairs-chart .main-svg")
    page.wait_for_selector("#window-chart .main-svg")
    sentence = page.locator("#power-sentence").inner_text()
    # the last window is still running: its instances count once both are done
    assert sentence.startswith("With 11 windows, differences below") and "cannot be told apart" in sentence
    ranking = page.locator("#ranking tbody tr").all_inner_texts()
    assert len(ranking) == 6 and any("baseline" in row for row in ranking) and "best set" in ranking[0]
    page.screenshot(path=str(SCREENSHOTS / "tournament-running.png"), full_page=True)

    _finish_running_runs(tournament)
    # the live region polls every 3 s and stops once the tournament is completed
    page.wait_for_function("document.querySelector('#live').dataset.status === 'completed'", timeout=10000)
    assert page.locator("#run-grid .badge-running").count() == 0
    assert "24 / 24" in page.locator(".facts").inner_text()
    page.wait_for_selector("#window-chart .main-svg")

    # a click on a heatmap cell opens that window's equity curves
    page.locator("#window-chart").scroll_into_view_if_needed()
    box = page.locator("#window-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.wait_for_selector("#window-equity-chart .main-svg")
    assert page.locator("#window-heading").inner_text().startswith("Window 0")
    assert (
        page.locator("#window-detail a[href^='/competitions/']").count() == 0
    )  # stored runs have no competition
    page.screenshot(path=str(SCREENSHOTS / "tournament-completed.png"), full_page=True)
    page.locator("#pairs-chart").scroll_into_view_if_needed()
    page.locator("#pairs-chart").screenshot(path=str(SCREENSHOTS / "tournament-pairs.png"))
    assert page.console_errors == [] and page.outside_requests == []
