"""The backtest simulator: a case computed by hand, and properties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import runlab.finance as rf
from runlab.finance.backtest import backtest, scores_to_weights


def test_hand_computed_two_assets_three_dates() -> None:
    w = np.array([[0.6, -0.4], [0.6, -0.4], [0.0, 0.0]])
    r = np.array([[0.10, 0.05], [-0.02, 0.00], [0.01, 0.01]])
    res = backtest(w, r, transaction_cost_bps=10, borrowing_cost=0.0504, periods_per_year=252)
    # date 0: from cash, traded |0.6| + |-0.4| = 1.0; gross return 0.06 - 0.02 = 0.04
    assert res.turnover[0] == pytest.approx(1.0)
    assert res.gross_returns[0] == pytest.approx(0.04)
    # drifted: [0.6*1.10, -0.4*1.05] / 1.04 = [0.634615.., -0.403846..]
    drifted = np.array([0.66, -0.42]) / 1.04
    assert res.turnover[1] == pytest.approx(np.abs(w[1] - drifted).sum())
    # borrowed: no long above 1, short 0.4 -> 0.4 * 0.0504 / 252 = 0.00008 a period
    assert res.borrow_costs[0] == pytest.approx(0.4 * 0.0504 / 252)
    assert res.transaction_costs[0] == pytest.approx(1.0 * 10 / 1e4)
    net0 = 0.04 - 0.001 - 0.00008
    assert res.net_returns[0] == pytest.approx(net0)
    assert res.equity[0] == pytest.approx(1.0 + net0)
    # date 2: flat -> sells everything it held, earns nothing
    assert res.gross_returns[2] == 0.0 and res.borrow_costs[2] == 0.0
    assert res.equity[-1] == pytest.approx(np.prod(1 + res.net_returns))


def returns_panel(t: int = 300, a: int = 40, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0005, 0.02, (t, a))


def test_costs_only_lower_returns() -> None:
    r = returns_panel()
    s = r + np.random.default_rng(1).normal(size=r.shape)
    free = backtest(s, r, scores=True)
    costly = backtest(s, r, scores=True, transaction_cost_bps=5, borrowing_cost=0.05)
    assert (costly.net_returns <= free.net_returns + 1e-15).all()
    assert costly.equity[-1] < free.equity[-1]
    assert (costly.gross_returns == free.gross_returns).all()


def test_a_portfolio_that_never_trades_pays_nothing() -> None:
    r = returns_panel()
    cash = backtest(np.zeros_like(r), r, transaction_cost_bps=50, borrowing_cost=0.1)
    assert (cash.turnover == 0).all() and cash.metrics()["total_costs"] == 0.0
    assert (cash.equity == 1.0).all()


def test_buy_and_hold_trades_only_once() -> None:
    r = returns_panel(50, 5)
    w = np.empty_like(r)
    w[0] = 0.2
    for t in range(1, len(r)):  # follow the drift: never rebalance
        w[t] = w[t - 1] * (1 + r[t - 1]) / (1 + (w[t - 1] * r[t - 1]).sum())
    res = backtest(w, r, transaction_cost_bps=10)
    assert res.turnover[0] == pytest.approx(1.0)
    assert res.turnover[1:] == pytest.approx(np.zeros(len(r) - 1), abs=1e-12)


def test_leverage_limit_scales_and_counts() -> None:
    r = returns_panel(10, 4)
    w = np.tile([1.0, 1.0, -0.5, 0.5], (10, 1))  # gross 3
    w[::2] /= 3  # gross 1 on even dates
    res = backtest(w, r, leverage_limit=1.5, borrowing_cost=0.0675)
    assert res.scaled_periods == 5
    assert res.gross_leverage == pytest.approx([1.0, 1.5] * 5)
    # odd dates after scaling: long 1.25 (0.25 above 1), short 0.25 -> 0.5 borrowed
    assert res.borrow_costs[1] == pytest.approx(0.5 * 0.0675 / 252)


def test_scores_to_weights() -> None:
    s = np.random.default_rng(0).normal(size=(5, 20))
    s[0, :3] = np.nan
    w = scores_to_weights(s, quantile=0.2)
    assert w.sum(axis=1) == pytest.approx(np.zeros(5), abs=1e-12)  # dollar neutral
    assert np.abs(w).sum(axis=1) == pytest.approx(np.ones(5))
    assert ((w > 0).sum(axis=1) == [3, 4, 4, 4, 4]).all()  # 20% of 17 valid -> 3
    assert (w[0, :3] == 0).all()
    top = np.argsort(s[1])[-4:]
    assert set(np.flatnonzero(w[1] > 0)) == set(top)
    lo = scores_to_weights(s, method="long_only", top_k=5, weighting="score")
    assert lo.sum(axis=1) == pytest.approx(np.ones(5)) and ((lo > 0).sum(axis=1) == 5).all()
    assert (lo >= 0).all()


def test_metrics_frame_and_files(tmp_path: Path) -> None:
    r = returns_panel()
    res = backtest(
        r + np.random.default_rng(2).normal(size=r.shape), r, scores=True, transaction_cost_bps=1
    )
    m = res.metrics()
    assert m["sharpe"] == pytest.approx(rf.sharpe_ratio(res.net_returns))
    assert m["max_drawdown"] == pytest.approx(rf.max_drawdown(res.net_returns))
    assert m["final_value"] == pytest.approx(res.equity[-1]) and m["days"] == 300
    frame = res.to_frame()
    assert list(frame.columns)[:3] == ["equity", "net_return", "gross_return"]
    out = res.write(tmp_path / "bt")
    assert json.loads((out / "metrics.json").read_text())["settings"]["transaction_cost_bps"] == 1
    assert (out / "decisions.csv").read_text().splitlines()[0] == "date,asset,weight"
    assert (out / "equity.png").stat().st_size > 1000
    assert (out / "rolling_sharpe.png").stat().st_size > 1000


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="same dates x assets shape"):
        backtest(np.zeros((3, 2)), np.zeros((3, 3)))
