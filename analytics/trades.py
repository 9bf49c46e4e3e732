"""Closed trades and exposure: exact running totals and the statistics read from them.

Net PnL of a closed position is computed here once (net_pnl) for the aggregates, the
selectors and the pages.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from analytics._numbers import Number, _optional_float, _to_floats


def net_pnl(*, realised_pnl: Decimal, fees: Decimal, funding: Decimal) -> Decimal:
    """A closed position's net PnL = realised PnL - fees + funding (funding is signed, + received)."""
    return realised_pnl - fees + funding


@dataclass(frozen=True)
class ClosedTrade:
    """One closed position: its net PnL (after fees and funding) and when it was open."""

    net_pnl: Number
    opened_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class TradeStats:
    trades: int
    wins: int  # net PnL > 0
    losses: int  # net PnL < 0; break-even trades count in trades only
    win_rate: float | None  # % of trades that won; None without trades
    profit_factor: float | None  # sum wins / |sum losses|; inf with wins and no losses; None with neither
    average_win: float | None
    average_loss: float | None  # negative
    largest_win: float | None
    largest_loss: float | None  # negative (the most negative PnL)
    expectancy: float | None  # mean net PnL per trade
    average_holding: timedelta | None
    median_holding: timedelta | None


@dataclass
class TradeTotals:
    """Closed trades folded into exact running sums: all trade_stats needs, without keeping
    every trade (competitions.aggregates stores one per participant and adds each round's).

    PnL sums are Decimal, so the order trades are added in never changes a digit; holding
    times are kept as a histogram (holding -> trades) for the median.
    """

    trades: int = 0
    wins: int = 0
    losses: int = 0
    net_pnl: Decimal = Decimal(0)
    gross_win: Decimal = Decimal(0)
    gross_loss: Decimal = Decimal(0)  # sum of the losing trades' PnL, <= 0
    largest_win: Decimal | None = None
    largest_loss: Decimal | None = None
    holding_trades: int = 0  # trades with both times
    holding_total: timedelta = timedelta(0)
    holdings: dict[timedelta, int] = field(default_factory=dict)

    @classmethod
    def of(cls, trades: Iterable[ClosedTrade]) -> TradeTotals:
        totals = cls()
        for trade in trades:
            totals.add(trade)
        return totals

    def add(self, trade: ClosedTrade) -> None:
        pnl = trade.net_pnl if isinstance(trade.net_pnl, Decimal) else Decimal(trade.net_pnl)
        self.trades += 1
        self.net_pnl += pnl
        if pnl > 0:
            self.wins += 1
            self.gross_win += pnl
            self.largest_win = pnl if self.largest_win is None else max(self.largest_win, pnl)
        elif pnl < 0:
            self.losses += 1
            self.gross_loss += pnl
            self.largest_loss = pnl if self.largest_loss is None else min(self.largest_loss, pnl)
        if trade.opened_at is not None and trade.closed_at is not None:
            holding = trade.closed_at - trade.opened_at
            self.holding_trades += 1
            self.holding_total += holding
            self.holdings[holding] = self.holdings.get(holding, 0) + 1

    def median_holding(self) -> timedelta | None:
        """statistics.median of the holding times: the middle one, or the mean of the middle two."""
        if not self.holding_trades:
            return None
        wanted = [(self.holding_trades - 1) // 2, self.holding_trades // 2]
        middle: list[timedelta] = []
        seen = 0
        for holding in sorted(self.holdings):
            seen += self.holdings[holding]
            while wanted and wanted[0] < seen:
                middle.append(holding)
                wanted.pop(0)
        return middle[0] if middle[0] == middle[1] else (middle[0] + middle[1]) / 2

    def stats(self) -> TradeStats:
        trades, wins, losses = self.trades, self.wins, self.losses
        if losses:
            profit_factor: float | None = float(self.gross_win / -self.gross_loss)
        elif wins:
            profit_factor = math.inf
        else:
            profit_factor = None
        return TradeStats(
            trades=trades,
            wins=wins,
            losses=losses,
            win_rate=wins / trades * 100.0 if trades else None,
            profit_factor=profit_factor,
            average_win=float(self.gross_win / wins) if wins else None,
            average_loss=float(self.gross_loss / losses) if losses else None,
            largest_win=_optional_float(self.largest_win),
            largest_loss=_optional_float(self.largest_loss),
            expectancy=float(self.net_pnl / trades) if trades else None,
            average_holding=self.holding_total / self.holding_trades if self.holding_trades else None,
            median_holding=self.median_holding(),
        )


def trade_stats(trades: Sequence[ClosedTrade] | TradeTotals) -> TradeStats:
    """Trade statistics by closed position (not by period), from the trades or their totals.

    Sums are exact (Decimal) and rounded to float once, so they do not depend on trade order.
    """
    totals = trades if isinstance(trades, TradeTotals) else TradeTotals.of(trades)
    return totals.stats()


# --- exposure and leverage ------------------------------------------------------------


@dataclass(frozen=True)
class ExposureShares:
    long: float | None  # % of rounds with net exposure > 0
    short: float | None  # % of rounds with net exposure < 0
    flat: float | None  # % of rounds with no exposure


@dataclass
class ExposureTally:
    """Rounds counted by the sign of net exposure: all exposure_shares needs."""

    long: int = 0
    short: int = 0
    flat: int = 0

    @classmethod
    def of(cls, exposure_signs: Iterable[Number]) -> ExposureTally:
        signs = np.sign(_to_floats(exposure_signs))
        return cls(int(np.sum(signs > 0)), int(np.sum(signs < 0)), int(np.sum(signs == 0)))

    def count(self, sign: int, times: int = 1) -> None:
        if sign > 0:
            self.long += times
        elif sign < 0:
            self.short += times
        else:
            self.flat += times


def exposure_shares(exposure_signs: Sequence[Number] | ExposureTally) -> ExposureShares:
    """Share of rounds long / short / flat from the per-round sign of net exposure (or its tally)."""
    tally = exposure_signs if isinstance(exposure_signs, ExposureTally) else ExposureTally.of(exposure_signs)
    rounds = tally.long + tally.short + tally.flat
    if rounds == 0:
        return ExposureShares(None, None, None)
    return ExposureShares(
        long=tally.long / rounds * 100.0,
        short=tally.short / rounds * 100.0,
        flat=tally.flat / rounds * 100.0,
    )
