"""Admin: a tournament is created with its lineup inline, started and cancelled by actions,
and its change page shows the progress."""

import pytest

from tournaments import services
from tournaments.models import Tournament
from tournaments.tests.conftest import START, tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)


def _inline_management(prefix: str, total: int) -> dict:
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": "0",
            f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"}


def _form(dataset: str, **overrides) -> dict:
    """The add page's form: a tournament of two windows with one entry (GPT) inline."""
    return {
        "name": "Admin cup", "description": "", "dataset": dataset, "timeframe": "1h",
        "symbols": '["BTC/USDT"]', "rules": '{"fee_pct": "0"}',
        "windows_spec": '{"start": "%s", "count": 2, "length_minutes": 120}' % START.isoformat(),
        "instances": "2", "seed": "3", "cache_mode": "read_write", "max_attempts": "3", "in_sample": "exclude",
        **_inline_management("entries", 1), **_inline_management("windows", 0), **_inline_management("runs", 0),
        "entries-0-name": "GPT", "entries-0-llm_provider": "openai", "entries-0-llm_model": "gpt-4o-mini",
        "entries-0-llm_config": "{}", **overrides,
    }


def test_a_tournament_is_created_with_an_inline_lineup_whose_key_is_stored_encrypted(admin_client, market):
    form = _form(market, **{"entries-0-api_key": "sk-admin-secret"})
    response = admin_client.post("/admin/tournaments/tournament/add/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    tournament = Tournament.objects.get(name="Admin cup")
    entry = tournament.entries.get()
    assert entry.api_key() == "sk-admin-secret" and "sk-admin-secret" not in entry.api_key_encrypted
    # the spec became windows when the form was saved
    assert tournament.windows.count() == 2


def test_start_and_cancel_actions_and_the_progress_on_the_change_page(admin_client, market):
    tournament = services.tournament_create(**tournament_fields())
    changelist = "/admin/tournaments/tournament/"
    admin_client.post(changelist, {"action": "start_tournaments", "_selected_action": [tournament.pk]})
    tournament.refresh_from_db()
    assert tournament.status == "running"
    page = admin_client.get(f"{changelist}{tournament.pk}/change/").content.decode()
    assert "runs 0/4 (0 running, 0 failed)" in page
    admin_client.post(changelist, {"action": "cancel_tournaments", "_selected_action": [tournament.pk]})
    tournament.refresh_from_db()
    assert tournament.status == "cancelled"


def test_an_inline_entry_with_a_key_in_its_config_is_refused(admin_client, market):
    form = _form(market, **{"entries-0-llm_config": '{"api_key": "sk-in-the-config"}'})
    response = admin_client.post("/admin/tournaments/tournament/add/", form)
    assert response.status_code == 200 and "must not hold credentials" in response.content.decode()
    assert not Tournament.objects.exists()
