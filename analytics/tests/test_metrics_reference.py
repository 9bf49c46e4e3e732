"""Agreement with empyrical (empyrical-reloaded, dev dependency) where the conventions match.

empyrical takes per-period returns and an `annualization` count; with annualization = A it
uses the same Sharpe (sample std, ddof=1), Sortino (downside deviation over all returns),
max drawdown (from the running peak, starting value included), CAGR and Calmar as Gauntlet.
"""

import empyrical
import numpy as np
import pytest

import analytics

HOURLY_CRYPTO = analytics.periods_per_year(60, ["crypto"])  # 8760
FOUR_HOURLY_FOREX = analytics.periods_per_year(240, ["forex"])  # 1512


def _equity(returns, capital=10_000.0):
    return (capital * np.concatenate([[1.0], np.cumprod(1.0 + returns)])).tolist()


def _series():
    rng = np.random.default_rng(20261124)
    return [
        rng.normal(0.0002, 0.01, 500),  # a drifting random walk
        rng.normal(-0.0005, 0.02, 200),  # a loser
        rng.standard_t(3, 1000) * 0.005,  # fat tails
        np.array([0.01, -0.02, 0.015, -0.005, 0.03, -0.04, 0.0, 0.02]),
    ]


@pytest.fixture(params=range(4), ids=["drift", "loser", "fat-tails", "short"])
def returns(request):
    return _series()[request.param]


@pytest.mark.parametrize("annualization", [HOURLY_CRYPTO, FOUR_HOURLY_FOREX])
def test_sharpe_matches_empyrical(returns, annualization):
    ours = analytics.sharpe_ratio(returns.tolist(), annualization)
    assert ours == pytest.approx(empyrical.sharpe_ratio(returns, annualization=annualization), rel=1e-9)


def test_sharpe_with_risk_free_matches_empyrical(returns):
    risk_free = 0.0001
    ours = analytics.sharpe_ratio(returns.tolist(), HOURLY_CRYPTO, risk_free_per_period=risk_free)
    reference = empyrical.sharpe_ratio(returns, risk_free=risk_free, annualization=HOURLY_CRYPTO)
    assert ours == pytest.approx(reference, rel=1e-9)


@pytest.mark.parametrize("annualization", [HOURLY_CRYPTO, FOUR_HOURLY_FOREX])
def test_sortino_matches_empyrical(returns, annualization):
    ours = analytics.sortino_ratio(returns.tolist(), annualization)
    assert ours == pytest.approx(empyrical.sortino_ratio(returns, annualization=annualization), rel=1e-9)


def test_returns_from_equity_round_trip_empyrical_returns(returns):
    assert analytics.returns_from_equity(_equity(returns)) == pytest.approx(returns.tolist(), rel=1e-9)


def test_max_drawdown_matches_empyrical(returns):
    ours = analytics.drawdown_stats(_equity(returns)).max_drawdown / 100.0
    assert ours == pytest.approx(empyrical.max_drawdown(returns), rel=1e-9)


def test_total_return_matches_empyrical(returns):
    ours = analytics.total_return_pct(_equity(returns)) / 100.0
    assert ours == pytest.approx(empyrical.cum_returns_final(returns), rel=1e-9)


def test_annualised_return_and_calmar_match_empyrical(returns):
    # a daily-like annualisation keeps CAGR finite for these lengths
    annualization = 365
    equity = _equity(returns)
    ours = analytics.annualised_return_pct(equity, annualization) / 100.0
    assert ours == pytest.approx(empyrical.annual_return(returns, annualization=annualization), rel=1e-9)
    calmar = analytics.calmar_ratio(equity, annualization)
    assert calmar == pytest.approx(empyrical.calmar_ratio(returns, annualization=annualization), rel=1e-9)
