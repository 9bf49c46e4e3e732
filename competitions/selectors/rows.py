"""The leaderboard row: who, and every metric, as the pages and the API read it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from analytics import ParticipantMetrics

# Flat column name -> path into ParticipantMetrics. Pages and the API iterate this for their
# columns; `row.<column>` and `row.as_dict()` read through it.
ROW_COLUMNS: dict[str, tuple[str, ...]] = {
    "equity": ("equity",),
    "return_pct": ("return_pct",),
    "annualised_return_pct": ("annualised_return_pct",),
    "pnl": ("pnl",),
    "realised_pnl": ("realised_pnl",),
    "unrealised_pnl": ("unrealised_pnl",),
    "pnl_before_fees": ("pnl_before_fees",),
    "fees_paid": ("fees_paid",),
    "funding_paid": ("funding_paid",),
    "max_drawdown": ("max_drawdown",),
    "max_drawdown_rounds": ("max_drawdown_rounds",),
    "max_drawdown_duration": ("max_drawdown_duration",),
    "current_drawdown": ("current_drawdown",),
    "sharpe": ("sharpe",),
    "sortino": ("sortino",),
    "calmar": ("calmar",),
    "rounds": ("rounds",),
    "trades": ("trade", "trades"),
    "wins": ("trade", "wins"),
    "losses": ("trade", "losses"),
    "win_rate": ("trade", "win_rate"),
    "profit_factor": ("trade", "profit_factor"),
    "average_win": ("trade", "average_win"),
    "average_loss": ("trade", "average_loss"),
    "largest_win": ("trade", "largest_win"),
    "largest_loss": ("trade", "largest_loss"),
    "expectancy": ("trade", "expectancy"),
    "average_holding": ("trade", "average_holding"),
    "median_holding": ("trade", "median_holding"),
    "share_long": ("exposure", "long"),
    "share_short": ("exposure", "short"),
    "share_flat": ("exposure", "flat"),
    "average_leverage": ("average_leverage",),
    "invocations": ("llm", "invocations"),
    "invalid_rate": ("llm", "invalid_rate"),
    "rejected_action_rate": ("llm", "rejected_action_rate"),
    "error_rate": ("llm", "error_rate"),
    "latency_p50": ("llm", "latency_p50"),
    "latency_p95": ("llm", "latency_p95"),
    "input_tokens": ("llm", "input_tokens"),
    "output_tokens": ("llm", "output_tokens"),
    "total_tokens": ("llm", "total_tokens"),
    "llm_cost_usd": ("llm", "cost_usd"),
    "cost_adjusted_return": ("cost_adjusted_return",),
}


@dataclass(frozen=True)
class LeaderboardRow:
    """One leaderboard line: who, and every metric (as `metrics` and as flat `row.<column>`).

    rank: 1 = best by the metric the list was sorted on; None for the buy-and-hold benchmark
    row and for rows returned by participant_performance. participant_id is None for the
    benchmark row. Units as in competitions.analytics (percent for returns and rates).
    """

    rank: int | None
    participant_id: int | None
    name: str
    provider: str
    model: str
    status: str
    is_baseline: bool
    metrics: ParticipantMetrics
    is_benchmark: bool = False

    def __getattr__(self, name: str) -> Any:
        path = ROW_COLUMNS.get(name)
        if path is None:
            raise AttributeError(name)
        value: Any = object.__getattribute__(self, "metrics")
        for part in path:
            value = getattr(value, part)
        return value

    def as_dict(self) -> dict[str, Any]:
        """Flat, JSON-friendly: floats (inf stays inf for the profit factor), durations in seconds."""
        data: dict[str, Any] = {
            "rank": self.rank,
            "participant_id": self.participant_id,
            "name": self.name,
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            "is_baseline": self.is_baseline,
            "is_benchmark": self.is_benchmark,
        }
        for column in ROW_COLUMNS:
            value = getattr(self, column)
            data[column] = value.total_seconds() if isinstance(value, timedelta) else value
        return data
