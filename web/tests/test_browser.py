"""The dashboard in a real browser: Debian's Chromium driven by Playwright against live_server.

Screenshots land in artifacts/screenshots/ (CI keeps them as artifacts). Never downloads a
browser: CHROMIUM (default /usr/bin/chromium) must exist, else these tests skip.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from competitions.models import Competition
from competitions.rounds.run import round_run
from competitions.tests.dashboard_data import ledger_competition, replay_competition

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls from the
    # test body are still synchronous and safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def empty_cache():
    """Live regions are cached per data version, and ids restart in every test's database."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    # No request may leave the machine: the pages must work offline.
    page.outside_requests = []
    page.on(
        "request",
        lambda request: (
            request.url.startswith(("http://localhost", "http://127.0.0.1", "data:"))
            or page.outside_requests.append(request.url)
        ),
    )
    yield page
    context.close()


def leaderboard_rows(page) -> list[str]:
    return page.locator("#leaderboard tbody tr").evaluate_all(
        "rows => rows.map(row => row.innerText.replace(/\\s+/g, ' ').trim())"
    )


def test_dashboard_renders_leaderboard_and_chart_then_updates_after_a_round(page, live_server):
    competition = replay_competition()
    for number in (1, 2, 3):
        round_run(competition_id=competition.pk, number=number)

    page.goto(f"{live_server.url}/competitions/{competition.pk}/")
    page.wait_for_selector("#equity-chart .main-svg")
    # four participants and the (unranked) buy-and-hold benchmark
    assert page.locator("#leaderboard tbody tr").count() == 5
    assert page.locator("#leaderboard tbody tr.is-benchmark").count() == 1
    # one line per participant, the benchmark and the initial-capital line
    assert page.locator("#equity-chart .scatterlayer .trace").count() == 6
    assert page.locator("#live").get_attribute("data-rounds") == "3"
    before = leaderboard_rows(page)
    page.screenshot(path=str(SCREENSHOTS / "dashboard-light.png"), full_page=True)

    # Polling pauses while the tab is hidden. Hide it while rounds write: the in-memory SQLite
    # test database locks tables instead of waiting (file SQLite and PostgreSQL just wait).
    page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
    page.wait_for_function("!document.querySelector('#live').classList.contains('htmx-request')")
    page.wait_for_timeout(500)
    for number in range(4, 13):
        round_run(competition_id=competition.pk, number=number)
    page.wait_for_timeout(3_500)
    assert page.locator("#live").get_attribute("data-rounds") == "3"  # no poll while hidden
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true})"
    )
    # visible again: the next poll (every 3 s) brings round 12 without reloading the page
    page.wait_for_function("document.querySelector('#live').dataset.rounds === '12'", timeout=15_000)
    after = leaderboard_rows(page)
    assert after != before
    # The chart is redrawn on htmx:afterSettle, a moment after the swap that changed data-rounds:
    # initial capital + 12 rounds, redrawn in place by Plotly.react.
    page.wait_for_function(
        "document.getElementById('equity-chart').data[0].x.length === 13", timeout=5_000
    )
    assert page.console_errors == []
    assert page.outside_requests == []
    page.screenshot(path=str(SCREENSHOTS / "dashboard-after-rounds.png"), full_page=True)


def test_polling_stops_when_the_competition_completes(page, live_server):
    competition = ledger_competition(participants=2, rounds=3)
    page.goto(f"{live_server.url}/competitions/{competition.pk}/")
    page.wait_for_selector("#equity-chart .main-svg")
    page.evaluate("Object.defineProperty(document, 'visibilityState', {value: 'hidden', configurable: true})")
    page.wait_for_function("!document.querySelector('#live').classList.contains('htmx-request')")
    page.wait_for_timeout(500)
    Competition.objects.filter(pk=competition.pk).update(status=Competition.Status.COMPLETED)
    page.evaluate(
        "Object.defineProperty(document, 'visibilityState', {value: 'visible', configurable: true})"
    )
    page.wait_for_function("document.querySelector('#live').dataset.status === 'completed'", timeout=10_000)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.wait_for_timeout(4_000)
    assert not [url for url in requests if f"/competitions/{competition.pk}/" in url]
    assert page.console_errors == []


