"""tournament_results: windows as the unit, edge cases without exceptions, clear cases right."""

from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from analytics import paired, sharpe
from analytics.tournament import RunResult, tournament_results, window_returns, window_values


def _run(agent, window, instance=0, return_pct=0.0, **fields):
    fields.setdefault("sharpe", return_pct / 2)
    fields.setdefault("max_drawdown_pct", -abs(return_pct) / 3)
    fields.setdefault("cost_adjusted_return_pct", return_pct - 0.1)
    return RunResult(agent=agent, window=window, instance=instance, return_pct=return_pct, **fields)


def _tournament(windows=16, instances=2, seed=0):
    """skilled beats everyone by ~2 % a window; coin and mirror are the same skill-less agent."""
    rng = np.random.default_rng(seed)
    runs = []
    for window in range(windows):
        market = rng.normal(0.0, 3.0)
        for instance in range(instances):
            for agent, edge in (("skilled", 2.0), ("coin", 0.0), ("mirror", 0.0)):
                value = market + edge + rng.normal(0.0, 0.6)
                returns = rng.normal(edge / 2000, 0.005, 30).tolist()
                runs.append(_run(agent, window, instance, value, returns=returns))
    return runs


@pytest.fixture(scope="module")
def results():
    return tournament_results(
        _tournament(),
        baselines=["coin"],
        reference={window: 0.0 for window in range(16)},
        resamples=800,
        seed=3,
        detect_difference=0.5,
    )


def test_the_clearly_better_agent_ranks_first_and_is_better_than_both_after_holm(results):
    assert results.agents[0].agent == "skilled"
    skilled_pairs = [p for p in results.pairs["return_pct"] if "skilled" in (p.first, p.second)]
    assert all(p.verdict == "better" and p.first == "skilled" for p in skilled_pairs)
    tied = next(p for p in results.pairs["return_pct"] if {p.first, p.second} == {"coin", "mirror"})
    assert tied.verdict == "not distinguishable"


def test_pairs_use_wilcoxon_by_default_and_holm_across_the_pairs(results):
    pairs = results.pairs["return_pct"]
    assert results.test == "wilcoxon" == paired.DEFAULT_PAIRED_TEST
    assert [p.p_value for p in pairs] == [p.p_wilcoxon for p in pairs]
    assert [p.p_adjusted for p in pairs] == pytest.approx(paired.holm_adjust([p.p_value for p in pairs]))
    assert set(results.pairs) == {"return_pct", "sharpe"}


def test_the_wilcoxon_p_of_a_pair_is_scipys_on_the_window_means():
    runs = _tournament()
    first = window_values(runs, "skilled", "return_pct")
    second = window_values(runs, "coin", "return_pct")
    differences = [first[w] - second[w] for w in sorted(first)]
    pairs = tournament_results(runs, resamples=200).pairs["return_pct"]
    pair = next(p for p in pairs if (p.first, p.second) == ("skilled", "coin"))
    assert pair.windows == 16
    assert pair.p_wilcoxon == pytest.approx(stats.wilcoxon(differences).pvalue, abs=1e-15)
    assert pair.mean_difference == pytest.approx(np.mean(differences))


def test_the_bootstrap_test_can_be_chosen():
    chosen = tournament_results(_tournament(), test="bootstrap", resamples=300)
    assert all(p.p_value == p.p_bootstrap for p in chosen.pairs["sharpe"])
    with pytest.raises(ValueError):
        tournament_results(_tournament(), test="t-test")


def test_the_whole_result_is_reproducible_with_a_seed_and_moves_with_another():
    first = tournament_results(_tournament(), resamples=300, seed=8)
    assert first == tournament_results(_tournament(), resamples=300, seed=8)
    other = tournament_results(_tournament(), resamples=300, seed=9)
    assert first.agents[0].metrics["return_pct"].mean_interval != other.agents[0].metrics["return_pct"].mean_interval


def test_the_model_confidence_set_keeps_the_skilled_agent_only(results):
    assert results.mcs.members == ("skilled",)
    assert results.mcs.size == 0.10 and results.mcs.method == "R"
    assert results.mcs.elimination_order[-1] == "skilled"


def test_instances_are_averaged_inside_a_window_before_anything_else():
    runs = [_run("a", 1, 0, 4.0), _run("a", 1, 1, 2.0), _run("a", 2, 0, -1.0)]
    assert window_values(runs, "a", "return_pct") == {1: 3.0, 2: -1.0}
    summary = tournament_results(runs, resamples=100).agents[0].metrics["return_pct"]
    assert summary.mean == 1.0  # (3 - 1) / 2: each window weighs the same, however many instances
    assert summary.windows == 2


