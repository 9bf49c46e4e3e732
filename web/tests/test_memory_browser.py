"""What a model may remember, in Chromium: the tournament ranking leaves in-sample windows out and
the toggle ranks them apart; the memory-gap page draws each agent's gaps with their intervals.
Screenshots in artifacts/screenshots/memory-*.png."""

import pytest

from tournaments.tests.memory_data import stored_memory_tournament
from web.tests.test_browser import SCREENSHOTS, browser, empty_cache, page  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_in_sample_windows_are_left_out_then_ranked_apart_and_the_gap_page_draws_the_pair(
    live_server, page  # noqa: F811
):
    plain = stored_memory_tournament(name="Memory cup")
    stored_memory_tournament(name="Memory cup (masked)", masked=True, copy_of=plain)

    page.goto(f"{live_server.url}/tournaments/{plain.pk}/")
    page.wait_for_selector("#forest-chart .main-svg")
    note = page.locator("#in-sample-note").inner_text()
    assert "13 agent-window results left out" in note
    memory = page.locator('#in-sample-agents tr[data-agent="Memory"]').inner_text()
    assert "2024-03" in memory and "13 of 16 windows" in memory
    page.locator("#in-sample").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "memory-ranking-excluded.png"), full_page=True)

    page.select_option("#in-sample-select", "apart")  # htmx swaps the live region
    page.wait_for_selector("#in-sample-ranking")
    assert "in_sample=apart" in page.url
    assert page.locator('#in-sample-ranking tr[data-agent="Memory"]').count() == 1
    page.locator("#in-sample-ranking").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "memory-ranking-apart.png"), full_page=True)

    page.click("text=Read the memory gap")
    page.wait_for_selector("#gap-chart .main-svg")
    row = page.locator('#memory-gaps tr[data-agent="Memory"]').inner_text()
    assert "4.47 %" in row and "2024-03" in row
    assert page.locator("#gap-chart .point").count() >= 4  # two gaps for Memory, masked gaps for the others
    assert "shape" in page.locator("#gap-limits").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "memory-gap.png"), full_page=True)
    assert page.console_errors == [] and page.outside_requests == []
