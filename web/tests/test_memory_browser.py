"""What a model may remember, in Chromium: the tournament ranking leaves in-sample windows out and
the toggle ranks them apart; the memory-gap page draws each agent's gaps with their intervals.
Screenshots in artifacts/screenshots/memory-*.png."""

import pytest

from agents.models import Invocation
from competitions.tests.conftest import replay_market  # noqa: F401 (fixture)
from tournaments.tests.memory_data import stored_memory_tournament
from web.tests.test_browser import SCREENSHOTS, browser, empty_cache, page  # noqa: F401 (fixtures)
from web.tests.test_masked_pages import masked_replay  # noqa: F401 (fixture)

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


def test_the_compare_page_of_an_agent_that_may_remember_pairs_only_its_windows_out_of_sample(
    live_server, page  # noqa: F811
):
    tournament = stored_memory_tournament(name="Memory cup")
    page.goto(f"{live_server.url}/tournaments/{tournament.pk}/")
    page.wait_for_selector("#forest-chart .main-svg")
    page.locator('#ranking tr[data-agent="Memory"] a').click()  # its comparison with the leader
    page.wait_for_selector("#paired-return_pct .main-svg")
    assert "in_sample=exclude" in page.url
    note = page.locator("#in-sample-note").inner_text()
    assert "Compared only on the 3 windows both agents have out of sample" in note
    assert "13 of 16 windows" in page.locator('#in-sample-reasons li[data-agent="Memory"]').inner_text()
    assert page.locator("#paired-windows .badge-in-sample").count() == 13
    page.screenshot(path=str(SCREENSHOTS / "memory-compare-excluded.png"), full_page=True)

    page.select_option("#in-sample-select", "include")
    page.click("text=Compare")
    page.wait_for_selector("#paired-return_pct .main-svg")
    assert "Every window counts" in page.locator("#in-sample-note").inner_text()
    assert "16 windows" in page.locator("#significance-heading").inner_text()
    assert page.console_errors == [] and page.outside_requests == []


def test_a_masked_replay_is_labelled_with_the_real_market_on_every_page(live_server, page, masked_replay):  # noqa: F811
    competition, model, btc = masked_replay
    page.goto(f"{live_server.url}/competitions/{competition.pk}/")
    page.wait_for_selector("#equity-chart .main-svg")
    assert f"{btc} = BTC/USDT" in page.locator("#masked-banner").inner_text()
    assert "(BTC/USDT)" in page.locator(".market-strip").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "memory-masked-dashboard.png"), full_page=True)

    page.goto(f"{live_server.url}/competitions/{competition.pk}/participants/{model.pk}/")
    assert "(BTC/USDT)" in page.locator("#open-positions").inner_text()
    page.locator("details.invocation summary").last.click()  # the first round: its answer opened a position
    page.wait_for_selector("details.invocation #masked-prompt-note")  # the body, loaded into the log
    page.screenshot(path=str(SCREENSHOTS / "memory-masked-participant.png"), full_page=True)

    first = Invocation.objects.filter(participant=model).order_by("round__number").first()
    page.goto(f"{live_server.url}/invocations/{first.pk}/")
    assert "exactly what the model saw" in page.locator("#masked-banner").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "memory-masked-invocation.png"), full_page=False)
    assert page.console_errors == [] and page.outside_requests == []
