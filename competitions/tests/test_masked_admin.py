"""The admin edits a masked replay in real terms (issue 16): it shows the real start, end and
instruments, a draft's masked world is derived again from them, and a started one keeps the
masked world its rounds were played in (its end moves by the same weeks; its start is refused)."""

from datetime import timedelta

import pytest

from competitions import services
from competitions.models import Competition
from competitions.tests.factories import START
from gauntlet.errors import ConflictError

pytestmark = pytest.mark.django_db
REAL = ["BTC/USDT", "ETH/USDT"]


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "admin@example.com", password=None)


def _masked(dataset):
    return services.competition_create(
        name="Masked cup", start_time=START, end_time=START + timedelta(hours=24), mode="replay",
        dataset=dataset, timeframe="1h", symbols=list(REAL), masked=True, seed=7,
    )


def _post(admin_client, competition, **fields):
    """The change form as the admin renders it, with `fields` changed."""
    url = f"/admin/competitions/competition/{competition.pk}/change/"
    form = admin_client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        value = fields.get(name, value)
        if hasattr(value, "isoformat") and not isinstance(value, str):  # split date and time widgets
            data[f"{name}_0"], data[f"{name}_1"] = value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")
        elif isinstance(value, list):
            data[name] = value
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = str(value)
    data.update({"participants-TOTAL_FORMS": "0", "participants-INITIAL_FORMS": "0",
                 "participants-MIN_NUM_FORMS": "0", "participants-MAX_NUM_FORMS": "1000"})
    return admin_client.post(url, data)


def test_the_change_form_shows_a_masked_draft_in_real_terms(admin_client, replay_market):
    competition = _masked(replay_market)
    response = admin_client.get(f"/admin/competitions/competition/{competition.pk}/change/")
    form = response.context["adminform"].form
    assert form.initial["start_time"] == START and form.initial["symbols"] == REAL
    assert "Masked replay: give the real time" in form.fields["start_time"].help_text
    html = response.content.decode()
    assert "is really 2025-01-01 00:00 UTC" in html and "= BTC/USDT" in html  # the masked world, read-only
    assert "ASSET_1 (not in the catalogue)" not in html


def test_moving_a_masked_drafts_dates_derives_its_masked_world_again(admin_client, replay_market):
    competition = _masked(replay_market)
    unchanged = _post(admin_client, competition)
    assert unchanged.status_code == 302, unchanged.content.decode()[:3000]
    same = Competition.objects.get(pk=competition.pk)
    assert (same.symbols, same.start_time, same.mask) == (competition.symbols, competition.start_time, competition.mask)

    later = START + timedelta(hours=6)
    response = _post(admin_client, competition, start_time=later, end_time=later + timedelta(hours=12))
    assert response.status_code == 302, response.content.decode()[:3000]
    moved = Competition.objects.get(pk=competition.pk)
    assert (moved.real_start_time, moved.real_end_time) == (later, later + timedelta(hours=12))
    assert moved.start_time.year >= 2200 and (moved.start_time - later) % timedelta(weeks=1) == timedelta(0)
    assert moved.end_time - moved.start_time == timedelta(hours=12)
    assert sorted(moved.symbols) == ["ASSET_1", "ASSET_2"] and moved.real_symbols == REAL


def test_a_started_masked_replay_keeps_its_world_moves_only_its_end_and_says_why(admin_client, replay_market):
    competition = _masked(replay_market)
    services.participant_register(competition_id=competition.pk, name="Hold", llm_provider="baseline",
                                  llm_model="buy_and_hold")
    services.competition_start(competition_id=competition.pk)
    competition.refresh_from_db()
    form = admin_client.get(f"/admin/competitions/competition/{competition.pk}/change/").context["adminform"].form
    assert "start_time" not in form.fields and form.initial["end_time"] == START + timedelta(hours=24)

    response = _post(admin_client, competition, end_time=START + timedelta(hours=30))
    assert response.status_code == 302, response.content.decode()[:3000]
    longer = Competition.objects.get(pk=competition.pk)
    assert longer.mask == competition.mask and longer.start_time == competition.start_time
    assert longer.real_end_time == START + timedelta(hours=30)

    with pytest.raises(ConflictError, match="keeps the masked world its rounds were played in"):
        services.competition_update(competition_id=competition.pk, start_time=START + timedelta(hours=1))
    assert Competition.objects.get(pk=competition.pk).mask == competition.mask
