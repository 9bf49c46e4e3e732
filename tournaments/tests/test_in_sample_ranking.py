"""Tournament rankings set in-sample windows apart (issue 16): a window that starts before an
agent's training cutoff leaves that agent's statistics by default, pairs compare only the windows
both agents have out of sample, and the API says what was left out and why."""

# ruff: noqa: F811 -- the api fixture imported from memory_data is a test argument

import pytest

from agents.registry import ModelEntry
from analytics.tournament import RunResult
from tournaments import in_sample, results, services
from tournaments.models import Tournament, TournamentResults
from tournaments.tests.memory_data import api, stored_memory_tournament  # noqa: F401 (api: a fixture)

pytestmark = pytest.mark.django_db
IN_SAMPLE = list(range(13))  # weekly windows from 2024-01-01 that start before 2024-04-01


def _pair(data, first, second, metric="return_pct"):
    return next(p for p in data["pairs"][metric] if {p["first"], p["second"]} == {first, second})


def _windows(data):
    return {row["agent"]: row["windows"] for row in data["ranking"]}


def test_the_windows_before_an_agents_cutoff_are_in_sample_for_it_alone():
    tournament = stored_memory_tournament()
    report = in_sample.in_sample_report(tournament_id=tournament.pk)
    assert report.agents["Memory"].in_sample_windows == tuple(IN_SAMPLE)
    assert report.agents["Memory"].cutoff_source.startswith("llm_config.training_cutoff")
    assert report.agents["Fresh"].in_sample_windows == ()  # its cutoff is before every window
    assert report.agents["Hold"].status == "code" and report.agents["Hold"].in_sample_windows == ()


def test_the_split_is_by_agent_and_window():
    report = in_sample.InSampleReport(
        masked=False, window_indexes=(0, 1),
        agents={"A": in_sample.AgentMemory("A", "known", "2024-01", "x", True, (0,))},
    )
    runs = [RunResult(agent, window, 0, 1.0, None, 0.0) for agent in ("A", "B") for window in (0, 1)]
    split = in_sample.runs_split(runs, report)
    assert [(r.agent, r.window) for r in split.in_sample] == [("A", 0)]
    assert [(r.agent, r.window) for r in split.out_of_sample] == [("A", 1), ("B", 0), ("B", 1)]
    assert split.left_out == {"A": (0,)}


def test_by_default_in_sample_windows_leave_the_ranking_and_the_verdict_changes():
    tournament = stored_memory_tournament()
    assert tournament.in_sample == "exclude" == Tournament._meta.get_field("in_sample").default

    default = results.tournament_results_get(tournament_id=tournament.pk)
    included = results.tournament_results_get(tournament_id=tournament.pk, in_sample="include")

    # with its remembered windows, Memory looks better than buy and hold; without them it is not
    assert _pair(included, "Memory", "Hold")["verdict"] == "better"
    assert _pair(included, "Memory", "Hold")["windows"] == 16
    assert _pair(default, "Memory", "Hold")["verdict"] != "better"
    assert _pair(default, "Memory", "Hold")["windows"] == 3  # only the windows both have out of sample
    pair = _pair(default, "Memory", "Hold")
    difference = pair["mean_difference"] if pair["first"] == "Memory" else -pair["mean_difference"]
    assert difference < 0  # worse, on what it cannot remember
    assert _pair(default, "Fresh", "Hold")["windows"] == 16  # a pair without memory keeps every window
    assert _windows(default)["Memory"] == 3 and _windows(default)["Fresh"] == 16
    assert _windows(included)["Memory"] == 16
    assert default["ranking"][0]["agent"] != "Memory" and included["ranking"][0]["agent"] == "Memory"
    # the values per window the heatmap and the compare page read leave the in-sample cells out
    memory_values = default["window_values"]["return_pct"]["Memory"]
    assert [i for i, v in enumerate(memory_values) if v is None] == IN_SAMPLE
    assert None not in included["window_values"]["return_pct"]["Memory"]
    report = {item["agent"]: item for item in default["in_sample"]["agents"]}
    assert report["Memory"]["windows_left_out"] == 13 and default["in_sample"]["windows_left_out"] == 13
    assert "13 of 16 windows" in report["Memory"]["reason"] and "2024-03" in report["Memory"]["reason"]
    assert report["Fresh"]["windows_left_out"] == 0 and report["Hold"]["status"] == "code"