def test_invocation_expands_to_exact_prompt_and_answer(page, live_server):
    competition = ledger_competition(participants=2, rounds=3)
    participant = competition.participants.order_by("id").last()
    page.goto(f"{live_server.url}/competitions/{competition.pk}/participants/{participant.pk}/")
    page.wait_for_selector("#participant-equity .main-svg")
    first = page.locator("details.invocation").first
    first.locator("summary").click()
    page.wait_for_selector("details.invocation[open] .invocation-body h3:has-text('System prompt')")
    body = first.locator(".invocation-body").inner_text()
    assert "You are a trader in a CFD competition." in body
    assert "Market snapshot and your portfolio." in body
    assert "thinks round 3 is a trade" in body
    assert "filled" in body
    assert page.console_errors == []
    first.screenshot(path=str(SCREENSHOTS / "invocation-expanded.png"))
    page.screenshot(path=str(SCREENSHOTS / "participant-light.png"), full_page=True)


def test_sorting_in_place_and_dark_mode_toggle_is_remembered(page, live_server):
    competition = ledger_competition(participants=3, rounds=5)
    url = f"{live_server.url}/competitions/{competition.pk}/"
    page.goto(url)
    page.wait_for_selector("#equity-chart .main-svg")
    # sorting swaps the live region in place and keeps the sort in the address bar and the polling URL
    page.click("#leaderboard thead a:has-text('LLM cost')")
    page.wait_for_selector("#leaderboard caption:has-text('Ranked by llm cost usd')")
    assert page.url.endswith("?sort=llm_cost_usd")
    assert page.locator("#live").get_attribute("hx-get").endswith("?sort=llm_cost_usd")
    light_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme-toggle")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg != light_bg
    page.reload()
    page.wait_for_selector("#equity-chart .main-svg")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == dark_bg
    assert page.console_errors == []
    page.screenshot(path=str(SCREENSHOTS / "dashboard-dark.png"), full_page=True)


def test_dark_theme_follows_the_system_and_phone_layout_fits(browser, live_server):
    competition = ledger_competition(participants=4, rounds=6)
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark", is_mobile=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live_server.url}/competitions/{competition.pk}/")
    page.wait_for_selector("#equity-chart .main-svg")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 19, 24)"  # --bg of the dark theme
    # nothing but the tables' own scrollers is wider than the phone
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert errors == []
    page.screenshot(path=str(SCREENSHOTS / "dashboard-phone-dark.png"), full_page=True)
    page.goto(f"{live_server.url}/")
    page.screenshot(path=str(SCREENSHOTS / "list-phone-dark.png"), full_page=True)
    context.close()


def test_participant_logs_load_older_rows_in_place(page, live_server):
    competition = ledger_competition(participants=1, rounds=60, orders_per_round=2, baselines=0)
    participant = competition.participants.get()
    page.goto(f"{live_server.url}/competitions/{competition.pk}/participants/{participant.pk}/")
    page.wait_for_selector("#participant-equity .main-svg")
    fills = page.locator("#fills tbody tr:not(.load-more)")
    assert fills.count() == 50  # of 120: one open and one close a round
    assert page.locator("details.invocation").count() == 50
    page.locator("#fills tr.load-more").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "participant-load-more-button.png"))

    page.click("#fills button:has-text('Load older fills')")
    page.wait_for_function("document.querySelectorAll('#fills tbody tr:not(.load-more)').length === 100")
    # the newest of the loaded rows follows the oldest shown before, and another button comes along
    times = fills.evaluate_all("rows => rows.map(row => row.querySelector('th').innerText)")
    assert times == sorted(times, reverse=True)
    assert page.locator("#fills tr.load-more button").count() == 1
    page.click("#fills button:has-text('Load older fills')")
    page.wait_for_function("document.querySelectorAll('#fills tbody tr:not(.load-more)').length === 120")
    assert page.locator("#fills tr.load-more").count() == 0  # the end of the log

    page.click("button:has-text('Load older invocations')")
    page.wait_for_function("document.querySelectorAll('details.invocation').length === 60")
    rounds = page.locator("details.invocation summary strong").all_inner_texts()
    assert rounds == [f"Round #{number}" for number in range(60, 0, -1)]
    # loaded rows hold the refresh, which would put the first page back
    page.wait_for_timeout(3_500)
    assert page.locator("details.invocation").count() == 60
    assert page.console_errors == []
    assert page.outside_requests == []
    page.locator("#closed-positions tr.load-more").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "participant-load-more-after.png"))
    page.screenshot(path=str(SCREENSHOTS / "participant-load-more.png"), full_page=True)
