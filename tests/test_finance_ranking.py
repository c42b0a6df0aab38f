"""Ranking metrics against pandas and alphalens (alphalens-reloaded), and their properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import runlab.finance as rf
from runlab.finance.ranking import rank_rows


def panel(d: int = 40, a: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=(d, a))
    fwd = 0.2 * factor + rng.normal(size=(d, a))
    factor[rng.random((d, a)) < 0.1] = np.nan
    fwd[rng.random((d, a)) < 0.05] = np.nan
    factor[3, :] = np.round(factor[3, :])  # ties
    return factor, fwd


def test_rank_rows_matches_pandas_average_ranks() -> None:
    factor, _ = panel()
    expected = pd.DataFrame(factor).rank(axis=1).to_numpy()
    assert np.array_equal(np.isnan(rank_rows(factor)), np.isnan(expected))
    assert rank_rows(factor) == pytest.approx(expected, nan_ok=True)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_ic_per_date_matches_pandas(method: str) -> None:
    factor, fwd = panel()
    ic = rf.information_coefficient(factor, fwd, method=method)
    expected = []
    for d in range(len(factor)):
        both = ~(np.isnan(factor[d]) | np.isnan(fwd[d]))
        f, r = pd.Series(factor[d][both]), pd.Series(fwd[d][both])
        expected.append(f.rank().corr(r.rank()) if method == "spearman" else f.corr(r))
    assert ic == pytest.approx(np.array(expected), rel=1e-10)


def test_ic_from_a_long_frame_keeps_dates() -> None:
    factor, fwd = panel(5, 8)
    dates = pd.bdate_range("2024-01-01", periods=5)
    long = pd.DataFrame(
        [
            {
                "date": dates[d],
                "asset": f"A{a}",
                "factor": factor[d, a],
                "forward_return": fwd[d, a],
            }
            for d in range(5)
            for a in range(8)
        ]
    )
    ic = rf.information_coefficient(long)
    assert list(ic.index) == list(dates)
    assert ic.to_numpy() == pytest.approx(rf.information_coefficient(factor, fwd), rel=1e-12)


def test_ic_summary() -> None:
    ic = np.array([0.1, -0.05, 0.2, np.nan, 0.05])
    s = rf.ic_summary(ic)
    v = ic[~np.isnan(ic)]
    assert s["mean"] == pytest.approx(v.mean()) and s["std"] == pytest.approx(v.std(ddof=1))
    assert s["ir"] == pytest.approx(v.mean() / v.std(ddof=1))
    assert s["t_stat"] == pytest.approx(v.mean() / (v.std(ddof=1) / np.sqrt(4)))
    assert s["hit_rate"] == 0.75 and s["n"] == 4


def test_perfect_and_collapsed_predictions() -> None:
    _, fwd = panel()
    assert np.nanmin(rf.information_coefficient(fwd, fwd)) == pytest.approx(1.0)
    assert rf.prediction_scale(np.full_like(fwd, 0.3), fwd) == 0.0
    assert rf.prediction_scale(fwd * 2.5, fwd) == pytest.approx(2.5)


def _long_index(values: np.ndarray, dates: pd.DatetimeIndex) -> pd.Series:
    assets = [f"A{a}" for a in range(values.shape[1])]
    s = pd.DataFrame(values, index=dates, columns=assets).stack(future_stack=True)
    s.index.names = ["date", "asset"]
    return s.dropna()


def test_turnover_and_rank_autocorrelation_match_alphalens() -> None:
    perf = pytest.importorskip("alphalens.performance")
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-01", periods=30)
    factor = np.cumsum(rng.normal(size=(30, 25)), axis=0)  # persistent: low turnover
    factor[rng.random((30, 25)) < 0.05] = np.nan
    quantiles = np.where(
        np.isnan(factor),
        np.nan,
        pd.DataFrame(factor).rank(axis=1, pct=True).to_numpy() // 0.2001 + 1,
    )
    q_long = _long_index(quantiles, dates).rename("factor_quantile")
    for period in (1, 3):
        theirs = perf.quantile_turnover(q_long, 5, period=period)
        ours = rf.quantile_turnover(pd.DataFrame(quantiles, index=dates), 5, period=period)
        joined = pd.concat([ours.rename("ours"), theirs.rename("theirs")], axis=1).dropna()
        assert len(joined) >= 30 - period - 1
        assert joined["ours"].to_numpy() == pytest.approx(joined["theirs"].to_numpy())
    f_long = _long_index(factor, dates).rename("factor").to_frame()
    theirs = perf.factor_rank_autocorrelation(f_long, period=2)
    ours = rf.factor_rank_autocorrelation(pd.DataFrame(factor, index=dates), period=2)
    assert ours.iloc[2:].to_numpy() == pytest.approx(theirs.iloc[2:].to_numpy(), rel=1e-10)
    assert np.isnan(ours.iloc[:2]).all()