def test_intervals_resample_windows_with_the_stated_percentiles():
    runs = _tournament(windows=10)
    values = window_values(runs, "skilled", "max_drawdown_pct")
    ordered = np.asarray([values[w] for w in sorted(values)])
    indices = np.random.default_rng(4).integers(0, 10, size=(250, 10))
    medians = np.median(ordered[indices], axis=1)
    summary = tournament_results(runs, resamples=250, seed=4).agents[0].metrics["max_drawdown_pct"]
    assert summary.median == pytest.approx(np.median(ordered))
    assert summary.median_interval.low == pytest.approx(np.percentile(medians, 2.5))
    assert summary.median_interval.high == pytest.approx(np.percentile(medians, 97.5))


def test_one_window_gives_numbers_without_intervals_or_verdicts():
    runs = [_run("a", "w1", 0, 3.0), _run("a", "w1", 1, 1.0), _run("b", "w1", 0, -2.0)]
    results = tournament_results(runs, detect_difference=1.0)
    row = results.agents[0]
    assert row.metrics["return_pct"].mean == 2.0 and row.metrics["return_pct"].mean_interval is None
    pair = results.pairs["return_pct"][0]
    assert pair.mean_difference == 4.0
    assert (pair.interval, pair.p_value, pair.p_adjusted, pair.verdict) == (None, None, None, "not distinguishable")
    assert results.mcs.members == () and "fewer than 2" in results.mcs.note
    assert results.power.sd_difference is None and results.power.windows_needed is None


def test_all_equal_differences_are_not_distinguishable_and_raise_nothing():
    runs = [_run(agent, w, 0, 1.5) for w in range(6) for agent in ("a", "b")]
    results = tournament_results(runs, resamples=100)
    pair = results.pairs["return_pct"][0]
    assert pair.mean_difference == 0.0
    assert pair.p_wilcoxon == 1.0 and pair.p_bootstrap == 1.0
    assert pair.verdict == "not distinguishable"
    assert set(results.mcs.members) == {"a", "b"}


def test_a_flat_equity_has_no_sharpe_and_its_windows_drop_out_of_sharpe_only():
    runs = [_run("a", w, 0, float(w), returns=[0.01, -0.005, 0.002]) for w in range(4)]
    runs += [_run("flat", w, 0, 0.0, sharpe=None, returns=[0.0, 0.0, 0.0]) for w in range(4)]
    results = tournament_results(runs, resamples=100)
    flat = next(row for row in results.agents if row.agent == "flat")
    assert flat.metrics["sharpe"].windows == 0 and flat.metrics["sharpe"].mean is None
    assert flat.metrics["return_pct"].windows == 4
    assert flat.sharpe_confidence.psr is None and flat.sharpe_confidence.rounds == 12
    sharpe_pair = results.pairs["sharpe"][0]
    assert sharpe_pair.windows == 0 and sharpe_pair.verdict == "not distinguishable"


def test_an_agent_absent_from_some_windows_is_paired_on_common_windows_only():
    runs = [_run("a", w, 0, 2.0 + w) for w in range(6)] + [_run("b", w, 0, 1.0) for w in (1, 3, 5)]
    results = tournament_results(runs, resamples=100)
    pair = results.pairs["return_pct"][0]
    assert (pair.first, pair.second, pair.windows) == ("a", "b", 3)
    assert pair.mean_difference == pytest.approx(np.mean([3 - 1, 5 - 1, 7 - 1]))
    assert results.mcs.windows == 3  # a balanced panel: the windows everybody has
    b = next(row for row in results.agents if row.agent == "b")
    assert b.windows == 3


def test_win_rates_against_baselines_and_buy_and_hold_count_ties_half():
    runs = [_run("a", w, 0, r) for w, r in enumerate([2.0, 1.0, -1.0, 0.5])]
    runs += [_run("base", w, 0, r) for w, r in enumerate([1.0, 1.0, 0.0, 0.0])]
    results = tournament_results(runs, baselines=["base"], reference={0: 3.0, 1: 0.0, 2: -2.0}, resamples=50)
    a = next(row for row in results.agents if row.agent == "a")
    against_base, against_hold = a.win_rates
    assert (against_base.wins, against_base.ties, against_base.losses) == (2, 1, 1)
    assert against_base.rate_pct == pytest.approx(62.5)
    assert (against_hold.opponent, against_hold.windows, against_hold.wins) == ("buy and hold", 3, 2)
    assert against_hold.rate_pct == pytest.approx(200 / 3)
    base = next(row for row in results.agents if row.agent == "base")
    assert [rate.opponent for rate in base.win_rates] == ["buy and hold"]  # never against itself


