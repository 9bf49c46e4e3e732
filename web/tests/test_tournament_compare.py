"""The compare page of two tournament agents: the stored pairwise results turned to read "a minus
b", the per-window values of both, links to every run's competition compare page, constant
queries, and a clear refusal of agents that are not in the lineup."""

import json
import re
from urllib.parse import parse_qs, urlparse

import pytest
from django.urls import reverse

from tournaments.models import TournamentEntry, TournamentRun
from tournaments.results import tournament_results_get
from tournaments.tests.conftest import played_tournament, store_market
from tournaments.tests.results_data import stored_tournament

pytestmark = pytest.mark.django_db


def _url(tournament, a, b, **params):
    query = "&".join([f"a={a.pk}", f"b={b.pk}", *[f"{k}={v}" for k, v in params.items()]])
    return f"{reverse('tournament-compare', args=[tournament.pk])}?{query}"


def _entries(tournament):
    return {entry.name: entry for entry in TournamentEntry.objects.filter(tournament=tournament)}


def _significance(html):
    table = html.split('id="tournament-significance"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"<[^>]+>", "", row).split() for row in table.split("<tr>")[2:]]


def _chart(html, chart_id):
    raw = html.split(f'id="{chart_id}-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    return json.loads(raw)


def test_it_shows_the_stored_paired_differences_as_a_minus_b_both_ways(client):
    tournament = stored_tournament(agents=4, windows=6, instances=2)
    entries = _entries(tournament)
    results = tournament_results_get(tournament_id=tournament.pk)
    stored = results["pairs"]["return_pct"][0]  # the leader minus the runner-up, as stored
    first, second = entries[stored["first"]], entries[stored["second"]]
    forward = client.get(_url(tournament, first, second)).content.decode()
    backward = client.get(_url(tournament, second, first)).content.decode()
    assert f"{first.name} − {second.name}" in forward and f"{second.name} − {first.name}" in backward
    ahead = forward.split('id="tournament-significance"', 1)[1].split("</tr>", 2)[1]
    behind = backward.split('id="tournament-significance"', 1)[1].split("</tr>", 2)[1]
    low, high = stored["interval"]["low"], stored["interval"]["high"]
    assert f"[{low:.2f}, {high:.2f}]" in ahead and f"[{-high:.2f}, {-low:.2f}]" in behind
    assert f"{stored['p_adjusted']:.3f}" in ahead and f"{stored['p_adjusted']:.3f}" in behind
    verdict = stored["verdict"]
    if verdict == "not distinguishable":
        assert "not distinguishable" in ahead and "not distinguishable" in behind
    else:
        better = first.name if verdict == "better" else second.name
        assert f"<strong>{better}</strong> is better" in ahead and f"<strong>{better}</strong> is better" in behind
    assert len(_significance(forward)) == 2  # return and Sharpe
    # the chart: both agents' window values, and their difference
    chart = _chart(forward, "paired-return_pct")
    bars = {trace["name"]: trace["y"] for trace in chart["data"] if trace["type"] == "bar"}
    series = results["window_values"]["return_pct"]
    assert bars[first.name] == pytest.approx(series[first.name]) and bars[second.name] == pytest.approx(
        series[second.name]
    )
    differences = next(trace for trace in chart["data"] if trace["type"] == "scatter")["y"]
    assert differences == pytest.approx([a - b for a, b in zip(series[first.name], series[second.name])], abs=1e-6)
    assert sum(differences) / len(differences) == pytest.approx(stored["mean_difference"], abs=1e-6)
    assert 'id="paired-sharpe"' in forward


def test_another_metric_adds_its_pair_and_orders_the_side_by_side_rank(client):
    tournament = stored_tournament(agents=3, windows=4, instances=1)
    entries = list(_entries(tournament).values())
    html = client.get(_url(tournament, entries[0], entries[1], metric="max_drawdown_pct")).content.decode()
    assert [row[0] for row in _significance(html)] == ["Return:", "Sharpe:", "Max"]
    assert "Rank by max drawdown" in html


def test_the_query_count_does_not_grow_with_the_runs(client, django_assert_num_queries):
    counts = []
    for agents, windows, instances in ((3, 1, 2), (10, 10, 10)):
        tournament = stored_tournament(agents=agents, windows=windows, instances=instances, rounds=24)
        first, second = list(_entries(tournament).values())[:2]
        # tournament, lineup, results state, stored results, the two agents' participants
        with django_assert_num_queries(5) as captured:
            assert client.get(_url(tournament, first, second)).status_code == 200
        counts.append(len(captured.captured_queries))
    assert counts[0] == counts[1]


def test_agents_not_in_the_lineup_are_refused_with_a_reason(client):
    tournament = stored_tournament(agents=3, windows=2, instances=1)
    other = stored_tournament(agents=3, windows=2, instances=1, name="Other cup")
    mine, theirs = list(_entries(tournament).values()), list(_entries(other).values())
    response = client.get(_url(tournament, mine[0], theirs[1]))
    assert response.status_code == 400 and b"lineup" in response.content
    response = client.get(_url(tournament, mine[0], mine[0]))
    assert response.status_code == 400 and b"two different agents" in response.content
    bare = client.get(reverse("tournament-compare", args=[tournament.pk]))  # the first two of the lineup
    assert bare.status_code == 200 and f"{mine[0].name} against {mine[1].name}" in bare.content.decode()
    assert client.get(reverse("tournament-compare", args=[999999])).status_code == 404


def test_before_a_run_completes_it_says_so(client):
    tournament = stored_tournament(agents=3, windows=1, instances=2, running=2)
    first, second = list(_entries(tournament).values())[:2]
    html = client.get(_url(tournament, first, second)).content.decode()
    assert "appears when a run with both agents has completed" in html


@pytest.mark.django_db(transaction=True)
def test_every_run_links_to_its_competition_compare_page_of_the_two(client):
    store_market()
    tournament = played_tournament(instances=2)
    entries = _entries(tournament)
    html = client.get(_url(tournament, entries["Bull"], entries["Hold"])).content.decode()
    table = html.split('id="paired-windows"', 1)[1].split("</table>", 1)[0]
    links = re.findall(r'<a href="([^"]+)" data-instance="(\d)">', table)
    played = TournamentRun.objects.filter(tournament=tournament).select_related("competition")
    assert len(links) == played.count() == 4
    for href, _instance in links:
        url = urlparse(href.replace("&amp;", "&"))
        run = next(run for run in played if url.path == reverse("competition-compare", args=[run.competition_id]))
        ids = {int(value) for value in parse_qs(url.query)["p"]}
        names = set(run.competition.participants.filter(pk__in=ids).values_list("name", flat=True))
        assert names == {"Bull", "Hold"}
    page = client.get(href.replace("&amp;", "&"))
    assert page.status_code == 200 and "Bull vs Hold" in page.content.decode()
