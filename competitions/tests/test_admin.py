"""The admin drives competitions through the services and never reveals an API key."""

import json
import logging
from datetime import timedelta

import pytest

from competitions import services
from competitions.models import Competition, Participant
from competitions.services import competition_start, competition_stop, participant_register
from competitions.tests.factories import START, CompetitionFactory, ParticipantFactory
from trading.models import Account

pytestmark = pytest.mark.django_db

SECRET = "sk-ant-very-secret-key-0123456789"


@pytest.fixture
def admin_user(django_user_model):
    # pytest-django's admin_user hashes a password (a second of PBKDF2 on a busy machine);
    # admin_client logs in with force_login and needs none.
    return django_user_model.objects.create_superuser("admin", "admin@example.com", password=None)


def _action(admin_client, action, competitions):
    return admin_client.post(
        "/admin/competitions/competition/",
        {"action": action, "_selected_action": [c.pk for c in competitions]},
        follow=True,
    )


def test_start_pause_resume_stop_actions_call_the_services(admin_client):
    competition = ParticipantFactory().competition
    for action, status in [
        ("start_competitions", "active"),
        ("pause_competitions", "paused"),
        ("resume_competitions", "active"),
        ("stop_competitions", "completed"),
    ]:
        response = _action(admin_client, action, [competition])
        assert response.status_code == 200
        competition.refresh_from_db()
        assert competition.status == status


def test_an_illegal_action_shows_the_services_reason(admin_client):
    competition = CompetitionFactory()  # draft with nobody registered
    response = _action(admin_client, "pause_competitions", [competition])
    assert "cannot move a draft competition to paused" in response.content.decode()
    competition.refresh_from_db()
    assert competition.status == "draft"


def _competition_form(**overrides):
    data = {
        "name": "Admin cup", "description": "", "mode": "replay", "dataset": "binance-1h", "timeframe": "1h",
        "start_time_0": "2025-01-01", "start_time_1": "00:00:00",
        "end_time_0": "2025-01-08", "end_time_1": "00:00:00",
        "invocation_interval_minutes": "60", "initial_capital": "10000", "max_leverage": "10",
        "max_position_size_pct": "50", "margin_requirement_pct": "10", "maintenance_margin_pct": "5",
        "allowed_asset_classes": ["crypto"], "symbols": ["BTC/USDT"], "max_participants": "10",
        "fee_pct": "0.05", "spread_bps": "2", "slippage_bps": "1", "funding_rate_pct_8h": "0.01",
        "financing_rate_pct_annual": "3", "seed": "7",
        "participants-TOTAL_FORMS": "1", "participants-INITIAL_FORMS": "0",
        "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000",
        "participants-0-name": "Claude", "participants-0-llm_provider": "anthropic",
        "participants-0-llm_model": "claude-sonnet-4-5",
        "participants-0-api_key": SECRET, "participants-0-status": "active",
    }
    data.update(overrides)
    return data


