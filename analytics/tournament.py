"""Tournament results that say how sure they are (issue 15): per agent, between agents, power.

Plain data in (one `RunResult` per run = one agent on one window instance), plain dataclasses
out; no Django and no other app. A window is the unit of independence: the instances of an
agent in a window are averaged first, and every interval, paired test and the model confidence
set work on those window values (docs/tournament-statistics.md states each convention).
"""

from __future__ import annotations

import numbers
import statistics as pystatistics
from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import combinations
from typing import Literal

import numpy as np

from analytics import mcs as mcs_module
from analytics import power as power_module
from analytics.paired import (
    DEFAULT_PAIRED_TEST,
    PairedTest,
    Verdict,
    holm_adjust,
    paired_difference,
    verdict,
)
from analytics.resampling import DEFAULT_RESAMPLES, Interval, bootstrap_interval
from analytics.sharpe import (
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    lo_standard_error,
    probabilistic_sharpe_ratio,
    sharpe_moments,
)

Window = Hashable
Number = float | int | Decimal
Metric = Literal["return_pct", "sharpe", "max_drawdown_pct", "cost_adjusted_return_pct"]

# Every one is "higher is better": drawdowns are <= 0, so the closest to 0 is the highest.
METRICS: tuple[Metric, ...] = ("return_pct", "sharpe", "max_drawdown_pct", "cost_adjusted_return_pct")
PAIR_METRICS: tuple[Metric, ...] = ("return_pct", "sharpe")


@dataclass(frozen=True)
class RunResult:
    """One run: an agent on one instance of one window, as the per-run analytics stored it.

    Percentages are in percent (12.5 = 12.5 %); `sharpe` is annualised as on the leaderboard and
    None for a flat equity; `returns` are the per-round simple returns (fractions), used for the
    probabilistic and deflated Sharpe ratios. Counts are per run, pooled by summing.
    """

    agent: str
    window: Window
    instance: int
    return_pct: float
    sharpe: float | None
    max_drawdown_pct: float
    cost_adjusted_return_pct: float | None = None
    cost_usd: Number = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    invocations: int = 0
    invalid_responses: int = 0
    actions_proposed: int = 0
    actions_rejected: int = 0
    latency_seconds_sum: float = 0.0
    latency_samples: int = 0  # invocations that reported a latency
    returns: Sequence[Number] = ()


@dataclass(frozen=True)
class MetricSummary:
    """Mean and median over an agent's window values, each with a percentile bootstrap interval."""

    windows: int
    mean: float | None
    median: float | None
    mean_interval: Interval | None  # None with fewer than 2 windows
    median_interval: Interval | None


@dataclass(frozen=True)
class WinRate:
    """Share of common windows where the agent's return beat the opponent's; a tie counts half."""

    opponent: str
    windows: int
    wins: int
    ties: int
    losses: int
    rate_pct: float | None  # None without a common window


@dataclass(frozen=True)
class SharpeConfidence:
    """How sure the per-round Sharpe ratio is (not annualised: the formulas are per period)."""

    rounds: int
    sharpe_per_round: float | None
    lo_standard_error: float | None
    psr: float | None  # probability that the true SR > 0
    dsr: float | None  # probability that the true SR > the best-of-trials SR*


@dataclass(frozen=True)
class PooledUsage:
    """LLM reliability and cost pooled over the agent's runs (sums of per-run counts)."""

    runs: int
    invocations: int
    invalid_response_rate_pct: float | None  # invalid / invocations x 100
    rejected_action_rate_pct: float | None  # rejected / proposed x 100
    cost_usd: float
    cost_usd_per_run: float | None
    input_tokens: int
    output_tokens: int
    tokens_per_run: float | None
    mean_latency_seconds: float | None  # latency sum / latency samples


@dataclass(frozen=True)
class AgentSummary:
    """One ranking row."""

    rank: int
    agent: str
    windows: int
    runs: int
    metrics: dict[str, MetricSummary]
    win_rates: tuple[WinRate, ...]  # against each baseline, then the buy-and-hold reference
    sharpe_confidence: SharpeConfidence
    usage: PooledUsage


@dataclass(frozen=True)
class PairComparison:
    """first minus second on one metric over their common windows; Holm-adjusted across the pairs."""

    first: str
    second: str
    metric: str
    windows: int
    mean_difference: float | None
    interval: Interval | None
    p_bootstrap: float | None
    p_wilcoxon: float | None
    test: str  # which p drives p_value and the verdict
    p_value: float | None
    p_adjusted: float | None
    verdict: Verdict
    minimum_detectable_difference: float | None  # at 80 % power, from this pair's spread


