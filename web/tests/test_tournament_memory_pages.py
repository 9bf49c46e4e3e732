"""What a model may remember, on the tournament pages (issue 16): the ranking says which windows it
left out and why, a toggle shows them apart or included, and the memory-gap page reads the pair."""

import json

import pytest
from django.core.cache import cache
from django.urls import reverse

from tournaments.tests.memory_data import stored_memory_tournament

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _ranking_windows(html: str) -> str:
    return html.split('id="ranking"', 1)[1].split("</table>", 1)[0]


def test_the_page_leaves_in_sample_windows_out_by_default_and_says_why(client):
    tournament = stored_memory_tournament()
    html = client.get(reverse("tournament-page", args=[tournament.pk])).content.decode()

    note = html.split('id="in-sample-note"', 1)[1].split("</p>", 1)[0]
    assert "left out of that agent&#x27;s statistics" in note and "13 agent-window results left out" in note
    row = html.split('id="in-sample-agents"', 1)[1].split('data-agent="Memory"', 1)[1].split("</tr>", 1)[0]
    assert 'data-left-out="13"' in html and "2024-03" in row and "13 of 16 windows" in row
    assert "llm_config.training_cutoff" in row  # the cutoff's source
    assert '<option value="exclude" selected>' in html
    assert reverse("tournament-memory-gap-page", args=[tournament.pk]) in html
    assert 'id="in-sample-ranking"' not in html


def test_the_toggle_ranks_in_sample_windows_apart_or_includes_them(client):
    tournament = stored_memory_tournament()
    url = reverse("tournament-page", args=[tournament.pk])

    apart = client.get(url, {"in_sample": "apart"}).content.decode()
    table = apart.split('id="in-sample-ranking"', 1)[1].split("</table>", 1)[0]
    assert 'data-agent="Memory"' in table and "5.000" in table  # its remembered windows, alone
    assert '<option value="apart" selected>' in apart and "in_sample=apart" in apart  # polling keeps the choice

    included = client.get(url, {"in_sample": "include"}).content.decode()
    assert "Every window counts, including" in included
    assert client.get(url, {"in_sample": "nonsense"}).status_code == 200  # falls back to the setting


def test_the_tournaments_own_setting_is_the_pages_default(client):
    tournament = stored_memory_tournament(in_sample="apart")
    html = client.get(reverse("tournament-page", args=[tournament.pk])).content.decode()
    assert '<option value="apart" selected>' in html and 'id="in-sample-ranking"' in html


