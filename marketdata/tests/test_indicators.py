"""Indicator values against published reference tables."""

import math

import numpy as np
import pytest

from marketdata.indicators import atr, ema, indicator_table, macd, rsi

# StockCharts ChartSchool, "Moving Averages - Simple and Exponential", worked example
# spreadsheet cs-movavg.xls: 30 closes and their 10-day EMA (seeded with the 10-day SMA).
STOCKCHARTS_CLOSES = [
    22.2734, 22.194, 22.0847, 22.1741, 22.184, 22.1344, 22.2337, 22.4323, 22.2436, 22.2933,
    22.1542, 22.3926, 22.3816, 22.6109, 23.3558, 24.0519, 23.753, 23.8324, 23.9516, 23.6338,
    23.8225, 23.8722, 23.6537, 23.187, 23.0976, 23.326, 22.6805, 23.0976, 22.4025, 22.1725,
]  # fmt: skip
STOCKCHARTS_EMA_10 = [
    22.22475, 22.21192273, 22.24477314, 22.26965075, 22.33169607, 22.51789678, 22.79680646,
    22.97065983, 23.12733986, 23.27720534, 23.34204073, 23.42939696, 23.50990661, 23.53605086,
    23.47258707, 23.4044076, 23.39015167, 23.2611241, 23.23139244, 23.08068473, 22.91556023,
]  # fmt: skip

# Wilder's RSI worked example as reproduced by StockCharts ChartSchool (cs-rsi.xls).
WILDER_CLOSES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61,
    46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64,
]  # fmt: skip

# StockCharts ChartSchool, "Average True Range (ATR)", spreadsheet cs-atr.xls
# (April-May 2010): high, low, close and the published 14-day ATR from the 14th bar on.
ATR_HIGH = [
    48.70, 48.72, 48.90, 48.87, 48.82, 49.05, 49.20, 49.35, 49.92, 50.19, 50.12, 49.66, 49.88,
    50.19, 50.36, 50.57, 50.65, 50.43, 49.63, 50.33, 50.29, 50.17, 49.32, 48.50, 48.3201, 46.80,
    47.80, 48.39, 48.66, 48.79,
]  # fmt: skip
ATR_LOW = [
    47.79, 48.14, 48.39, 48.37, 48.24, 48.635, 48.94, 48.86, 49.50, 49.87, 49.20, 48.90, 49.43,
    49.725, 49.26, 50.09, 50.30, 49.21, 48.98, 49.61, 49.20, 49.43, 48.08, 47.64, 41.55, 44.2833,
    47.31, 47.20, 47.90, 47.7301,
]  # fmt: skip
ATR_CLOSE = [
    48.16, 48.61, 48.75, 48.63, 48.74, 49.03, 49.07, 49.32, 49.91, 50.13, 49.53, 49.50, 49.75,
    50.03, 50.31, 50.52, 50.41, 49.34, 49.37, 50.23, 49.2375, 49.93, 48.43, 48.18, 46.57, 45.41,
    47.77, 47.72, 48.62, 47.85,
]  # fmt: skip
ATR_14_PUBLISHED = [
    0.555000, 0.593929, 0.585791, 0.568949, 0.615452, 0.617920, 0.642354, 0.674329, 0.692770,
    0.775429, 0.781470, 1.209229, 1.302620, 1.380290, 1.366698, 1.336219, 1.316482,
]  # fmt: skip


def test_ema_matches_the_stockcharts_10_day_table():
    values = ema(STOCKCHARTS_CLOSES, 10)
    assert np.isnan(values[:9]).all()
    assert values[9:] == pytest.approx(STOCKCHARTS_EMA_10, abs=1e-7)


def test_ema_is_seeded_with_the_simple_average():
    # SMA(1, 2, 3) = 2; then k = 0.5: 4 * 0.5 + 2 * 0.5 = 3; 5 * 0.5 + 3 * 0.5 = 4.
    assert list(ema([1, 2, 3, 4, 5], 3)[2:]) == [2.0, 3.0, 4.0]


def test_rsi_matches_wilders_worked_example():
    values = rsi(WILDER_CLOSES, 14)
    assert np.isnan(values[:14]).all()
    # By hand from the 14 changes: gains sum 3.34, losses sum 1.40 -> RS 2.3857 -> 70.4641.
    # StockCharts prints 70.53 because its sheet rounds the averages to two places.
    assert values[14] == pytest.approx(70.4641, abs=1e-4)
    assert values[14] == pytest.approx(70.53, abs=0.1)
    # Published 66.32, 66.55, 69.41, 66.36, 57.97 (same rounding); Wilder smoothing follows them.
    assert values[15:20] == pytest.approx([66.32, 66.55, 69.41, 66.36, 57.97], abs=0.15)


def test_rsi_is_100_without_losses_and_0_without_gains():
    assert rsi(list(range(1, 30)), 14)[-1] == 100.0
    assert rsi(list(range(30, 1, -1)), 7)[-1] == 0.0


def test_atr_matches_the_stockcharts_table():
    values = atr(ATR_HIGH, ATR_LOW, ATR_CLOSE, 14)
    assert np.isnan(values[:13]).all()
    assert values[13:] == pytest.approx(ATR_14_PUBLISHED, abs=5e-6)


def test_macd_is_the_gap_between_ema12_and_ema26_and_its_signal_starts_after_34_bars():
    closes = [100 + math.sin(i / 4) * 5 + i * 0.2 for i in range(80)]
    line, signal, histogram = macd(closes)
    assert np.isnan(line[24]) and not np.isnan(line[25])
    assert line[60] == pytest.approx(ema(closes, 12)[60] - ema(closes, 26)[60])
    # Signal = 9-bar EMA of the line, first defined 9 bars after the line (index 25 + 8).
    assert np.isnan(signal[32]) and not np.isnan(signal[33])
    assert signal[33] == pytest.approx(np.mean(line[25:34]))
    assert histogram[70] == pytest.approx(line[70] - signal[70])


def test_indicator_table_reads_returns_and_volume_averages():
    closes = [100.0] * 20 + [110.0]
    table = indicator_table(closes, closes, closes, [1.0] * 20 + [21.0])
    assert table["return_1_pct"][-1] == pytest.approx(10.0)
    assert table["return_20_pct"][-1] == pytest.approx(10.0)
    # mean of nineteen 1s and one 21 = 40 / 20
    assert table["volume_avg_20"][-1] == pytest.approx(2.0)