@dataclass(frozen=True)
class PowerSummary:
    """The page's power sentence: with n windows and a typical spread, what can be told apart."""

    metric: str
    windows: int
    sd_difference: float | None  # median over pairs of the sd of paired window differences
    minimum_detectable_difference: float | None
    difference: float | None  # the difference asked about
    windows_needed: int | None
    alpha: float
    power: float


@dataclass(frozen=True)
class TournamentResults:
    metric: str
    alpha: float
    resamples: int
    seed: int
    test: str
    windows: tuple[Window, ...]
    agents: tuple[AgentSummary, ...]  # ranking: mean of `metric` over windows, best first
    pairs: dict[str, tuple[PairComparison, ...]] = field(default_factory=dict)  # by metric
    mcs: mcs_module.ModelConfidenceSet | None = None
    power: PowerSummary | None = None


def _window_key(window: Window) -> tuple[int, object]:
    # Windows may be numbers or labels; numbers first in numeric order, then labels.
    return (0, float(window)) if isinstance(window, numbers.Real) else (1, str(window))


def _metric_value(run: RunResult, metric: str) -> float | None:
    value = getattr(run, metric)
    return None if value is None else float(value)


def window_values(runs: Sequence[RunResult], agent: str, metric: str) -> dict[Window, float]:
    """The agent's metric per window: the mean over the window's instances that define it.

    A window where no instance defines the metric (a Sharpe of a flat equity) is left out.
    """
    by_window: dict[Window, list[float]] = defaultdict(list)
    for run in runs:
        if run.agent == agent:
            value = _metric_value(run, metric)
            if value is not None:
                by_window[run.window].append(value)
    return {window: float(np.mean(values)) for window, values in by_window.items()}


def _ordered(values: Mapping[Window, float]) -> list[float]:
    return [values[window] for window in sorted(values, key=_window_key)]


def metric_summary(values: Sequence[float], *, resamples: int, seed: int, level: float) -> MetricSummary:
    if not values:
        return MetricSummary(0, None, None, None, None)
    return MetricSummary(
        windows=len(values),
        mean=float(np.mean(values)),
        median=float(np.median(values)),
        mean_interval=bootstrap_interval(values, np.mean, resamples=resamples, seed=seed, level=level),
        median_interval=bootstrap_interval(values, np.median, resamples=resamples, seed=seed, level=level),
    )


def win_rate(agent_values: Mapping[Window, float], opponent_values: Mapping[Window, float], opponent: str) -> WinRate:
    common = [window for window in agent_values if window in opponent_values]
    wins = sum(agent_values[window] > opponent_values[window] for window in common)
    ties = sum(agent_values[window] == opponent_values[window] for window in common)
    losses = len(common) - wins - ties
    rate = (wins + ties / 2.0) / len(common) * 100.0 if common else None
    return WinRate(opponent=opponent, windows=len(common), wins=wins, ties=ties, losses=losses, rate_pct=rate)


def window_returns(runs: Sequence[RunResult], agent: str) -> list[float]:
    """Per-round returns with instances averaged round by round inside each window, windows chained.

    Instances share the window's market path, so they are one observation per round, not
    several; a round only some instances reached averages those. The moments PSR and DSR use
    do not depend on the order, so the windows' order does not matter.
    """
    by_window: dict[Window, list[np.ndarray]] = defaultdict(list)
    for run in runs:
        if run.agent == agent and len(run.returns):
            by_window[run.window].append(np.asarray([float(value) for value in run.returns], dtype=float))
    chained: list[float] = []
    for window in sorted(by_window, key=_window_key):
        series = by_window[window]
        rounds = max(len(values) for values in series)
        padded = np.full((len(series), rounds), np.nan)
        for row, values in enumerate(series):
            padded[row, : len(values)] = values
        chained.extend(np.nanmean(padded, axis=0).tolist())
    return chained


def pooled_usage(runs: Sequence[RunResult]) -> PooledUsage:
    count = len(runs)
    invocations = sum(run.invocations for run in runs)
    invalid = sum(run.invalid_responses for run in runs)
    proposed = sum(run.actions_proposed for run in runs)
    rejected = sum(run.actions_rejected for run in runs)
    cost = float(sum(Decimal(str(run.cost_usd)) for run in runs))  # summed exactly, read as float
    input_tokens = sum(run.input_tokens for run in runs)
    output_tokens = sum(run.output_tokens for run in runs)
    latency_samples = sum(run.latency_samples for run in runs)
    return PooledUsage(
        runs=count,
        invocations=invocations,
        invalid_response_rate_pct=invalid / invocations * 100.0 if invocations else None,
        rejected_action_rate_pct=rejected / proposed * 100.0 if proposed else None,
        cost_usd=cost,
        cost_usd_per_run=cost / count if count else None,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        tokens_per_run=(input_tokens + output_tokens) / count if count else None,
        mean_latency_seconds=(
            sum(run.latency_seconds_sum for run in runs) / latency_samples if latency_samples else None
        ),
    )


