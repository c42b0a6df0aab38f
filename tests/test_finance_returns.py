"""runlab.finance return metrics against empyrical itself (empyrical-reloaded) and against
properties that must hold whatever the reference says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import runlab.finance as rf

ep = pytest.importorskip("empyrical")

SCALAR_FUNCS = [
    ("sharpe_ratio", {}),
    ("sharpe_ratio", {"risk_free": 0.0001}),
    ("sharpe_ratio", {"period": "monthly"}),
    ("sortino_ratio", {}),
    ("sortino_ratio", {"required_return": 0.0002}),
    ("downside_risk", {}),
    ("max_drawdown", {}),
    ("annual_return", {}),
    ("annual_return", {"annualization": 365}),
    ("cagr", {}),
    ("annual_volatility", {}),
    ("annual_volatility", {"period": "weekly"}),
    ("calmar_ratio", {}),
    ("omega_ratio", {}),
    ("omega_ratio", {"risk_free": 0.0001, "required_return": 0.05}),
    ("tail_ratio", {}),
    ("value_at_risk", {}),
    ("value_at_risk", {"cutoff": 0.01}),
    ("conditional_value_at_risk", {}),
    ("stability_of_timeseries", {}),
    ("cum_returns_final", {}),
    ("cum_returns_final", {"starting_value": 100}),
]


def returns(t: int = 750, n: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0004, 0.012, (t, n)) + rng.standard_t(3, (t, n)) * 0.002


@pytest.mark.parametrize(("name", "kwargs"), SCALAR_FUNCS)
def test_one_strategy_matches_empyrical(name: str, kwargs: dict) -> None:
    r = returns()[:, 0]
    assert getattr(rf, name)(r, **kwargs) == pytest.approx(
        getattr(ep, name)(r, **kwargs), rel=1e-10, abs=1e-14
    )
    series = pd.Series(r, index=pd.bdate_range("2020-01-01", periods=len(r)))
    assert getattr(rf, name)(series, **kwargs) == pytest.approx(
        getattr(ep, name)(series, **kwargs), rel=1e-10, abs=1e-14
    )


@pytest.mark.parametrize(("name", "kwargs"), SCALAR_FUNCS)
def test_many_strategies_match_empyrical_per_column(name: str, kwargs: dict) -> None:
    r = returns()
    r[[5, 40, 41], 2] = np.nan  # missing periods in one strategy
    ours = getattr(rf, name)(r, **kwargs)
    assert isinstance(ours, np.ndarray) and ours.shape == (r.shape[1],)
    theirs = [getattr(ep, name)(r[:, j], **kwargs) for j in range(r.shape[1])]
    if name == "value_at_risk":  # empyrical: any NaN gives NaN; runlab skips NaN (documented)
        theirs[2] = ep.value_at_risk(r[:, 2][~np.isnan(r[:, 2])], **kwargs)
    assert ours == pytest.approx(np.array(theirs), rel=1e-10, abs=1e-14)
    frame = pd.DataFrame(r, columns=[f"s{j}" for j in range(r.shape[1])])
    as_series = getattr(rf, name)(frame, **kwargs)
    assert list(as_series.index) == list(frame.columns)
    assert as_series.to_numpy() == pytest.approx(ours, rel=1e-12)


def test_cum_returns_and_drawdown_series_keep_their_shape() -> None:
    r = returns(100, 3)
    r[10, 0] = np.nan
    assert rf.cum_returns(r) == pytest.approx(ep.cum_returns(r), rel=1e-12)
    assert rf.cum_returns(r, starting_value=1000) == pytest.approx(
        ep.cum_returns(r, starting_value=1000), rel=1e-12
    )
    series = pd.Series(r[:, 1], index=pd.bdate_range("2021-01-01", periods=100))
    out = rf.cum_returns(series)
    assert isinstance(out, pd.Series) and (out.index == series.index).all()
    assert rf.drawdown_series(series).to_numpy() == pytest.approx(
        ep.stats.drawdown_series(series).to_numpy(), rel=1e-12
    )


def test_risk_free_series_aligned_by_date() -> None:
    idx = pd.bdate_range("2020-01-01", periods=300)
    r = pd.Series(returns(300, 1)[:, 0], index=idx)
    rate = pd.Series(np.linspace(0, 0.0003, 300), index=idx)
    expected = ep.sharpe_ratio(r, risk_free=rate)
    assert rf.sharpe_ratio(r, risk_free=rate) == pytest.approx(expected, rel=1e-10)
    shuffled = rate.sample(frac=1.0, random_state=0)  # another order, same dates
    assert rf.sharpe_ratio(r, risk_free=shuffled) == pytest.approx(expected, rel=1e-10)
    two = pd.DataFrame({"a": r, "b": r * 2})
    assert rf.sharpe_ratio(two, risk_free=rate)["a"] == pytest.approx(expected, rel=1e-10)


def test_prices_to_returns() -> None:
    prices = np.array([[100.0, 10.0], [110.0, 9.0], [99.0, 9.9]])
    assert rf.simple_returns(prices) == pytest.approx(ep.simple_returns(prices))
    assert rf.log_returns(prices) == pytest.approx(np.log(prices[1:] / prices[:-1]))
    frame = pd.DataFrame(prices, index=pd.bdate_range("2020-01-01", periods=3))
    assert rf.simple_returns(frame).index[0] == frame.index[1]


def test_edge_cases_follow_empyrical() -> None:
    empty, one = np.array([]), np.array([0.01])
    for name in (
        "sharpe_ratio",
        "sortino_ratio",
        "annual_volatility",
        "omega_ratio",
        "stability_of_timeseries",
    ):
        assert np.isnan(getattr(rf, name)(one)), name
    for name in ("max_drawdown", "annual_return", "downside_risk", "tail_ratio"):
        assert np.isnan(getattr(rf, name)(empty)), name
    constant = np.full(50, 0.001)
    assert rf.sharpe_ratio(constant) == ep.sharpe_ratio(constant) == np.inf  # zero dispersion
    assert np.isnan(rf.sharpe_ratio(np.zeros(50)))  # 0/0
    assert np.isnan(rf.calmar_ratio(constant))  # no drawdown
    assert np.isnan(rf.omega_ratio(np.full(10, 0.01)))  # nothing below the threshold


def test_rate_conversion_both_ways() -> None:
    daily = rf.annual_to_periodic(0.0675, 252)
    assert (1 + daily) ** 252 - 1 == pytest.approx(0.0675)
    assert rf.periodic_to_annual(daily, 252) == pytest.approx(0.0675)
    assert rf.annual_to_periodic(0.0675, 252, compound=False) == pytest.approx(0.0675 / 252)
    assert rf.periodic_to_annual(0.0675 / 252, 252, compound=False) == pytest.approx(0.0675)


# ---------------------------------------------------------------------------- properties
def test_sharpe_is_unchanged_by_positive_scaling() -> None:
    r = returns()
    assert rf.sharpe_ratio(r * 3.7) == pytest.approx(rf.sharpe_ratio(r), rel=1e-12)
    assert rf.sortino_ratio(r * 3.7) == pytest.approx(rf.sortino_ratio(r), rel=1e-12)


def test_rising_equity_has_zero_drawdown() -> None:
    r = np.abs(returns()) + 1e-6
    assert (rf.max_drawdown(r) == 0).all()
    assert (rf.drawdown_series(r) == 0).all()


def test_drawdown_is_measured_from_the_start() -> None:
    assert rf.max_drawdown(np.array([-0.1, 0.05])) == pytest.approx(-0.1)
    assert rf.max_drawdown(np.array([0.5, -0.5, 0.1])) == pytest.approx(-0.5)


def test_var_and_cvar_order() -> None:
    r = returns()
    assert (rf.conditional_value_at_risk(r) <= rf.value_at_risk(r)).all()
    assert (rf.value_at_risk(r, 0.01) <= rf.value_at_risk(r, 0.05)).all()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # empyrical's own 0/0 on ties
@settings(max_examples=60, deadline=None)
@given(
    t=st.integers(1, 300),
    n=st.integers(1, 200),
    seed=st.integers(0, 2**16),
    tie=st.booleans(),
)
def test_tail_metrics_without_nan_match_empyrical_per_column(
    t: int, n: int, seed: int, tie: bool
) -> None:
    """The NaN-free path partially sorts a transposed copy made in 128 x 128 tiles: lengths and
    widths around a tile's edge, one row, repeated values, each column against empyrical on
    that column."""
    r = returns(t, n, seed)
    if tie:
        r = np.round(r, 2)  # many equal values: the neighbour of a partial sort is a tie
    for name in ("tail_ratio", "value_at_risk", "conditional_value_at_risk"):
        ours = np.atleast_1d(getattr(rf, name)(r))
        theirs = np.array([getattr(ep, name)(r[:, j]) for j in range(n)])
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14, err_msg=name)
