"""Ranking metrics for stock-ranking models, as alphalens defines them.

A panel is dates x assets (a 2-D array or DataFrame, NaN where an asset has no value that day),
or a long DataFrame with columns ``date``, ``asset``, ``factor`` and ``forward_return``. Every
statistic is cross-sectional: computed within each date, never pooled over dates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _panel(data: Any, column: str) -> tuple[np.ndarray, Any]:
    """(dates x assets float array, date labels or None)."""
    if hasattr(data, "columns") and {"date", "asset", column} <= set(data.columns):
        wide = data.pivot_table(index="date", columns="asset", values=column, dropna=False)
        return wide.to_numpy(dtype=np.float64), wide.index
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"a panel must be 2-D (dates x assets), got {arr.ndim}-D")
    return arr, getattr(data, "index", None)


def _per_date(values: np.ndarray, dates: Any, name: str | None = None) -> Any:
    if dates is None:
        return values
    import pandas as pd

    return pd.Series(values, index=dates, name=name)


def rank_rows(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n) within each row, ties sharing their mean rank, NaN kept as NaN
    (what pandas' ``rank(axis=1)`` and scipy's ``rankdata`` give)."""
    n_cols = x.shape[1]
    order = np.argsort(x, axis=1, kind="stable")  # NaN sort last
    s = np.take_along_axis(x, order, axis=1)
    starts = np.ones_like(s, dtype=bool)
    starts[:, 1:] = s[:, 1:] != s[:, :-1]  # NaN != NaN: each NaN its own group
    ends = np.ones_like(starts)
    ends[:, :-1] = starts[:, 1:]
    pos = np.broadcast_to(np.arange(n_cols), s.shape)
    first = np.maximum.accumulate(np.where(starts, pos, 0), axis=1)
    last = np.minimum.accumulate(np.where(ends, pos, n_cols - 1)[:, ::-1], axis=1)[:, ::-1]
    ranks = np.empty_like(s)
    np.put_along_axis(ranks, order, (first + last) / 2.0 + 1.0, axis=1)
    ranks[np.isnan(x)] = np.nan
    return ranks


def _row_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation within each row over the pairs where both are present."""
    both = ~(np.isnan(a) | np.isnan(b))
    n = both.sum(axis=1)
    a0, b0 = np.where(both, a, 0.0), np.where(both, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        am = a0.sum(axis=1) / n
        bm = b0.sum(axis=1) / n
        da = np.where(both, a - am[:, None], 0.0)
        db = np.where(both, b - bm[:, None], 0.0)
        corr = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    return np.where(n >= 2, corr, np.nan)


def information_coefficient(
    factor: Any, forward_returns: Any = None, method: str = "spearman"
) -> Any:
    """The IC of each date: the correlation across assets between the factor (prediction) and
    the forward returns, over the assets that have both. ``spearman`` (RankIC, alphalens'
    default) correlates average ranks; ``pearson`` the values. NaN for a date with fewer than
    two assets or no dispersion. A long DataFrame (date, asset, factor, forward_return) may be
    passed alone."""
    if forward_returns is None:
        f, dates = _panel(factor, "factor")
        r, _ = _panel(factor, "forward_return")
    else:
        f, dates = _panel(factor, "factor")
        r, _ = _panel(forward_returns, "forward_return")
    if f.shape != r.shape:
        raise ValueError(f"factor {f.shape} and forward returns {r.shape} differ in shape")
    if method == "spearman":
        both = ~(np.isnan(f) | np.isnan(r))
        f = rank_rows(np.where(both, f, np.nan))
        r = rank_rows(np.where(both, r, np.nan))
    elif method != "pearson":
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    return _per_date(_row_corr(f, r), dates, "ic")


def ic_summary(ic: Any) -> dict[str, float]:
    """mean, std (ddof=1), ir = mean/std, t_stat = mean / (std/sqrt(n)) and hit_rate (share of
    dates with IC > 0), over the dates with an IC; as alphalens' IC summary table."""
    values = np.asarray(ic, dtype=np.float64)
    values = values[~np.isnan(values)]
    n = len(values)
    mean = float(values.mean()) if n else math.nan
    std = float(values.std(ddof=1)) if n > 1 else math.nan
    ir = mean / std if std and not math.isnan(std) else math.nan
    return {
        "mean": mean,
        "std": std,
        "ir": ir,
        "t_stat": ir * math.sqrt(n) if not math.isnan(ir) else math.nan,
        "hit_rate": float((values > 0).mean()) if n else math.nan,
        "n": float(n),
    }


def quantile_turnover(quantiles: Any, quantile: int, period: int = 1) -> Any:
    """The share of the assets in ``quantile`` on a date that were not in it ``period`` dates
    before (alphalens' quantile_turnover); NaN for the first ``period`` dates and for dates
    where the quantile is empty. ``quantiles`` is a dates x assets panel of quantile labels."""
    q, dates = _panel(quantiles, "factor_quantile")
    member = q == quantile
    out = np.full(len(q), np.nan)
    if len(q) > period:
        new = member[period:] & ~member[:-period]
        size = member[period:].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[period:] = np.where(size > 0, new.sum(axis=1) / size, np.nan)
    return _per_date(out, dates, str(quantile))


def factor_rank_autocorrelation(factor: Any, period: int = 1) -> Any:
    """The correlation, across assets, of each date's factor ranks with the ranks ``period``
    dates before (alphalens' factor_rank_autocorrelation); low values mean high turnover."""
    f, dates = _panel(factor, "factor")
    ranks = rank_rows(f)
    out = np.full(len(f), np.nan)
    if len(f) > period:
        out[period:] = _row_corr(ranks[period:], ranks[:-period])
    return _per_date(out, dates, str(period))


def prediction_scale(y_hat: Any, y: Any) -> float:
    """std(y_hat) / std(y) over the pairs where both are present, ddof=1: falls to 0 when
    predictions collapse to a constant (the "SCALE(yhat/y)" of a collapsed ranking model)."""
    a, b = np.asarray(y_hat, dtype=np.float64), np.asarray(y, dtype=np.float64)
    both = ~(np.isnan(a) | np.isnan(b))
    if both.sum() < 2:
        return math.nan
    sd = float(b[both].std(ddof=1))
    return float(a[both].std(ddof=1)) / sd if sd > 0 else math.nan