def paired_differences(first: Mapping[Window, float], second: Mapping[Window, float]) -> list[float]:
    """first - second on the windows both have, in window order (an absent agent is not imputed)."""
    common = sorted((window for window in first if window in second), key=_window_key)
    return [first[window] - second[window] for window in common]


def compare_pairs(
    values: Mapping[str, Mapping[Window, float]],
    metric: str,
    *,
    test: PairedTest = DEFAULT_PAIRED_TEST,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = 0.05,
    power: float = 0.80,
) -> tuple[PairComparison, ...]:
    """Every pair (in the given agent order) on one metric; Holm across the pairs that have a p-value."""
    if test not in ("wilcoxon", "bootstrap"):
        raise ValueError(f"unknown paired test: {test}")
    raw = []
    for first, second in combinations(values, 2):
        difference = paired_difference(
            paired_differences(values[first], values[second]), resamples=resamples, seed=seed, level=1 - alpha
        )
        p_value = difference.p_wilcoxon if test == "wilcoxon" else difference.p_bootstrap
        raw.append((first, second, difference, p_value))
    tested = [index for index, (_, _, _, p_value) in enumerate(raw) if p_value is not None]
    adjusted = dict(zip(tested, holm_adjust([raw[index][3] for index in tested]), strict=True))
    comparisons = []
    for index, (first, second, difference, p_value) in enumerate(raw):
        p_adjusted = adjusted.get(index)
        mdd = (
            power_module.minimum_detectable_difference(
                difference.sd_difference, difference.windows, alpha=alpha, power=power
            )
            if difference.sd_difference is not None
            else None
        )
        comparisons.append(
            PairComparison(
                first=first,
                second=second,
                metric=metric,
                windows=difference.windows,
                mean_difference=difference.mean_difference,
                interval=difference.interval,
                p_bootstrap=difference.p_bootstrap,
                p_wilcoxon=difference.p_wilcoxon,
                test=test,
                p_value=p_value,
                p_adjusted=p_adjusted,
                verdict=verdict(difference.mean_difference, p_adjusted, alpha),
                minimum_detectable_difference=mdd,
            )
        )
    return tuple(comparisons)


def power_summary(
    values: Mapping[str, Mapping[Window, float]],
    metric: str,
    *,
    windows: int,
    difference: float | None,
    alpha: float,
    power: float,
) -> PowerSummary:
    """Power at the tournament's window count, with the median pair's spread of paired differences."""
    spreads = []
    for first, second in combinations(values, 2):
        differences = paired_differences(values[first], values[second])
        if len(differences) >= 2:
            spreads.append(float(np.std(differences, ddof=1)))
    sd = float(pystatistics.median(spreads)) if spreads else None
    return PowerSummary(
        metric=metric,
        windows=windows,
        sd_difference=sd,
        minimum_detectable_difference=(
            power_module.minimum_detectable_difference(sd, windows, alpha=alpha, power=power)
            if sd is not None
            else None
        ),
        difference=difference,
        windows_needed=(
            power_module.windows_needed(sd, difference, alpha=alpha, power=power)
            if sd is not None and difference is not None
            else None
        ),
        alpha=alpha,
        power=power,
    )


def sharpe_confidences(
    runs: Sequence[RunResult], agents: Sequence[str], *, trials: int | None, sharpe_variance: float | None
) -> dict[str, SharpeConfidence]:
    """Lo's SE, PSR(0) and DSR per agent; trials default to the agents, V to their SRs' variance (ddof 1)."""
    series = {agent: window_returns(runs, agent) for agent in agents}
    moments = {agent: sharpe_moments(series[agent]) for agent in agents}
    estimates = [m.sharpe for m in moments.values() if m is not None]
    trial_count = trials if trials is not None else len(agents)
    variance = sharpe_variance
    if variance is None and len(estimates) >= 2:
        variance = float(np.var(estimates, ddof=1))
    benchmark = None
    if trial_count == 1:
        benchmark = expected_maximum_sharpe(1, 0.0)
    elif variance is not None and trial_count >= 2:
        benchmark = expected_maximum_sharpe(trial_count, variance)
    confidences = {}
    for agent, moment in moments.items():
        if moment is None:
            confidences[agent] = SharpeConfidence(len(series[agent]), None, None, None, None)
            continue
        confidences[agent] = SharpeConfidence(
            rounds=moment.n,
            sharpe_per_round=moment.sharpe,
            lo_standard_error=lo_standard_error(moment.sharpe, moment.n),
            psr=probabilistic_sharpe_ratio(moment, 0.0),
            dsr=probabilistic_sharpe_ratio(moment, benchmark) if benchmark is not None else None,
        )
    return confidences


