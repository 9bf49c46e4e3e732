"""The admin forms in a real browser: someone who never writes JSON sets up a competition.

Debian's Chromium through Playwright, as in test_browser.py; skipped when it is absent.
Screenshots land in artifacts/screenshots/admin-*.png.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

from competitions.models import Competition, Participant
from competitions.services import competition_start
from competitions.tests.factories import ParticipantFactory
from trading.models import Account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(settings.BASE_DIR) / "artifacts" / "screenshots"
PASSWORD = "a-long-admin-password"


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # ORM calls from the test body next to Playwright's loop
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def admin_page(browser, live_server, django_user_model):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, color_scheme="light")
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    # Every admin script and stylesheet must load; the site has no favicon, which is fine.
    page.on(
        "response",
        lambda response: response.status >= 400
        and not response.url.endswith("/favicon.ico")
        and page.errors.append(f"{response.status} {response.url}"),
    )
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    page.base = live_server.url
    yield page
    context.close()


def test_a_competition_is_set_up_with_checkboxes_and_the_symbol_picker(admin_page):
    page = admin_page
    page.goto(f"{page.base}/admin/competitions/competition/add/")
    page.fill("#id_name", "Browser cup")
    page.select_option("#id_mode", "live")
    page.fill("#id_dataset", "")
    page.fill("#id_start_time_0", "2025-01-01")
    page.fill("#id_start_time_1", "00:00:00")
    page.fill("#id_end_time_0", "2025-01-08")
    page.fill("#id_end_time_1", "00:00:00")
    page.check("input[name=allowed_asset_classes][value=forex]")
    # The admin's two-box picker: pick from the left, move right with the arrow.
    page.select_option("#id_symbols_from", ["BTC/USDT", "EUR/USD"])
    page.click("#id_symbols_add")
    page.screenshot(path=str(SCREENSHOTS / "admin-competition-add.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    competition = Competition.objects.get(name="Browser cup")
    assert competition.allowed_asset_classes == ["crypto", "forex"]
    assert sorted(competition.symbols) == ["BTC/USDT", "EUR/USD"]
    assert page.errors == []


def test_a_participant_is_registered_with_model_settings_as_fields(admin_page):
    page = admin_page
    competition = ParticipantFactory().competition
    competition_start(competition_id=competition.pk)
    page.goto(f"{page.base}/admin/competitions/participant/add/")
    page.select_option("#id_competition", str(competition.pk))
    page.fill("#id_name", "Local Qwen")
    page.select_option("#id_llm_provider", "openai_compatible")
    page.fill("#id_llm_model", "qwen2.5:7b")
    page.fill("#id_config_base_url", "http://ollama:11434/v1")
    page.fill("#id_config_temperature", "3")
    page.fill("#id_config_max_tokens", "1024")
    page.select_option("#id_config_structured_output", "ollama_format")
    page.fill("#id_config_advanced", '{"pricing": {"input_per_mtok": 0, "output_per_mtok": 0}}')
    page.click("input[name=_save]")
    error = page.locator(".errorlist").first.inner_text()
    assert "less than or equal to 2" in error
    page.screenshot(path=str(SCREENSHOTS / "admin-participant-error.png"), full_page=True)
    assert not Participant.objects.filter(name="Local Qwen").exists()

    page.fill("#id_config_temperature", "0.2")
    page.click("input[name=_save]")
    page.wait_for_selector(".messagelist")
    participant = Participant.objects.get(name="Local Qwen")
    assert Account.objects.filter(participant=participant).exists()
    assert participant.llm_config == {
        "base_url": "http://ollama:11434/v1", "temperature": 0.2, "max_tokens": 1024,
        "structured_output": "ollama_format", "pricing": {"input_per_mtok": 0, "output_per_mtok": 0},
    }  # fmt: skip

    page.goto(f"{page.base}/admin/competitions/participant/{participant.pk}/change/")
    assert page.input_value("#id_config_temperature") == "0.2"
    assert '"pricing"' in page.input_value("#id_config_advanced")
    assert '"temperature"' not in page.input_value("#id_config_advanced")
    page.screenshot(path=str(SCREENSHOTS / "admin-participant-change.png"), full_page=True)
    assert page.errors == []


def test_a_started_competitions_page_shows_its_rules_and_participants(admin_page):
    page = admin_page
    competition = ParticipantFactory(llm_config={"temperature": 0.5, "seed": 3}).competition
    competition_start(competition_id=competition.pk)
    page.goto(f"{page.base}/admin/competitions/competition/{competition.pk}/change/")
    assert page.locator("#id_symbols_from").count() == 0  # rules are read-only once started
    page.screenshot(path=str(SCREENSHOTS / "admin-competition-active.png"), full_page=True)
    page.goto(f"{page.base}/admin/competitions/competition/add/")
    page.click("text=Add another Participant")
    page.click("#participants-0 summary")  # opens the collapsed model settings
    assert page.locator("#id_participants-0-config_temperature").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "admin-competition-add-empty.png"), full_page=True)
    assert page.errors == []
