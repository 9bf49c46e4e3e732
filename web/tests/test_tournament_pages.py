"""Tournament pages: what they show from the stored results, when polling stops, and that
their query count does not grow with the runs."""

import json
import re

import pytest
from django.core.cache import cache
from django.urls import reverse

from tournaments import results as results_module
from tournaments.models import TournamentResults, TournamentRun
from tournaments.results import tournament_results_get
from tournaments.tests.results_data import run_finish, stored_tournament

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _page(tournament, **params):
    return reverse("tournament-page", args=[tournament.pk])


def test_the_list_shows_each_tournament_with_its_progress_in_one_query(client, django_assert_num_queries):
    stored_tournament(name="Small cup", windows=1, instances=2)
    with django_assert_num_queries(1):
        small = client.get(reverse("tournament-list-page"))
    stored_tournament(name="Big cup", windows=3, instances=3, running=2)
    with django_assert_num_queries(1):
        html = client.get(reverse("tournament-list-page")).content.decode()
    assert "Small cup" in small.content.decode()
    big = html.split("Big cup", 1)[1].split("</tr>", 1)[0]
    assert "7 / 9" in big and "3 × 3" in big and "running" in big


def test_the_page_ranks_agents_with_intervals_marks_baselines_and_says_what_can_be_told_apart(client):
    tournament = stored_tournament(agents=4, windows=6, instances=2)
    html = client.get(_page(tournament)).content.decode()
    results = tournament_results_get(tournament_id=tournament.pk)
    table = html.split('id="ranking"', 1)[1].split("</table>", 1)[0]
    names = re.findall(r'<th scope="row">([^<]+?)\s*<', table)
    assert names == [row["agent"] for row in results["ranking"]]
    first = results["ranking"][0]["metrics"]["return_pct"]
    assert f"{first['mean_interval']['low']:.3f} .. {first['mean_interval']['high']:.3f}" in table
    assert f"({first['median_interval']['low']:.3f} .. {first['median_interval']['high']:.3f})" in table
    members = results["model_confidence_set"]["members"]
    assert table.count('title="In the model confidence set') == len(members) and "baseline" in table
    assert re.search(r"With 6 windows, differences below [0-9.]+ % cannot be told apart", html)
    for chart in ("forest-chart-data", "pairs-chart-data", "window-chart-data"):
        assert f'id="{chart}"' in html
    forest = json.loads(
        html.split('id="forest-chart-data" type="application/json">', 1)[1].split("</script>", 1)[0]
    )
    plotted = {y: x for trace in forest["data"] for y, x in zip(trace["y"], trace["x"], strict=True)}
    assert plotted[results["ranking"][0]["agent"]] == pytest.approx(first["mean"], abs=1e-6)


def test_the_page_shows_win_rates_sharpe_confidence_and_pooled_usage_per_agent(client):
    tournament = stored_tournament(agents=4, windows=5, instances=2)
    html = client.get(_page(tournament)).content.decode()
    results = tournament_results_get(tournament_id=tournament.pk)
    rates = html.split('id="win-rates"', 1)[1].split("</table>", 1)[0]
    assert "vs Buy and hold" in rates and "vs buy &amp; hold reference" in rates  # the baseline, then the market
    leader = results["ranking"][0]
    hold = next(rate for rate in leader["win_rates"] if rate["opponent"] == "buy and hold")
    row = rates.split(f'<th scope="row">{leader["agent"]}</th>', 1)[1].split("</tr>", 1)[0]
    assert f"{hold['rate_pct']:.0f} %" in row and f"({hold['wins']}/{hold['windows']})" in row
    usage = html.split('id="usage"', 1)[1].split("</table>", 1)[0]
    row = usage.split(f'<th scope="row">{leader["agent"]}</th>', 1)[1].split("</tr>", 1)[0]
    confidence, pooled = leader["sharpe_confidence"], leader["usage"]
    assert f"{confidence['sharpe_per_round']:.3f} ± {confidence['lo_standard_error']:.3f}" in row
    assert f"{pooled['invalid_response_rate_pct']:.1f} %" in row and f"{pooled['rejected_action_rate_pct']:.1f} %" in row
    assert f"${pooled['cost_usd_per_run']:.4f}" in row and f"{pooled['tokens_per_run']:,.0f}" in row
    assert pooled["rejected_action_rate_pct"] == 25.0 and f"{pooled['mean_latency_seconds']:.2f} s" == "0.80 s"
    assert "0.80 s" in row and "25.0 %" in row
    ranked = html.split('id="ranking"', 1)[1].split(f'data-agent="{leader["agent"]}"', 1)[1]
    table_row = ranked.split("</tr>", 1)[0]
    assert f"{confidence['psr']:.2f}" in table_row and f"{confidence['dsr']:.2f}" in table_row
    # each ranking row links to its comparison with the leader, the leader to the runner-up
    table = html.split('id="ranking"', 1)[1].split("</table>", 1)[0]
    assert table.count(reverse("tournament-compare", args=[tournament.pk]) + "?a=") == 4
    assert f"vs {results['ranking'][1]['agent']}" in table