def test_apart_ranks_the_in_sample_results_on_their_own():
    tournament = stored_memory_tournament()
    data = results.tournament_results_get(tournament_id=tournament.pk, in_sample="apart")
    assert _windows(data)["Memory"] == 3
    apart = data["in_sample"]["results"]["ranking"]
    assert [row["agent"] for row in apart] == ["Memory"]
    assert apart[0]["windows"] == 13
    assert apart[0]["metrics"]["return_pct"]["mean"] == pytest.approx(5.0)


def test_a_masked_tournament_leaves_nothing_out():
    tournament = stored_memory_tournament(masked=True)
    data = results.tournament_results_get(tournament_id=tournament.pk)
    assert data["in_sample"]["masked"] and data["in_sample"]["windows_left_out"] == 0
    assert _windows(data)["Memory"] == 16


def test_an_unknown_cutoff_keeps_the_windows_and_says_how_to_set_one():
    tournament = stored_memory_tournament()
    assert _windows(results.tournament_results_get(tournament_id=tournament.pk))["Memory"] == 3  # stored now
    # the entry's cutoff changes under the stored results: they are not served stale
    tournament.entries.filter(name="Memory").update(llm_model="deepseek-chat", llm_config={})
    data = results.tournament_results_get(tournament_id=tournament.pk)
    memory = {item["agent"]: item for item in data["in_sample"]["agents"]}["Memory"]
    assert memory["status"] == "unknown" and memory["windows_left_out"] == 0
    assert "llm_config.training_cutoff" in memory["reason"]
    assert _windows(data)["Memory"] == 16


def test_the_api_says_what_was_left_out_and_why_and_refuses_an_unknown_mode(api):
    tournament = stored_memory_tournament()
    url = f"/api/v1/tournaments/{tournament.pk}/results"

    body = api.get(url).json()
    assert body["in_sample"]["mode"] == "exclude" and "left out" in body["in_sample"]["note"]
    memory = {item["agent"]: item for item in body["in_sample"]["agents"]}["Memory"]
    assert memory["windows_left_out"] == 13 and memory["training_cutoff"] == "2024-03"
    assert memory["in_sample_windows"] == IN_SAMPLE
    assert memory["cutoff_source"].startswith("llm_config.training_cutoff")
    assert {row["agent"]: row["windows"] for row in body["ranking"]}["Memory"] == 3

    apart = api.get(url, {"in_sample": "apart"}).json()
    assert apart["in_sample"]["results"]["ranking"][0]["agent"] == "Memory"
    included = api.get(url, {"in_sample": "include"}).json()
    assert {row["agent"]: row["windows"] for row in included["ranking"]}["Memory"] == 16
    assert included["in_sample"]["windows_left_out"] == 0

    refused = api.get(url, {"in_sample": "sometimes"})
    assert refused.status_code == 400 and "in_sample" in refused.json()

    # the per-agent export follows the same choice
    export = f"/api/v1/tournaments/{tournament.pk}/export"
    rows = {row["agent"]: row for row in api.get(export, {"what": "agents"}).json()}
    assert rows["Memory"]["windows"] == 3
    rows = {row["agent"]: row for row in api.get(export, {"what": "agents", "in_sample": "include"}).json()}
    assert rows["Memory"]["windows"] == 16
    assert api.get(export, {"what": "agents", "in_sample": "never"}).status_code == 400
    # per run and agent: each row says whether its window was in-sample for that agent
    flags = {}
    for row in api.get(export, {"what": "agent_runs"}).json():
        flags.setdefault(row["agent"], set()).add((row["window"], row["in_sample"]))
    assert {window for window, flag in flags["Memory"] if flag} == set(IN_SAMPLE)
    assert {flag for _, flag in flags["Hold"]} == {False}  # a baseline is code: it remembers nothing


