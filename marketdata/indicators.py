"""Technical indicators for prompts: small numpy functions, floats (analytics, never money).

Each function takes a full series (oldest first) and returns an array of the same
length with NaN where there is not yet enough history. A value at index i only uses
inputs up to i, so reading an indicator at the last closed bar never looks ahead.

Conventions (as published by StockCharts ChartSchool, after Wilder 1978):
- EMA(n): seeded with the simple average of the first n values, then
  ema = value * k + ema_prev * (1 - k), k = 2 / (n + 1).
- RSI(n), Wilder: first average gain/loss = simple mean of the first n changes, then
  avg = (avg_prev * (n - 1) + current) / n; RSI = 100 - 100 / (1 + avg_gain / avg_loss);
  100 when there is no loss over the window.
- MACD(12, 26, 9): line = EMA12 - EMA26, signal = EMA9 of the line, histogram = line - signal.
- ATR(n), Wilder: true range = max(high - low, |high - prev close|, |low - prev close|)
  (high - low for the first bar); first ATR = mean of the first n true ranges, then Wilder
  smoothing as for RSI.
"""

from __future__ import annotations

import numpy as np


def _as_array(values) -> np.ndarray:
    return np.asarray(values, dtype=float)


def ema(values, period: int) -> np.ndarray:
    data = _as_array(values)
    out = np.full(data.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(data))
    if valid.size < period:
        return out
    # Start at the first defined value, so the EMA of a series with a NaN warm-up (MACD) works.
    start = valid[0]
    if data.size - start < period:
        return out
    k = 2.0 / (period + 1)
    current = float(np.mean(data[start : start + period]))
    out[start + period - 1] = current
    for i in range(start + period, data.size):
        current = data[i] * k + current * (1.0 - k)
        out[i] = current
    return out


def _wilder_average(values: np.ndarray, period: int, first_index: int) -> np.ndarray:
    """Wilder smoothing of values[first_index - period + 1:], seeded with a simple mean."""
    out = np.full(values.shape, np.nan)
    if values.size <= first_index:
        return out
    current = float(np.mean(values[first_index - period + 1 : first_index + 1]))
    out[first_index] = current
    for i in range(first_index + 1, values.size):
        current = (current * (period - 1) + values[i]) / period
        out[i] = current
    return out


def rsi(closes, period: int = 14) -> np.ndarray:
    data = _as_array(closes)
    out = np.full(data.shape, np.nan)
    if data.size <= period:
        return out
    change = np.diff(data, prepend=np.nan)
    gains = np.where(change > 0, change, 0.0)
    losses = np.where(change < 0, -change, 0.0)
    avg_gain = _wilder_average(gains, period, period)
    avg_loss = _wilder_average(losses, period, period)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative_strength = avg_gain / avg_loss
        out = 100.0 - 100.0 / (1.0 + relative_strength)
    # No loss in the window: RSI is 100 (a flat window too, by the same formula's limit).
    out = np.where((avg_loss == 0) & ~np.isnan(avg_gain), 100.0, out)
    out[:period] = np.nan
    return out


def macd(
    closes, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = _as_array(closes)
    line = ema(data, fast) - ema(data, slow)
    signal_line = ema(line, signal)
    return line, signal_line, line - signal_line


def true_range(highs, lows, closes) -> np.ndarray:
    high, low, close = _as_array(highs), _as_array(lows), _as_array(closes)
    previous_close = np.concatenate(([np.nan], close[:-1]))
    ranges = np.vstack((high - low, np.abs(high - previous_close), np.abs(low - previous_close)))
    return np.nanmax(ranges, axis=0)


def atr(highs, lows, closes, period: int = 14) -> np.ndarray:
    ranges = true_range(highs, lows, closes)
    if ranges.size < period:
        return np.full(ranges.shape, np.nan)
    return _wilder_average(ranges, period, period - 1)


def pct_change(closes, bars: int) -> np.ndarray:
    """Percentage change of the close over the last `bars` bars."""
    data = _as_array(closes)
    out = np.full(data.shape, np.nan)
    if data.size > bars:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[bars:] = (data[bars:] / data[:-bars] - 1.0) * 100.0
    return out


def rolling_mean(values, window: int) -> np.ndarray:
    data = _as_array(values)
    out = np.full(data.shape, np.nan)
    if data.size >= window:
        cumulative = np.cumsum(np.concatenate(([0.0], data)))
        out[window - 1 :] = (cumulative[window:] - cumulative[:-window]) / window
    return out


# Names as they appear in a snapshot, per timeframe.
INDICATOR_NAMES = (
    "ema_20",
    "ema_50",
    "rsi_7",
    "rsi_14",
    "macd",
    "macd_signal",
    "macd_histogram",
    "atr_14",
    "return_1_pct",
    "return_20_pct",
    "volume",
    "volume_avg_20",
)


def indicator_table(highs, lows, closes, volumes) -> dict[str, np.ndarray]:
    """Every snapshot indicator over a whole series, aligned bar by bar."""
    line, signal_line, histogram = macd(closes)
    volume = _as_array(volumes)
    return {
        "ema_20": ema(closes, 20),
        "ema_50": ema(closes, 50),
        "rsi_7": rsi(closes, 7),
        "rsi_14": rsi(closes, 14),
        "macd": line,
        "macd_signal": signal_line,
        "macd_histogram": histogram,
        "atr_14": atr(highs, lows, closes, 14),
        "return_1_pct": pct_change(closes, 1),
        "return_20_pct": pct_change(closes, 20),
        "volume": volume,
        "volume_avg_20": rolling_mean(volume, 20),
    }