def test_the_metric_choice_reorders_the_ranking(client):
    tournament = stored_tournament(agents=3, windows=4, instances=1)
    html = client.get(_page(tournament), {"metric": "sharpe"}).content.decode()
    assert "Ranked by the mean sharpe" in html and 'value="sharpe" selected' in html
    assert client.get(_page(tournament), {"metric": "nonsense"}).status_code == 200  # falls back to return


def test_polling_continues_while_running_and_stops_when_completed(client):
    running = stored_tournament(windows=2, instances=2, running=1)
    response = client.get(_page(running), **HX)
    assert response.status_code == 200 and 'hx-trigger="every 3s' in response.content.decode()
    assert response.content.decode().lstrip().startswith('<div id="live"')
    done = stored_tournament(windows=2, instances=2)
    assert client.get(_page(done), **HX).status_code == 286


def test_before_any_run_completes_the_page_shows_the_grid_and_waits_for_results(client):
    tournament = stored_tournament(windows=1, instances=2, running=2)
    html = client.get(_page(tournament)).content.decode()
    assert "Results appear here when the first run completes" in html
    assert html.split('id="run-grid"', 1)[1].count("badge-running") == 2


def test_the_page_costs_the_same_queries_for_2_and_100_runs(client, django_assert_num_queries):
    small = stored_tournament(agents=3, windows=1, instances=2)
    big = stored_tournament(agents=10, windows=10, instances=10, rounds=24)
    counts = {}
    for name, tournament in (("small", small), ("big", big)):
        cache.clear()
        # tournament, runs, lineup (with the entries' own cutoffs), the stored results of this in-sample mode
        with django_assert_num_queries(4) as captured:
            assert client.get(_page(tournament)).status_code == 200
        counts[name] = len(captured.captured_queries)
        with django_assert_num_queries(
            2
        ):  # a poll with nothing new: tournament and runs; the live region is cached
            client.get(_page(tournament), **HX)
    assert counts["small"] == counts["big"]


def test_the_first_view_after_a_run_completes_reads_the_results_the_worker_stored(client, monkeypatch):
    tournament = stored_tournament(agents=4, windows=3, instances=2, running=1)
    client.get(_page(tournament))
    assert run_finish(TournamentRun.objects.get(tournament=tournament, status="running"))
    monkeypatch.setattr(results_module, "tournament_results", lambda *a, **k: pytest.fail("computed by the page"))
    cache.clear()  # another process: nothing of this one's cache
    html = client.get(_page(tournament), **HX).content.decode()
    assert 'data-runs-done="6"' in html and "6 completed runs" in html


def test_a_stale_stored_result_is_computed_by_the_page_and_stored(client):
    tournament = stored_tournament(agents=3, windows=2, instances=2, results=False)
    html = client.get(_page(tournament)).content.decode()
    assert "4 completed runs" in html
    stored = TournamentResults.objects.get(tournament=tournament)
    assert stored.runs_completed == 4 and stored.data["metric"] == "return_pct"


def test_a_window_shows_every_agent_and_instance_as_cumulative_return(client, django_assert_num_queries):
    tournament = stored_tournament(agents=3, windows=2, instances=2)
    url = reverse("tournament-window", args=[tournament.pk, 1])
    with django_assert_num_queries(2):
        html = client.get(url, **HX).content.decode()
    figure = json.loads(html.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert len(figure["data"]) == 3 * 2
    run = TournamentRun.objects.get(tournament=tournament, window__index=1, instance=0)
    first = run.result["participants"][0]
    line = next(trace for trace in figure["data"] if trace["name"] == f"{first['name']} · i0")
    assert line["y"][-1] == pytest.approx(float(first["return_pct"]), abs=1e-3)
    assert client.get(url).status_code == 200  # the whole page without htmx
    assert client.get(reverse("tournament-window", args=[tournament.pk, 9])).status_code == 404
    assert client.get(reverse("tournament-page", args=[999999])).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_played_tournament_links_its_runs_and_windows_to_their_competition_dashboards(client):
    from tournaments.tests.conftest import played_tournament, store_market

    store_market()
    tournament = played_tournament(instances=1)
    html = client.get(_page(tournament)).content.decode()
    grid = html.split('id="run-grid"', 1)[1]
    competitions = TournamentRun.objects.filter(tournament=tournament).values_list(
        "competition_id", flat=True
    )
    for competition_id in competitions:
        assert reverse("competition-dashboard", args=[competition_id]) in grid
    assert "Bull" in html.split('id="ranking"', 1)[1] and "With 2 windows" in html
    window = client.get(reverse("tournament-window", args=[tournament.pk, 0]), **HX).content.decode()
    assert reverse("competition-dashboard", args=[competitions[0]]) in window
