"""Admin doors of issue 16 for tournaments: copy a tournament as masked (the memory gap's other
half), and change what the rankings do with in-sample windows after the start."""

import pytest

from tournaments import services
from tournaments.models import Tournament
from tournaments.tests.conftest import tournament_fields
from tournaments.tests.memory_data import stored_memory_tournament

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", password=None)


def test_the_copy_as_masked_action_makes_the_masked_draft_of_the_same_lineup(admin_client, market):
    original = services.tournament_create(**tournament_fields())
    response = admin_client.post("/admin/tournaments/tournament/",
                                 {"action": "copy_masked", "_selected_action": [original.pk]}, follow=True)
    copy = Tournament.objects.get(copy_of=original)
    assert copy.rules["masked"] is True and copy.is_draft
    assert sorted(copy.entries.values_list("name", flat=True)) == sorted(original.entries.values_list("name", flat=True))
    assert f"copied as masked draft {copy.pk}" in response.content.decode()
    change = admin_client.get(f"/admin/tournaments/tournament/{copy.pk}/change/").content.decode()
    assert f"/tournaments/{copy.pk}/memory-gap/" in change


def test_a_running_tournaments_in_sample_setting_stays_editable_and_nothing_else(admin_client):
    tournament = stored_memory_tournament(status=Tournament.Status.RUNNING)
    url = f"/admin/tournaments/tournament/{tournament.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    assert list(form.fields) == ["in_sample"]  # every other field is read-only once it runs

    response = admin_client.post(url, {
        "in_sample": "include", "name": "Renamed",
        **{f"{prefix}-{key}": value for prefix in ("entries", "windows", "runs")
           for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))},
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:3000]
    tournament.refresh_from_db()
    assert tournament.in_sample == "include" and tournament.name == "Memory cup"


def test_the_page_after_an_admin_changes_the_setting_ranks_in_the_new_mode(admin_client, client):
    from django.core.cache import cache
    from django.urls import reverse

    tournament = stored_memory_tournament(status=Tournament.Status.RUNNING)
    page = reverse("tournament-page", args=[tournament.pk])
    cache.clear()
    before = client.get(page).content.decode()  # computed and stored in the default mode
    assert '<option value="exclude" selected>' in before and "3.969" not in before
    url = f"/admin/tournaments/tournament/{tournament.pk}/change/"
    admin_client.post(url, {
        "in_sample": "include",
        **{f"{prefix}-{key}": value for prefix in ("entries", "windows", "runs")
           for key, value in (("TOTAL_FORMS", "0"), ("INITIAL_FORMS", "0"))},
    })  # fmt: skip
    after = client.get(page).content.decode()  # the same runs: the live region is cached per mode
    assert '<option value="include" selected>' in after and "Every window counts, including" in after
    row = after.split('id="ranking"', 1)[1].split('data-agent="Memory"', 1)[1].split("</tr>", 1)[0]
    assert "3.969" in row  # 13 remembered windows at +5 % and 3 at -0.5 %: 63.5 / 16 on average
