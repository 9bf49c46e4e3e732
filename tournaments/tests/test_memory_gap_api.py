"""The memory gap's doors (issue 16): copy a tournament as masked, then read per agent the gap
masked vs unmasked and before vs after its cutoff, with intervals and what they mean."""

# ruff: noqa: F811 -- the api fixture imported from memory_data is a test argument

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tournaments import services
from tournaments.models import Tournament
from tournaments.tests.conftest import tournament_fields
from tournaments.tests.memory_data import api, stored_memory_tournament  # noqa: F401 (api: a fixture)

pytestmark = pytest.mark.django_db


def _gap(tournament_id, api, **params):
    return api.get(f"/api/v1/tournaments/{tournament_id}/memory-gap", params)


def test_a_copy_is_the_same_lineup_and_windows_in_the_other_world(api, market):
    lineup = [{"name": "GPT", "llm_provider": "openai", "llm_model": "gpt-4o-mini", "api_key": "sk-copied"},
              {"name": "Hold", "llm_provider": "baseline", "llm_model": "buy_and_hold"}]
    original = services.tournament_create(**tournament_fields(entries=lineup, in_sample="apart"))

    response = api.post(f"/api/v1/tournaments/{original.pk}/copy", {"masked": True}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "draft" and body["copy_of"] == original.pk and body["rules"]["masked"] is True
    assert body["name"] == "Test cup (masked)" and body["in_sample"] == "apart"
    copy = Tournament.objects.get(pk=body["id"])
    assert list(copy.windows.values_list("start_time", "end_time")) == list(
        original.windows.values_list("start_time", "end_time"))
    assert (copy.instances, copy.seed, copy.symbols) == (original.instances, original.seed, original.symbols)
    assert copy.entries.get(name="GPT").api_key() == "sk-copied"  # copied encrypted, never shown
    assert "sk-copied" not in response.content.decode()
    back = api.post(f"/api/v1/tournaments/{copy.pk}/copy", {"masked": False, "name": "Plain again"}, format="json")
    assert back.status_code == 201 and "masked" not in back.json()["rules"] and back.json()["name"] == "Plain again"


def test_copy_refuses_bad_input_and_missing_tournaments(api, market):
    original = services.tournament_create(**tournament_fields())
    assert api.post(f"/api/v1/tournaments/{original.pk}/copy", {"masked": "perhaps"}, format="json").status_code == 400
    assert api.post(f"/api/v1/tournaments/{original.pk}/copy", {"name": ""}, format="json").status_code == 400
    assert api.post("/api/v1/tournaments/999999/copy", {"masked": True}, format="json").status_code == 404
    assert Tournament.objects.count() == 1  # nothing was made


def test_the_gap_reads_the_masked_copy_per_agent_with_intervals_and_sentences(api):
    plain = stored_memory_tournament()
    masked = stored_memory_tournament(name="Memory cup (masked)", masked=True, copy_of=plain)

    response = _gap(plain.pk, api, resamples=500)

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["tournament_id"], body["masked_tournament_id"]) == (plain.pk, masked.pk)
    agents = {item["agent"]: item for item in body["agents"]}
    memory = agents["Memory"]
    # unmasked - masked: 13 remembered windows at 5 - (-0.5), 3 at 0
    assert memory["masked_gap"]["value"] == pytest.approx(13 * 5.5 / 16)
    assert memory["masked_gap"]["windows"] == 16 and memory["masked_gap"]["interval"]["low"] > 0
    assert "may come from remembering" in memory["masked_reading"]
    # before - after its cutoff (2024-03): 5 on 13 windows, -0.5 on 3
    assert memory["cutoff_gap"]["value"] == pytest.approx(5.5)
    assert (memory["windows_before_cutoff"], memory["windows_after_cutoff"]) == (13, 3)
    assert "different markets" in memory["cutoff_reading"]
    hold = agents["Hold"]
    assert hold["masked_gap"]["value"] == 0 and hold["is_code"] and hold["cutoff_gap"] is None
    assert "one side of its cutoff" in agents["Fresh"]["cutoff_reading"]
    assert any("shape" in limit for limit in body["limits"]) and "Masked gap" in body["meaning"]

    from_the_masked_side = _gap(masked.pk, api, resamples=500).json()
    assert from_the_masked_side["tournament_id"] == plain.pk
    assert _gap(plain.pk, api, masked=masked.pk, resamples=500).json()["agents"] == body["agents"]


def test_without_a_masked_copy_the_report_says_how_to_make_one(api):
    plain = stored_memory_tournament()
    body = _gap(plain.pk, api).json()
    assert body["masked_tournament_id"] is None
    assert f"/api/v1/tournaments/{plain.pk}/copy" in body["note"]
    assert {item["agent"]: item["masked_gap"] for item in body["agents"]}["Memory"] is None


def test_bad_pairs_and_bad_input_are_400_and_a_missing_tournament_404(api):
    plain = stored_memory_tournament()
    other = stored_memory_tournament(name="Short masked", masked=True, windows=8)
    masked_alone = stored_memory_tournament(name="Masked alone", masked=True)

    for params, words in (
        ({"masked": other.pk}, "the windows differ"),
        ({"masked": plain.pk}, "not with itself"),
        ({"masked": 999999}, "no tournament 999999"),
    ):
        response = _gap(plain.pk, api, **params)
        assert response.status_code == 400 and words in json.dumps(response.json()), (params, response.content)
    assert _gap(plain.pk, api, masked="abc").status_code == 400
    assert _gap(plain.pk, api, resamples=5).status_code == 400
    unmasked_pair = stored_memory_tournament(name="Also plain")
    assert "is not masked" in json.dumps(_gap(plain.pk, api, masked=unmasked_pair.pk).json())
    assert _gap(masked_alone.pk, api).status_code == 400  # a masked tournament with no real counterpart
    assert _gap(999999, api).status_code == 404


def test_before_a_run_completes_the_gap_is_409(api, market):
    draft = services.tournament_create(**tournament_fields())
    response = _gap(draft.pk, api)
    assert response.status_code == 409 and response.json()["code"] == "no_results"


def test_the_copy_command_makes_the_masked_draft(market):
    original = services.tournament_create(**tournament_fields())
    out = StringIO()
    call_command("tournament_copy", original.pk, "--masked", stdout=out)
    copy = Tournament.objects.get(copy_of=original)
    assert copy.rules["masked"] is True and copy.is_draft
    assert f"run_tournament {copy.pk}" in out.getvalue()


def test_the_commands_copy_and_print_the_gap():
    plain = stored_memory_tournament()
    stored_memory_tournament(name="Memory cup (masked)", masked=True, copy_of=plain)
    out = StringIO()
    call_command("tournament_memory_gap", plain.pk, stdout=out)
    text = out.getvalue()
    assert "Memory: masked gap +4.47 %" in text and "Limit:" in text
    out = StringIO()
    call_command("tournament_memory_gap", plain.pk, "--json", stdout=out)
    assert json.loads(out.getvalue())["tournament_id"] == plain.pk
    with pytest.raises(CommandError, match="no tournament"):
        call_command("tournament_copy", 999999, "--masked")