def test_a_newcomer_creates_a_competition_with_a_participant_in_admin(admin_client):
    response = admin_client.post("/admin/competitions/competition/add/", _competition_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    competition = Competition.objects.get(name="Admin cup")
    participant = competition.participants.get()
    assert participant.api_key() == SECRET


def test_admin_form_shows_rule_errors_instead_of_saving(admin_client):
    response = admin_client.post(
        "/admin/competitions/competition/add/", _competition_form(max_leverage="50", name="Bad")
    )
    assert response.status_code == 200
    assert "max_leverage must be between 1 and 100/margin_requirement_pct = 10" in response.content.decode()
    assert not Competition.objects.filter(name="Bad").exists()


def test_api_key_never_appears_in_admin_pages_or_logs(admin_client, caplog):
    caplog.set_level(logging.DEBUG)
    competition = CompetitionFactory(end_time=START + timedelta(days=1))
    participant = participant_register(
        competition_id=competition.pk, name="GPT", llm_provider="openai", llm_model="gpt-4o", api_key=SECRET
    )
    pages = [
        "/admin/competitions/competition/",
        f"/admin/competitions/competition/{competition.pk}/change/",
        "/admin/competitions/participant/",
        f"/admin/competitions/participant/{participant.pk}/change/",
    ]
    for page in pages:
        body = admin_client.get(page).content.decode()
        assert SECRET not in body, page
        assert participant.api_key_encrypted not in body, page
    assert SECRET not in caplog.text
    assert participant.api_key_encrypted not in caplog.text


def test_admin_refuses_registration_into_a_full_competition(admin_client):
    competition = ParticipantFactory(competition__max_participants=1).competition
    response = admin_client.post(
        "/admin/competitions/participant/add/",
        {"competition": competition.pk, "name": "Second", "llm_provider": "baseline", "llm_model": "flat"},
    )
    assert response.status_code == 200
    assert "the competition is full" in response.content.decode()
    assert Participant.objects.filter(competition=competition).count() == 1


# -- competitions: checkboxes and the instrument catalogue instead of JSON ------------------


def test_the_competition_pages_offer_asset_class_checkboxes_and_catalogue_symbols(admin_client):
    add = admin_client.get("/admin/competitions/competition/add/").content.decode()
    assert 'type="checkbox" name="allowed_asset_classes" value="forex"' in add
    assert '<option value="EUR/USD">' in add and '<option value="PEPE/USDT">' in add
    competition = CompetitionFactory(symbols=["ETH/USDT", "BTC/USDT"])
    change = admin_client.get(f"/admin/competitions/competition/{competition.pk}/change/").content.decode()
    assert 'value="crypto"' in change and "checked" in change
    assert '<option value="ETH/USDT" selected>' in change
    assert '<option value="SOL/USDT">' in change  # offered, not chosen


def test_the_rules_fieldset_holds_exactly_the_fields_the_service_locks():
    from competitions.admin import CompetitionAdmin
    from competitions.rules import RULE_FIELDS

    fieldsets = dict(CompetitionAdmin.fieldsets)
    assert len(RULE_FIELDS) == len(set(RULE_FIELDS))
    assert tuple(fieldsets["Rules"]["fields"]) == RULE_FIELDS


def test_a_new_competition_starts_from_the_models_defaults(admin_client):
    form = admin_client.get("/admin/competitions/competition/add/").context["adminform"].form
    assert form["allowed_asset_classes"].value() == ["crypto"]
    assert form["timeframe"].value() == "1h"


def test_ticked_classes_and_chosen_symbols_are_stored_as_json_lists(admin_client):
    response = admin_client.post(
        "/admin/competitions/competition/add/",
        _competition_form(
            name="Mixed", allowed_asset_classes=["crypto", "forex"], symbols=["BTC/USDT", "EUR/USD"],
            mode="live", dataset="", **{"participants-TOTAL_FORMS": "0"},
        ),
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    competition = Competition.objects.get(name="Mixed")
    assert competition.allowed_asset_classes == ["crypto", "forex"]
    assert competition.symbols == ["BTC/USDT", "EUR/USD"]


def test_choosing_no_symbols_means_every_instrument_of_the_ticked_classes(admin_client):
    response = admin_client.post(
        "/admin/competitions/competition/add/",
        _competition_form(
            name="All forex", allowed_asset_classes=["forex"], symbols=[], mode="live", dataset="",
            **{"participants-TOTAL_FORMS": "0"},
        ),
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Competition.objects.get(name="All forex").symbols == ["EUR/USD", "GBP/USD"]


def test_a_symbol_outside_the_ticked_classes_is_a_form_error(admin_client):
    response = admin_client.post(
        "/admin/competitions/competition/add/",
        _competition_form(name="Wrong", symbols=["BTC/USDT", "EUR/USD"], **{"participants-TOTAL_FORMS": "0"}),
    )
    assert response.status_code == 200
    assert "are not in the allowed asset classes" in response.context["adminform"].form.errors["symbols"][0]
    assert not Competition.objects.filter(name="Wrong").exists()


def test_resaving_a_draft_keeps_the_stored_symbol_order(admin_client):
    competition = CompetitionFactory(name="Ordered", symbols=["ETH/USDT", "BTC/USDT"])
    response = admin_client.post(
        f"/admin/competitions/competition/{competition.pk}/change/",
        _competition_form(name="Ordered", symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"],
                          **{"participants-TOTAL_FORMS": "0"}),
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    competition.refresh_from_db()
    assert competition.symbols == ["ETH/USDT", "BTC/USDT", "SOL/USDT"]


def test_a_started_competition_shows_its_rules_read_only_and_still_saves_its_description(admin_client):
    competition = ParticipantFactory(competition__symbols=["ETH/USDT", "BTC/USDT"]).competition
    competition_start(competition_id=competition.pk)
    url = f"/admin/competitions/competition/{competition.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    assert "symbols" not in form.fields and "max_leverage" not in form.fields
    response = admin_client.post(
        url,
        {
            "name": competition.name, "description": "Now with a description",
            "end_time_0": "2025-01-08", "end_time_1": "00:00:00",
            "participants-TOTAL_FORMS": "1", "participants-INITIAL_FORMS": "1",
            "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000",
            "participants-0-id": competition.participants.get().pk,
            "participants-0-competition": competition.pk, "participants-0-llm_model": "flat",
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    competition.refresh_from_db()
    assert competition.description == "Now with a description"
    assert competition.symbols == ["ETH/USDT", "BTC/USDT"]


def test_a_completed_competition_refuses_changes_with_a_form_error(admin_client):
    competition = ParticipantFactory().competition
    competition_start(competition_id=competition.pk)
    competition_stop(competition_id=competition.pk)
    response = admin_client.post(
        f"/admin/competitions/competition/{competition.pk}/change/",
        {"name": "Renamed", "description": "", "end_time_0": "2025-01-08", "end_time_1": "00:00:00",
         "participants-TOTAL_FORMS": "0", "participants-INITIAL_FORMS": "0"},
    )  # fmt: skip
    assert response.status_code == 200
    assert "a completed competition cannot be changed" in response.content.decode()
    competition.refresh_from_db()
    assert competition.name != "Renamed"


def test_more_inline_participants_than_places_is_a_form_error_and_nothing_is_written(admin_client):
    rows = {}
    for i in range(3):
        rows |= {f"participants-{i}-name": f"Bot {i}", f"participants-{i}-llm_provider": "baseline",
                 f"participants-{i}-llm_model": "flat"}  # fmt: skip
    response = admin_client.post(
        "/admin/competitions/competition/add/",
        _competition_form(name="Small", max_participants="2", **{"participants-TOTAL_FORMS": "3"}, **rows),
    )
    assert response.status_code == 200
    assert "the competition is full (2 participants)" in response.content.decode()
    assert not Competition.objects.filter(name="Small").exists()
    assert not Participant.objects.exists()


# -- participants: registration and edits through the services, llm_config as fields -------


def _participant_form(competition, **overrides):
    data = {
        "competition": competition.pk, "name": "Local Qwen", "llm_provider": "openai_compatible",
        "llm_model": "qwen2.5:7b", "config_base_url": "http://ollama:11434/v1",
        "config_timeout_seconds": "90",
        "config_temperature": "0.2", "config_max_tokens": "1024", "config_api_key_env": "OLLAMA_KEY",
        "config_structured_output": "ollama_format",
        "config_advanced": '{"pricing": {"input_per_mtok": 0, "output_per_mtok": 0}}', "api_key": "",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_a_participant_registered_in_a_running_competition_gets_its_trading_account(admin_client):
    competition = ParticipantFactory().competition
    competition_start(competition_id=competition.pk)
    response = admin_client.post("/admin/competitions/participant/add/", _participant_form(competition))
    assert response.status_code == 302, response.content.decode()[:3000]
    participant = competition.participants.get(name="Local Qwen")
    account = Account.objects.get(participant=participant)
    assert account.cash == competition.initial_capital
    assert participant.llm_config == {
        "base_url": "http://ollama:11434/v1", "timeout_seconds": 90, "temperature": 0.2, "max_tokens": 1024,
        "api_key_env": "OLLAMA_KEY", "structured_output": "ollama_format",
        "pricing": {"input_per_mtok": 0, "output_per_mtok": 0},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("config_timeout_seconds", "0", "Must be more than 0."),
        ("config_timeout_seconds", "soon", "Enter a number."),
        ("config_temperature", "2.5", "less than or equal to 2"),
        ("config_temperature", "-0.1", "greater than or equal to 0"),
        ("config_max_tokens", "0", "greater than or equal to 1"),
        ("config_max_tokens", "1.5", "Enter a whole number."),
        ("config_base_url", "localhost:11434/v1", "starting with http:// or https://"),
        ("config_api_key_env", "MY KEY", "Use an environment variable name"),
        ("config_structured_output", "xml", "Select a valid choice"),
        ("config_advanced", "{pricing: 1}", "Enter a valid JSON"),
        ("config_advanced", "[1, 2]", "Enter a JSON object"),
        ("config_advanced", '{"temperature": 1}', "Set temperature in the field(s) above"),
        ("config_advanced", '{"headers": {"Authorization": "Bearer x"}}', "must not hold credentials"),
        ("llm_model", "  ", "This field is required."),
    ],
)
def test_invalid_participant_input_is_a_form_error_and_writes_nothing(admin_client, field, value, message):
    competition = CompetitionFactory()
    response = admin_client.post(
        "/admin/competitions/participant/add/", _participant_form(competition, **{field: value})
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors.get(field, [])), errors
    assert not Participant.objects.exists()


def test_the_services_refusal_shows_on_the_form_and_writes_nothing(admin_client):
    competition = ParticipantFactory(name="Taken").competition
    response = admin_client.post(
        "/admin/competitions/participant/add/", _participant_form(competition, name="Taken")
    )
    assert response.status_code == 200
    assert "already" in " ".join(response.context["adminform"].form.errors["name"])
    competition_start(competition_id=competition.pk)
    competition_stop(competition_id=competition.pk)
    response = admin_client.post("/admin/competitions/participant/add/", _participant_form(competition))
    assert "registration is closed: the competition is completed" in response.content.decode()
    assert competition.participants.count() == 1


STORED_CONFIG = {
    "temperature": 0.2, "max_tokens": 1024, "base_url": "https://openrouter.ai/api/v1",
    "response_format": "json_object", "pricing": {"input_per_mtok": 3, "output_per_mtok": 15},
}  # fmt: skip


def test_editing_shows_the_config_split_into_fields_and_saves_it_merged(admin_client):
    participant = ParticipantFactory(
        llm_provider="openai_compatible", llm_model="m", llm_config=STORED_CONFIG
    )
    url = f"/admin/competitions/participant/{participant.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    assert form["config_temperature"].value() == 0.2
    assert form["config_max_tokens"].value() == 1024
    assert form["config_base_url"].value() == "https://openrouter.ai/api/v1"
    assert form["config_timeout_seconds"].value() in (None, "")
    assert json.loads(form["config_advanced"].value()) == {
        "response_format": "json_object", "pricing": {"input_per_mtok": 3, "output_per_mtok": 15}
    }

    response = admin_client.post(url, {
        "llm_model": "m2", "config_temperature": "0.7", "config_max_tokens": "1024",
        "config_base_url": "https://openrouter.ai/api/v1", "config_timeout_seconds": "",
        "config_advanced": form["config_advanced"].value(), "api_key": "",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    participant.refresh_from_db()
    assert participant.llm_model == "m2"
    assert participant.llm_config == STORED_CONFIG | {"temperature": 0.7}


def test_a_stored_value_its_field_refuses_stays_visible_in_the_advanced_json(admin_client):
    participant = ParticipantFactory(llm_config={"temperature": "hot", "seed": 7})
    url = f"/admin/competitions/participant/{participant.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    assert form["config_temperature"].value() in (None, "")
    assert json.loads(form["config_advanced"].value()) == {"temperature": "hot", "seed": 7}


def test_the_name_provider_and_competition_are_fixed_once_registered(admin_client):
    participant = ParticipantFactory(name="Fixed", llm_provider="baseline", llm_model="flat")
    response = admin_client.post(
        f"/admin/competitions/participant/{participant.pk}/change/",
        {"name": "Renamed", "llm_provider": "openai", "competition": CompetitionFactory().pk,
         "llm_model": "momentum", "config_advanced": ""},
    )  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    participant.refresh_from_db()
    fixed = (participant.name, participant.llm_provider, participant.llm_model)
    assert fixed == ("Fixed", "baseline", "momentum")


def test_a_running_competitions_participant_saves_unchanged_but_refuses_a_config_change(admin_client):
    participant = ParticipantFactory(llm_config={"temperature": 0.2})
    competition_start(competition_id=participant.competition_id)
    url = f"/admin/competitions/participant/{participant.pk}/change/"
    unchanged = {"llm_model": "flat", "config_temperature": "0.2", "config_advanced": ""}
    assert admin_client.post(url, unchanged).status_code == 302
    response = admin_client.post(url, unchanged | {"config_temperature": "1"})
    assert response.status_code == 200
    assert "cannot change while its competition is active" in response.content.decode()
    participant.refresh_from_db()
    assert participant.llm_config == {"temperature": 0.2}


def test_the_api_key_is_replaced_or_forgotten_through_the_service(admin_client):
    participant = ParticipantFactory()
    url = f"/admin/competitions/participant/{participant.pk}/change/"
    base = {"llm_model": "flat", "config_advanced": ""}
    assert admin_client.post(url, base | {"api_key": SECRET}).status_code == 302
    participant.refresh_from_db()
    assert participant.api_key() == SECRET
    assert admin_client.post(url, base | {"clear_api_key": "on"}).status_code == 302
    participant.refresh_from_db()
    assert not participant.has_api_key


def test_the_disqualify_action_goes_through_the_service(admin_client):
    participant = ParticipantFactory()
    admin_client.post(
        "/admin/competitions/participant/",
        {"action": "disqualify_participants", "_selected_action": [participant.pk]},
    )
    participant.refresh_from_db()
    assert participant.status == "disqualified"
    assert participant.status_reason == "disqualified by an administrator"


def test_a_rehearsal_leaves_no_log_line_about_rows_that_never_existed(admin_client, caplog):
    caplog.set_level(logging.INFO, logger="competitions.services")
    competition = CompetitionFactory()
    admin_client.post("/admin/competitions/participant/add/", _participant_form(competition))
    registered = [r for r in caplog.records if "registered" in r.getMessage()]
    assert len(registered) == 1
