"""The tournament page in Chromium: the run grid follows a running tournament, then the
ranking, forest plot, pairwise matrix and window heatmap; a heatmap click opens a window's
equity curves; a pairwise cell and a ranking link open the compare page of two agents.
Screenshots in artifacts/screenshots/tournament-*.png."""

import pytest
from tournaments.models import RunStatus, Tournament, TournamentRun
from tournaments.tests.results_data import run_finish, stored_tournament
from web.tests.test_browser import SCREENSHOTS, browser, empty_cache, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _finish_running_runs(tournament):
    for run in TournamentRun.objects.filter(tournament=tournament, status=RunStatus.RUNNING):
        assert run_finish(run)  # as a worker does: the run and the tournament's results in one commit
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


def test_a_pairwise_cell_and_a_ranking_link_open_the_compare_page_of_two_agents(live_server, page):  # noqa: F811
    tournament = stored_tournament(agents=5, windows=10, instances=2, rounds=48, name="Compare cup")
    page.goto(f"{live_server.url}/tournaments/{tournament.pk}/")
    page.wait_for_selector("#pairs-chart .main-svg")
    rows = page.locator("#ranking tbody tr")
    leader, runner_up = rows.nth(0).get_attribute("data-agent"), rows.nth(1).get_attribute("data-agent")
    # a click on the matrix's top row, second column: the leader against the runner-up
    page.locator("#pairs-chart").scroll_into_view_if_needed()
    box = page.locator("#pairs-chart .nsewdrag").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.1)
    page.wait_for_url("**/compare/?*")
    assert page.locator("h1").inner_text() == f"{leader} against {runner_up}"
    page.wait_for_selector("#paired-return_pct .main-svg")
    page.wait_for_selector("#paired-sharpe .main-svg")
    rows = page.locator("#tournament-significance tbody tr").all_inner_texts()
    assert len(rows) == 2 and rows[0].startswith(f"Return: {leader} − {runner_up}")
    assert page.locator("#paired-windows tbody tr").count() == 10
    assert page.locator("#paired-return_pct .bars .point").count() == 20  # two agents x 10 windows
    page.screenshot(path=str(SCREENSHOTS / "tournament-compare.png"), full_page=True)

    # the ranking's link of the last agent compares it with the leader
    page.go_back()
    page.wait_for_selector("#ranking")
    page.locator("#ranking tbody tr").last.locator("a").click()
    page.wait_for_url("**/compare/?*")
    assert page.locator("h1").inner_text().endswith(f"against {leader}")
    assert page.console_errors == [] and page.outside_requests == []
