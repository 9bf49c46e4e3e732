"""Performance analytics: pure functions over equity, trade and invocation sequences.

No Django and no other app here (numpy is fine): selectors load rows and feed plain
sequences in; pages and the API read the results. Conventions: docs/analytics.md.

- metrics: returns, risk ratios, drawdown, leverage, LLM reliability, one participant's
  ParticipantMetrics, the leaderboard order and the buy-and-hold reference;
- trades: closed trades (net_pnl, TradeTotals) and exposure tallies;
- significance: the paired block bootstrap of the compare page;
- series: downsampling, drawdown series, returns aligned on one grid;
- tournament (with sharpe, resampling, paired, mcs, power): the statistics of a tournament's
  runs; imported from their modules, not re-exported here (they need scipy and arch).
"""

from analytics.metrics import (
    CALENDAR_DAYS_PER_YEAR,
    DEFAULT_LEADERBOARD_METRIC,
    LEADERBOARD_METRICS,
    MINUTES_PER_DAY,
    TRADING_DAYS_PER_YEAR,
    DrawdownStats,
    InvocationOutcome,
    InvocationRecord,
    LLMStats,
    ParticipantMetrics,
    annualised_return_pct,
    average_leverage,
    buy_and_hold_equity,
    calmar_ratio,
    cost_adjusted_return_pct,
    drawdown_stats,
    leaderboard_sort,
    llm_stats,
    participant_metrics,
    periods_per_year,
    returns_from_equity,
    sharpe_ratio,
    sortino_ratio,
    total_return_pct,
)
from analytics.series import (
    TimePoint,
    aligned_returns,
    downsample,
    downsample_deepest,
    drawdown_series,
)
from analytics.significance import (
    PairComparison,
    Statistic,
    Verdict,
    compare_participants,
    default_block_length,
)
from analytics.trades import (
    ClosedTrade,
    ExposureShares,
    ExposureTally,
    TradeStats,
    TradeTotals,
    exposure_shares,
    net_pnl,
    trade_stats,
)

__all__ = [
    "CALENDAR_DAYS_PER_YEAR",
    "ClosedTrade",
    "DEFAULT_LEADERBOARD_METRIC",
    "LEADERBOARD_METRICS",
    "DrawdownStats",
    "ExposureShares",
    "ExposureTally",
    "InvocationOutcome",
    "InvocationRecord",
    "LLMStats",
    "MINUTES_PER_DAY",
    "PairComparison",
    "ParticipantMetrics",
    "Statistic",
    "TRADING_DAYS_PER_YEAR",
    "TimePoint",
    "TradeStats",
    "TradeTotals",
    "Verdict",
    "aligned_returns",
    "annualised_return_pct",
    "average_leverage",
    "buy_and_hold_equity",
    "calmar_ratio",
    "compare_participants",
    "cost_adjusted_return_pct",
    "default_block_length",
    "downsample",
    "downsample_deepest",
    "drawdown_series",
    "drawdown_stats",
    "exposure_shares",
    "leaderboard_sort",
    "llm_stats",
    "net_pnl",
    "participant_metrics",
    "periods_per_year",
    "returns_from_equity",
    "sharpe_ratio",
    "sortino_ratio",
    "total_return_pct",
    "trade_stats",
]
