"""Reads of competitions: the leaderboard, benchmarks, significance, histories and feeds.

Selectors do the queries; `analytics` (pure) does the math. Each selector reads each table
once for the whole competition (competitions.selectors._load), so its query count is
constant whatever the number of participants, rounds, fills or invocations.

- rows, leaderboard: the leaderboard rows and one participant's performance;
- benchmark: the equal-weight buy-and-hold reference and its row;
- significance: returns on one grid and the block bootstrap of every pair;
- series: equity and drawdown histories for charts;
- feeds: fills, decisions and closed positions, newest first, paginated by id;
- lists, market: the competitions list and the last round's prices;
- records: competitions, participants, rounds and invocations as the API reads them, export rows.

Callers import from here (`from competitions import selectors`); the modules are the layout.
"""

from analytics import downsample
from competitions.selectors.benchmark import BENCHMARK_NAME, BENCHMARK_PROVIDER, buy_and_hold_reference
from competitions.selectors.feeds import (
    DecisionLine,
    FillLine,
    participant_fills,
    participant_invocations,
    participant_positions,
    recent_decisions,
    recent_fills,
)
from competitions.selectors.leaderboard import (
    Leaderboard,
    ParticipantPerformance,
    leaderboard_get,
    leaderboard_list,
    participant_performance,
    participant_performance_get,
)
from competitions.selectors.lists import competition_list
from competitions.selectors.market import MarketQuote, market_quotes
from competitions.selectors.rows import ROW_COLUMNS, LeaderboardRow
from competitions.selectors.records import (
    EQUITY_EXPORT_COLUMNS,
    INVOCATION_EXPORT_COLUMNS,
    TRADE_EXPORT_COLUMNS,
    competition_counted_get,
    competition_counted_list,
    competition_ensure_exists,
    competition_get,
    equity_export_rows,
    invocation_export_rows,
    invocation_record_list,
    participant_get,
    participant_list,
    participant_names,
    participant_with_competition_get,
    round_list,
    trade_export_rows,
)
from competitions.selectors.series import (
    drawdown_history,
    equity_history,
    participant_drawdown_history,
    participant_equity_history,
)
from competitions.selectors.significance import aligned_returns, significance_matrix

__all__ = [
    "EQUITY_EXPORT_COLUMNS",
    "INVOCATION_EXPORT_COLUMNS",
    "TRADE_EXPORT_COLUMNS",
    "BENCHMARK_NAME",
    "BENCHMARK_PROVIDER",
    "DecisionLine",
    "FillLine",
    "Leaderboard",
    "LeaderboardRow",
    "MarketQuote",
    "ParticipantPerformance",
    "ROW_COLUMNS",
    "aligned_returns",
    "buy_and_hold_reference",
    "competition_counted_get",
    "competition_counted_list",
    "competition_ensure_exists",
    "competition_get",
    "competition_list",
    "downsample",
    "drawdown_history",
    "equity_export_rows",
    "equity_history",
    "invocation_export_rows",
    "invocation_record_list",
    "leaderboard_get",
    "leaderboard_list",
    "market_quotes",
    "participant_drawdown_history",
    "participant_equity_history",
    "participant_fills",
    "participant_get",
    "participant_invocations",
    "participant_list",
    "participant_names",
    "participant_performance",
    "participant_performance_get",
    "participant_positions",
    "participant_with_competition_get",
    "recent_decisions",
    "recent_fills",
    "round_list",
    "significance_matrix",
    "trade_export_rows",
]

# Appended: whether a result may come from a model's memory (issue 16).
from competitions.selectors.memory import competition_in_sample, in_sample_map, participant_in_sample  # noqa: E402
__all__ += ["competition_in_sample", "in_sample_map", "participant_in_sample"]