def test_the_gap_page_shows_each_agents_gaps_with_intervals_what_they_mean_and_their_limits(client):
    plain = stored_memory_tournament()
    masked = stored_memory_tournament(name="Memory cup (masked)", masked=True, copy_of=plain)

    response = client.get(reverse("tournament-memory-gap-page", args=[plain.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    row = html.split('<tr data-agent="Memory">', 1)[1].split("</tr>", 1)[0]
    assert "4.47 %" in row and "2024-03" in row  # 13 x 5.5 / 16, and the cutoff
    reading = html.split('<tr data-agent="Memory">', 1)[1].split('class="reading-row"', 1)[1].split("</tr>", 1)[0]
    assert "may come from remembering" in reading and "different markets" in reading
    assert "Memory cup (masked)" in html and f'href="{reverse("tournament-page", args=[masked.pk])}"' in html
    assert "recognise a famous episode from its shape" in html
    figure = json.loads(html.split('id="gap-chart-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    assert {trace["name"] for trace in figure["data"]} == {"unmasked − masked", "before − after cutoff"}


def test_the_gap_page_without_a_copy_says_how_to_make_one_and_refuses_a_bad_pair(client):
    plain = stored_memory_tournament()
    html = client.get(reverse("tournament-memory-gap-page", args=[plain.pk])).content.decode()
    assert 'id="gap-note"' in html and "--masked" in html

    bad = client.get(reverse("tournament-memory-gap-page", args=[plain.pk]), {"masked": "abc"})
    assert bad.status_code == 400 and "masked must be a tournament id" in bad.content.decode()
    short = stored_memory_tournament(name="Short", masked=True, windows=4)
    refused = client.get(reverse("tournament-memory-gap-page", args=[plain.pk]), {"masked": short.pk})
    assert refused.status_code == 400 and "the windows differ" in refused.content.decode()
    assert client.get(reverse("tournament-memory-gap-page", args=[999999])).status_code == 404


def _heatmap_row(html: str, agent: str) -> list:
    figure = json.loads(html.split('id="window-chart-data" type="application/json">', 1)[1].split("</script>", 1)[0])
    trace = figure["data"][0]
    return trace["z"][trace["y"].index(agent)]


def test_the_heatmap_leaves_the_in_sample_cells_out_unless_included(client):
    tournament = stored_memory_tournament()
    url = reverse("tournament-page", args=[tournament.pk])
    excluded = client.get(url).content.decode()
    assert [i for i, v in enumerate(_heatmap_row(excluded, "Memory")) if v is None] == list(range(13))
    assert None not in _heatmap_row(excluded, "Fresh")
    assert "a blank cell is in-sample for that agent, left out" in excluded
    included = client.get(url, {"in_sample": "include"}).content.decode()
    assert None not in _heatmap_row(included, "Memory")


def _compare(client, tournament, first, second, **params):
    entries = {entry.name: entry.pk for entry in tournament.entries.all()}
    url = reverse("tournament-compare", args=[tournament.pk])
    return client.get(url, {"a": entries[first], "b": entries[second], **params}).content.decode()


def test_the_compare_page_pairs_two_agents_only_on_windows_both_have_out_of_sample_and_says_so(client):
    tournament = stored_memory_tournament()
    html = _compare(client, tournament, "Memory", "Hold")
    note = html.split('id="in-sample-note"', 1)[1].split("</p>", 1)[0]
    assert "Compared only on the 3 windows both agents have out of sample" in note
    assert "13 of 16 windows" in html.split('id="in-sample-reasons"', 1)[1].split("</ul>", 1)[0]
    significance = html.split('id="tournament-significance"', 1)[1].split("</table>", 1)[0]
    assert "3 windows" in html.split('id="significance-heading"', 1)[1].split("</h2>", 1)[0]
    assert "is better" not in significance  # its remembered +5 % windows no longer count
    windows = html.split('id="paired-windows"', 1)[1].split("</table>", 1)[0]
    assert windows.count("in-sample: Memory") == 13
    assert '<option value="exclude" selected>' in html

    included = _compare(client, tournament, "Memory", "Hold", in_sample="include")
    assert "Every window counts, including" in included
    assert "16 windows" in included.split('id="significance-heading"', 1)[1].split("</h2>", 1)[0]
    assert "<strong>Memory</strong> is better" in included.split('id="tournament-significance"', 1)[1]


def test_the_compare_page_ranks_the_windows_in_sample_for_both_apart(client):
    tournament = stored_memory_tournament()
    # Fresh read up to February 2024: windows 0..8 are in-sample for it, 0..12 for Memory
    tournament.entries.filter(name="Fresh").update(llm_config={"training_cutoff": "2024-02"})
    html = _compare(client, tournament, "Memory", "Fresh", in_sample="apart")
    assert "Compared only on the 3 windows both agents have out of sample" in html
    apart = html.split('id="apart-heading"', 1)[1].split("</h2>", 1)[0]
    assert "9 windows that start before both agents" in apart
    assert 'id="tournament-significance-apart"' in html
    assert 'id="apart-heading"' not in _compare(client, tournament, "Memory", "Fresh")  # exclude: not shown


def test_an_agent_with_every_window_in_sample_is_said_so_on_the_compare_page(client):
    tournament = stored_memory_tournament(windows=4)  # every window before Memory's cutoff
    html = _compare(client, tournament, "Memory", "Hold")
    assert "Memory has no result out of sample" in html
    assert "Every window counts" in _compare(client, tournament, "Memory", "Hold", in_sample="include")
