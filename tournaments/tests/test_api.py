"""The tournament API end to end: create, read, change a draft, start, runs, export, cancel,
and a bundle exported from one tournament imported and replayed from its cache."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tournaments import bundle, runs, services
from tournaments.models import Tournament, TournamentRun
from tournaments.tests.conftest import START, tournament_fields

pytestmark = pytest.mark.django_db(transaction=True)
KEY = "tournament-test-key"
ONE_WINDOW = {"start": START.isoformat(), "count": 1, "length_minutes": 120}


@pytest.fixture
def api(settings):
    settings.API_KEYS = [KEY]
    settings.ROUND_RUNNER = "inprocess"
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=KEY)
    return client


def _body(**overrides):
    body = tournament_fields(**overrides)
    body["entries"][0]["api_key"] = "sk-never-shown"
    return json.loads(json.dumps(body, default=str))


def _run_all(tournament_id):
    while (run := runs.run_claim(tournament_id=tournament_id, owner="t")) is not None:
        runs.run_execute(run_id=run.pk, owner="t")


def test_a_draft_is_created_read_changed_and_refused_when_its_rules_are_wrong(api, market):
    response = api.post("/api/v1/tournaments", _body(), format="json")
    assert response.status_code == 201, response.json()
    created = response.json()
    assert created["status"] == "draft" and len(created["windows"]) == 2
    assert created["progress"]["runs_total"] == 0
    assert created["entries"][0] == {"name": "Bull", "llm_provider": "scripted", "llm_model": "script",
                                     "llm_config": created["entries"][0]["llm_config"], "has_api_key": True}
    assert "sk-never-shown" not in json.dumps(created)

    tid = created["id"]
    changed = api.patch(f"/api/v1/tournaments/{tid}", {"instances": 3, "windows_spec": ONE_WINDOW}, format="json")
    assert changed.status_code == 200 and (changed.json()["instances"], len(changed.json()["windows"])) == (3, 1)
    bad = api.patch(f"/api/v1/tournaments/{tid}", {"rules": {"max_leverage": "50"}}, format="json")
    assert bad.status_code == 400 and "max_leverage" in json.dumps(bad.json())
    assert api.get("/api/v1/tournaments").json()["count"] == 1
    assert APIClient().post("/api/v1/tournaments", _body(), format="json").status_code == 401


def test_a_lineup_with_a_key_in_its_config_or_an_unknown_baseline_is_refused_and_nothing_stored(api, market):
    hold = {"name": "Hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"}
    for entry, reason in (
        ({"name": "Leaky", "llm_provider": "openai", "llm_model": "gpt", "llm_config": {"api_key": "sk-secret"}},
         "must not hold credentials"),
        ({"name": "Typo", "llm_provider": "baseline", "llm_model": "buy_and_hodl"}, "unknown baseline strategy"),
        ({"name": "Pricey", "llm_provider": "openai", "llm_model": "gpt", "llm_config": {"pricing": "free"}},
         "pricing"),
    ):
        created = api.post("/api/v1/tournaments", {**_body(), "entries": [hold, entry]}, format="json")
        assert created.status_code == 400 and reason in created.json()["entries"][0], created.json()
    assert not Tournament.objects.exists()
    draft = api.post("/api/v1/tournaments", _body(), format="json").json()
    leaky = {"name": "Leaky", "llm_provider": "openai", "llm_model": "gpt", "llm_config": {"api_key": "sk-secret"}}
    changed = api.patch(f"/api/v1/tournaments/{draft['id']}", {"entries": [hold, leaky]}, format="json")
    assert changed.status_code == 400 and "sk-secret" not in json.dumps(api.get(f"/api/v1/tournaments/{draft['id']}").json())


def test_start_runs_export_and_the_draft_only_doors_close(api, market):
    tid = api.post("/api/v1/tournaments", _body(instances=1), format="json").json()["id"]
    started = api.post(f"/api/v1/tournaments/{tid}/start")
    assert started.status_code == 200 and started.json()["progress"]["runs_pending"] == 2
    assert api.patch(f"/api/v1/tournaments/{tid}", {"instances": 2}, format="json").status_code == 409
    assert api.delete(f"/api/v1/tournaments/{tid}").status_code == 409
    assert api.post(f"/api/v1/tournaments/{tid}/start").status_code == 409
    _run_all(tid)

    detail = api.get(f"/api/v1/tournaments/{tid}").json()
    assert detail["status"] == "completed" and detail["progress"]["runs_completed"] == 2
    runs = api.get(f"/api/v1/tournaments/{tid}/runs").json()["results"]
    assert [(r["window"], r["instance"], r["status"]) for r in runs] == [(0, 0, "completed"), (1, 0, "completed")]
    assert {p["name"] for p in runs[0]["result"]["participants"]} == {"Bull", "Bear", "Hold"}

    as_csv = api.get(f"/api/v1/tournaments/{tid}/export?format=csv&what=runs")
    assert as_csv.status_code == 200 and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert len(rows) == 6 and {r["participant"] for r in rows} == {"Bull", "Bear", "Hold"}
    invocations = api.get(f"/api/v1/tournaments/{tid}/export?what=invocations").json()
    assert len(invocations) == 2 * 4 * 3 and {i["participant"] for i in invocations} == {"Bull", "Bear", "Hold"}
    assert api.get(f"/api/v1/tournaments/{tid}/export?what=bundle&format=csv").status_code == 400
    assert api.get("/api/v1/tournaments/999999/runs").status_code == 404


def test_cancel_and_delete(api, market):
    tid = api.post("/api/v1/tournaments", _body(), format="json").json()["id"]
    other = api.post("/api/v1/tournaments", _body(name="Other"), format="json").json()["id"]
    assert api.delete(f"/api/v1/tournaments/{other}").status_code == 204
    api.post(f"/api/v1/tournaments/{tid}/start")
    cancelled = api.post(f"/api/v1/tournaments/{tid}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["progress"]["runs_cancelled"] == 4
    assert api.post(f"/api/v1/tournaments/{tid}/cancel").status_code == 409


def test_a_bundle_carries_the_tournament_without_secrets_and_refuses_other_data(api, market):
    tid = api.post("/api/v1/tournaments", _body(instances=1, windows_spec=ONE_WINDOW), format="json").json()["id"]
    api.post(f"/api/v1/tournaments/{tid}/start")
    _run_all(tid)
    exported = api.get(f"/api/v1/tournaments/{tid}/export?what=bundle").json()
    assert exported["format"] == bundle.BUNDLE_FORMAT and exported["seeds"] == [7]
    assert exported["dataset"]["candles"] == 2 * 168 and len(exported["dataset"]["sha256"]) == 64
    assert exported["lineup"][0]["had_api_key"] is True and "sk-never-shown" not in json.dumps(exported)

    imported = api.post("/api/v1/tournaments/import", {"bundle": exported, "cache_mode": "read_only"}, format="json")
    assert imported.status_code == 201, imported.json()
    copy = imported.json()["tournament"]
    assert (copy["status"], copy["cache_mode"], copy["instances"]) == ("draft", "read_only", 1)
    assert [e["name"] for e in copy["entries"]] == ["Bull", "Bear", "Hold"]

    tampered = {**exported, "dataset": {**exported["dataset"], "sha256": "0" * 64}}
    refused = api.post("/api/v1/tournaments/import", {"bundle": tampered}, format="json")
    assert refused.status_code == 400 and "checksum" in json.dumps(refused.json())


def test_the_commands_export_a_bundle_as_json_lines_and_import_it(market, tmp_path):
    tournament = services.tournament_create(**tournament_fields(instances=1, windows_spec=ONE_WINDOW))
    call_command("run_tournament", str(tournament.pk), stdout=io.StringIO())
    path = tmp_path / "cup.jsonl"
    call_command("tournament_export", str(tournament.pk), "-o", str(path), stderr=io.StringIO())
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["format"] == bundle.BUNDLE_FORMAT  # the header, then cache lines (none: no model)
    out = io.StringIO()
    call_command("tournament_import", str(path), "--cache-mode", "read_only", stdout=out, stderr=io.StringIO())
    copy = Tournament.objects.exclude(pk=tournament.pk).get()
    assert f"imported tournament {copy.pk}" in out.getvalue() and copy.cache_mode == "read_only"
    call_command("run_tournament", str(copy.pk), stdout=io.StringIO())
    first, second = (TournamentRun.objects.get(tournament=t).result for t in (tournament, copy))
    assert first == second and first["participants"]