def _mcs_for(
    values: Mapping[str, Mapping[Window, float]], *, size: float, block_size: int, reps: int, seed: int
) -> mcs_module.ModelConfidenceSet:
    # The MCS needs a balanced panel: the windows every agent has. Loss = minus the metric.
    agents = list(values)
    common = set.intersection(*(set(values[agent]) for agent in agents)) if agents else set()
    ordered = sorted(common, key=_window_key)
    losses = {agent: [-values[agent][window] for window in ordered] for agent in agents}
    return mcs_module.model_confidence_set(losses, size=size, block_size=block_size, reps=reps, seed=seed)


def tournament_results(
    runs: Sequence[RunResult],
    *,
    baselines: Sequence[str] = (),
    reference: Mapping[Window, Number] | None = None,
    metric: Metric = "return_pct",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    alpha: float = 0.05,
    test: PairedTest = DEFAULT_PAIRED_TEST,
    trials: int | None = None,
    sharpe_variance: float | None = None,
    mcs_size: float = mcs_module.DEFAULT_SIZE,
    mcs_block_size: int = mcs_module.DEFAULT_BLOCK_SIZE,
    mcs_reps: int = mcs_module.DEFAULT_REPS,
    power: float = 0.80,
    detect_difference: float | None = None,
) -> TournamentResults:
    """Everything issue 15 shows, from the stored per-run results of one tournament.

    baselines: agent names to report win rates against; reference: buy-and-hold return % per
    window. metric orders the ranking and feeds the MCS losses and the power sentence; pairs
    are compared on return % and Sharpe (and on `metric` too when it is neither). Intervals
    are at 1 - alpha; the bootstrap uses `resamples` draws from `seed`. trials (DSR) default to
    the number of agents; pass more when variants were tried outside this tournament.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric: {metric}")
    agents = list(dict.fromkeys(run.agent for run in runs))
    windows = tuple(sorted({run.window for run in runs}, key=_window_key))
    values = {name: {agent: window_values(runs, agent, name) for agent in agents} for name in METRICS}
    level = 1.0 - alpha

    ranked = sorted(
        agents,
        key=lambda agent: (
            -np.mean(list(values[metric][agent].values())) if values[metric][agent] else float("inf")
        ),
    )
    reference_values = {window: float(value) for window, value in (reference or {}).items()}
    confidences = sharpe_confidences(runs, agents, trials=trials, sharpe_variance=sharpe_variance)
    rows = []
    for rank, agent in enumerate(ranked, start=1):
        own_runs = [run for run in runs if run.agent == agent]
        rates = [
            win_rate(values["return_pct"][agent], values["return_pct"][baseline], baseline)
            for baseline in baselines
            if baseline != agent and baseline in values["return_pct"]
        ]
        if reference is not None:
            rates.append(win_rate(values["return_pct"][agent], reference_values, "buy and hold"))
        rows.append(
            AgentSummary(
                rank=rank,
                agent=agent,
                windows=len({run.window for run in own_runs}),
                runs=len(own_runs),
                metrics={
                    name: metric_summary(
                        _ordered(values[name][agent]), resamples=resamples, seed=seed, level=level
                    )
                    for name in METRICS
                },
                win_rates=tuple(rates),
                sharpe_confidence=confidences[agent],
                usage=pooled_usage(own_runs),
            )
        )

    pair_metrics = PAIR_METRICS if metric in PAIR_METRICS else (*PAIR_METRICS, metric)
    pairs = {
        name: compare_pairs(
            {agent: values[name][agent] for agent in ranked},
            name,
            test=test,
            resamples=resamples,
            seed=seed,
            alpha=alpha,
            power=power,
        )
        for name in pair_metrics
    }
    ranked_values = {agent: values[metric][agent] for agent in ranked}
    return TournamentResults(
        metric=metric,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
        test=test,
        windows=windows,
        agents=tuple(rows),
        pairs=pairs,
        mcs=_mcs_for(ranked_values, size=mcs_size, block_size=mcs_block_size, reps=mcs_reps, seed=seed)
        if agents
        else None,
        power=power_summary(
            ranked_values, metric, windows=len(windows), difference=detect_difference, alpha=alpha, power=power
        ),
    )