def test_usage_is_pooled_over_runs_not_averaged_over_rates():
    runs = [
        _run("a", 0, 0, 1.0, invocations=10, invalid_responses=1, actions_proposed=4, actions_rejected=1,
             cost_usd=Decimal("0.10"), input_tokens=1000, output_tokens=200, latency_seconds_sum=5.0, latency_samples=10),
        _run("a", 1, 0, 1.0, invocations=30, invalid_responses=0, actions_proposed=0, actions_rejected=0,
             cost_usd=Decimal("0.20"), input_tokens=3000, output_tokens=600, latency_seconds_sum=30.0, latency_samples=20),
    ]
    usage = tournament_results(runs, resamples=50).agents[0].usage
    assert usage.invalid_response_rate_pct == pytest.approx(2.5)  # 1 / 40, not the mean of 10 % and 0 %
    assert usage.rejected_action_rate_pct == pytest.approx(25.0)
    assert usage.cost_usd == pytest.approx(0.30) and usage.cost_usd_per_run == pytest.approx(0.15)
    assert (usage.input_tokens, usage.output_tokens, usage.tokens_per_run) == (4000, 800, 2400)
    assert usage.mean_latency_seconds == pytest.approx(35.0 / 30)


def test_usage_without_invocations_or_actions_has_no_rates():
    usage = tournament_results([_run("a", 0, 0, 1.0)], resamples=50).agents[0].usage
    assert usage.invalid_response_rate_pct is None and usage.rejected_action_rate_pct is None
    assert usage.mean_latency_seconds is None


def test_psr_uses_instance_averaged_rounds_and_dsr_deflates_for_the_agents():
    runs = [
        _run("a", 0, 0, 1.0, returns=[0.01, -0.02, 0.03]),
        _run("a", 0, 1, 1.0, returns=[0.03, 0.00]),  # a shorter instance averages only its rounds
        _run("a", 1, 0, 1.0, returns=[0.004, 0.001]),
        _run("b", 0, 0, 1.0, returns=[0.002, -0.001, 0.003, 0.0]),
    ]
    assert window_returns(runs, "a") == pytest.approx([0.02, -0.01, 0.03, 0.004, 0.001])
    results = tournament_results(runs, resamples=50, trials=10, sharpe_variance=0.01)
    a = next(row for row in results.agents if row.agent == "a").sharpe_confidence
    moments = sharpe.sharpe_moments([0.02, -0.01, 0.03, 0.004, 0.001])
    assert a.rounds == 5 and a.sharpe_per_round == pytest.approx(moments.sharpe)
    assert a.lo_standard_error == pytest.approx(sharpe.lo_standard_error(moments.sharpe, 5))
    assert a.psr == pytest.approx(sharpe.probabilistic_sharpe_ratio(moments, 0.0))
    assert a.dsr == pytest.approx(sharpe.deflated_sharpe_ratio(moments, 10, 0.01))


def test_dsr_defaults_to_the_agents_as_trials_and_their_sharpe_spread():
    runs = _tournament(windows=6)
    results = tournament_results(runs, resamples=50)
    estimates = [row.sharpe_confidence.sharpe_per_round for row in results.agents]
    benchmark = sharpe.expected_maximum_sharpe(3, float(np.var(estimates, ddof=1)))
    row = results.agents[0]
    moments = sharpe.sharpe_moments(window_returns(runs, row.agent))
    assert row.sharpe_confidence.dsr == pytest.approx(sharpe.probabilistic_sharpe_ratio(moments, benchmark))
    assert row.sharpe_confidence.dsr < row.sharpe_confidence.psr


def test_power_uses_the_median_spread_of_the_pairs_at_the_window_count(results):
    runs = _tournament()
    values = {agent: window_values(runs, agent, "return_pct") for agent in ("skilled", "coin", "mirror")}
    spreads = sorted(
        np.std([values[a][w] - values[b][w] for w in range(16)], ddof=1)
        for a, b in (("skilled", "coin"), ("skilled", "mirror"), ("coin", "mirror"))
    )
    power = results.power
    assert power.windows == 16 and power.sd_difference == pytest.approx(spreads[1])
    assert power.minimum_detectable_difference == pytest.approx(2.8015852182 * spreads[1] / 4, abs=1e-9)
    assert power.windows_needed == int(np.ceil((2.8015852182 * spreads[1] / 0.5) ** 2))


def test_another_metric_orders_the_ranking_and_is_compared_too():
    runs = [_run("a", w, 0, 1.0, max_drawdown_pct=-5.0) for w in range(3)]
    runs += [_run("b", w, 0, 0.0, max_drawdown_pct=-1.0) for w in range(3)]
    results = tournament_results(runs, metric="max_drawdown_pct", resamples=50)
    assert [row.agent for row in results.agents] == ["b", "a"]
    assert set(results.pairs) == {"return_pct", "sharpe", "max_drawdown_pct"}
    with pytest.raises(ValueError):
        tournament_results(runs, metric="equity")


def test_no_runs_give_an_empty_result():
    results = tournament_results([])
    assert results.agents == () and results.mcs is None and results.pairs["return_pct"] == ()


def test_windows_sort_as_numbers_then_labels_whatever_their_numeric_type():
    runs = [_run("a", window, 0, 1.0) for window in (np.int64(10), 2, "final", 1.5)]
    assert tournament_results(runs, resamples=10).windows == (1.5, 2, np.int64(10), "final")
