"""The whole set of return metrics at once, as pyfolio's ``perf_stats`` gives them: each value is
what the metric's own function returns with its default arguments, and the work they share is
done once (one wealth path for the drawdown, the final value and the stability; one mean and
deviation; one sorted tail for the 5th and 95th percentiles and the expected shortfall)."""

from __future__ import annotations

from typing import Any

import numpy as np

from runlab.finance import returns as fr

METRICS = (
    "annual_return",
    "cum_returns_final",
    "annual_volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "downside_risk",
    "max_drawdown",
    "calmar_ratio",
    "omega_ratio",
    "stability_of_timeseries",
    "tail_ratio",
    "value_at_risk",
    "conditional_value_at_risk",
)


def perf_stats(
    returns: Any, period: str = "daily", annualization: float | None = None, cutoff: float = 0.05
) -> dict[str, Any]:
    """Every return metric of :mod:`runlab.finance.returns` that gives one value per strategy,
    keyed by its function's name (risk-free rate and required return 0; ``cutoff`` for the
    value at risk and expected shortfall). Each value is shaped as that function returns it: a
    float for one strategy, an ndarray per column, a Series for a DataFrame
    (``pd.DataFrame(perf_stats(frame))`` is a strategies x metrics table)."""
    factor = fr.annualization_factor(period, annualization)
    r = fr._Returns(returns)
    if r.has_nan or len(r) < 2:  # NaN skipping differs per metric: each its own way
        return _one_by_one(returns, period, annualization, cutoff)
    a, n = r.a, len(r)
    out = {}
    mean = a.mean(axis=0)
    centered = a - mean  # np.std's own steps, the buffer reused for the losses below
    spread = np.sqrt(np.einsum("ij,ij->j", centered, centered) / (n - 1))
    std = fr._zero_dispersion(r, a, spread, mean)
    neg = np.minimum(a, 0.0, out=centered)
    losses = -neg.sum(axis=0)
    down = np.sqrt(np.einsum("ij,ij->j", neg, neg) / n) * np.sqrt(factor)
    wealth, worst = _wealth_and_worst(a)
    growth = wealth[-1]
    annual = growth ** (factor / n) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        calmar = annual / np.abs(worst)
        out["annual_return"] = annual
        out["cum_returns_final"] = growth - 1
        out["annual_volatility"] = std * np.sqrt(factor)
        out["sharpe_ratio"] = mean / std * np.sqrt(factor)
        out["sortino_ratio"] = mean * factor / down
        out["downside_risk"] = down
        out["max_drawdown"] = worst
        out["calmar_ratio"] = np.where((worst < 0) & np.isfinite(calmar), calmar, np.nan)
        gains = a.sum(axis=0) + losses
        out["omega_ratio"] = np.where(losses > 0, gains / losses, np.nan)
        out["stability_of_timeseries"] = fr._r_squared(np.log(wealth, out=wealth))
    out.update(_tails(a, cutoff))
    return {name: r.result(out[name]) for name in METRICS}


def _wealth_and_worst(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The wealth path (the cumulative product of 1 + r, multiplied row by row as
    max_drawdown does) and the maximum drawdown per column: the running peak and the worst
    ratio to it kept as one row each while the rows are walked."""
    wealth = fr._accumulate(a + 1.0, np.multiply)
    width = a.shape[1]
    peak, worst, ratio = np.ones(width), np.ones(width), np.empty(width)  # the start is a peak
    with np.errstate(invalid="ignore", divide="ignore"):
        for row in wealth:
            np.maximum(peak, row, out=peak)
            np.divide(row, peak, out=ratio)
            np.minimum(worst, ratio, out=worst)
    return wealth, np.minimum(worst - 1.0, 0.0)


def _tails(a: np.ndarray, cutoff: float) -> dict[str, np.ndarray]:
    """tail_ratio, value_at_risk and conditional_value_at_risk from one transposed copy,
    partially sorted once at every position they read."""
    n = a.shape[0]
    rows = fr._transposed(a)
    low, five, high = fr._position(n, 100 * cutoff), fr._position(n, 5.0), fr._position(n, 95.0)
    last = int((n - 1) * cutoff)  # the expected shortfall's last value
    placed = fr._partition(rows, [low[0], five[0], high[0], last])
    five_value = fr._value(rows, placed, *five)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.abs(fr._value(rows, placed, *high)) / np.abs(five_value)
    return {
        "tail_ratio": tail,
        "value_at_risk": five_value if low == five else fr._value(rows, placed, *low),
        "conditional_value_at_risk": rows[:, : last + 1].mean(axis=1),
    }


def _one_by_one(
    returns: Any, period: str, annualization: float | None, cutoff: float
) -> dict[str, Any]:
    periodic = {"period": period, "annualization": annualization}
    args: dict[str, dict[str, Any]] = {
        "cum_returns_final": {},
        "max_drawdown": {},
        "stability_of_timeseries": {},
        "tail_ratio": {},
        "omega_ratio": {"annualization": annualization or fr.annualization_factor(period)},
        "value_at_risk": {"cutoff": cutoff},
        "conditional_value_at_risk": {"cutoff": cutoff},
    }
    return {name: getattr(fr, name)(returns, **args.get(name, periodic)) for name in METRICS}