def test_the_setting_can_change_after_the_start_and_becomes_the_default(api):
    tournament = stored_memory_tournament(status=Tournament.Status.RUNNING)
    url = f"/api/v1/tournaments/{tournament.pk}"
    assert api.get(url).json()["in_sample"] == "exclude"

    assert api.get(f"{url}/results").json()["in_sample"]["mode"] == "exclude"  # stored in that mode
    changed = api.patch(url, {"in_sample": "apart"}, format="json")
    assert changed.status_code == 200, changed.content
    assert changed.json()["in_sample"] == "apart"
    body = api.get(f"{url}/results").json()
    assert body["in_sample"]["mode"] == "apart" and body["settings"]["in_sample"] == "apart"
    assert body["in_sample"]["results"]["ranking"][0]["agent"] == "Memory"

    assert api.patch(url, {"in_sample": "apart", "seed": 9}, format="json").status_code == 409  # runs exist
    assert api.patch(url, {"in_sample": "never"}, format="json").status_code == 400
    with pytest.raises(Exception, match="in_sample"):
        services.tournament_update(tournament_id=tournament.pk, in_sample="never")


def test_a_corrected_cutoff_is_never_served_from_the_stored_results(monkeypatch):
    """The selection (the lineup's resolved cutoffs) is part of the stored row's key: a registry
    corrected under stored results makes them stale, and the new row replaces the old."""
    tournament = stored_memory_tournament()
    assert _windows(results.tournament_results_get(tournament_id=tournament.pk))["Memory"] == 3
    assert TournamentResults.objects.filter(tournament=tournament).count() == 1
    original = in_sample.training_cutoff_for

    def corrected(provider, model, llm_config=None):  # the registry now says Fresh read up to 2024-02
        if (llm_config or {}).get("training_cutoff") == "2023-06":
            return ModelEntry(model, provider, "2024-02", "https://example.test/fresh", verified=True)
        return original(provider, model, llm_config)

    monkeypatch.setattr(in_sample, "training_cutoff_for", corrected)
    data = results.tournament_results_get(tournament_id=tournament.pk)
    fresh = {item["agent"]: item for item in data["in_sample"]["agents"]}["Fresh"]
    assert fresh["training_cutoff"] == "2024-02" and fresh["windows_left_out"] == 9  # weeks before 2024-03
    assert _windows(data)["Fresh"] == 16 - 9
    assert TournamentResults.objects.filter(tournament=tournament).count() == 1  # the old selection's row is gone


def test_the_worker_stores_every_metric_in_the_tournaments_own_mode(market):
    from analytics.tournament import METRICS
    from tournaments.tests.conftest import played_tournament

    tournament = played_tournament(in_sample="apart", instances=1)
    stored = TournamentResults.objects.filter(tournament=tournament)
    assert sorted((row.settings["metric"], row.settings["in_sample"]) for row in stored) == sorted(
        (metric, "apart") for metric in METRICS
    )
    state = results.results_state(tournament.pk)
    assert all(row.runs_completed == state.runs_completed for row in stored)
    for mode in ("exclude", "include"):  # another mode: computed when first asked, then stored beside it
        data = results.tournament_results_get(tournament_id=tournament.pk, in_sample=mode)
        assert data["settings"]["in_sample"] == mode
    assert TournamentResults.objects.filter(tournament=tournament).count() == len(METRICS) + 2


def test_the_results_api_reads_the_stored_row_in_the_same_queries_for_any_size(api, django_assert_num_queries):
    from tournaments.tests.results_data import stored_tournament

    for agents, windows, instances in ((3, 1, 2), (10, 10, 10)):
        tournament = stored_tournament(agents=agents, windows=windows, instances=instances, rounds=24)
        # the tournament's mode and rules, the results state, the lineup's cutoffs, the stored row
        with django_assert_num_queries(4):
            response = api.get(f"/api/v1/tournaments/{tournament.pk}/results")
        assert response.status_code == 200 and response.json()["runs_completed"] == windows * instances
