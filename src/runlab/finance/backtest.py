"""A vectorized backtest of target weights (or scores turned into weights) with transaction
costs, a leverage limit and borrowing costs.

Timing: ``weights[t]`` are the targets decided at date t and held over the next period, which
earns ``asset_returns[t]`` (the simple return from t to t+1: pass *next-period* returns). A
missing return (NaN) counts as 0 for that asset and period; a missing weight is 0 (cash).

Per date t, as fractions of the portfolio value:

* ``gross_leverage[t] = sum |w[t]|``; above ``leverage_limit`` every weight is scaled down by
  ``leverage_limit / gross`` (and ``scaled_periods`` counts how often).
* ``drifted[t]`` = the weights held at t+1 before trading: ``w[t] * (1 + r[t]) / (1 + w[t]·r[t])``
  (cash earns nothing; a short's liability grows when its asset rises).
* ``turnover[t] = sum |w[t] - drifted[t-1]|`` (the traded notional; the first date trades from
  all cash).
* ``transaction_cost[t] = turnover[t] * transaction_cost_bps / 10,000``.
* ``borrowed[t] = max(sum of long weights - 1, 0) + sum of |short weights|``;
  ``borrow_cost[t] = borrowed[t] * borrowing_cost / periods_per_year`` (an annual rate, simple
  accrual per period).
* ``gross_return[t] = w[t]·r[t]``; ``net_return[t] = gross_return[t] - transaction_cost[t] -
  borrow_cost[t]``; ``equity[t] = initial_value * prod(1 + net_return[..t])`` (the value at the
  end of period t).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runlab.finance import returns as fr


def scores_to_weights(
    scores: Any,
    method: str = "long_short",
    quantile: float = 0.2,
    top_k: int | None = None,
    weighting: str = "equal",
    gross: float = 1.0,
) -> np.ndarray:
    """Weights from scores (dates x assets, NaN = not tradable that date).

    * ``long_short``: long the top ``quantile`` of each date's assets, short the bottom one,
      each leg ``gross/2`` (dollar neutral, gross exposure ``gross``).
    * ``long_only``: long the top ``top_k`` assets (or the top ``quantile``), summing to
      ``gross``.

    ``weighting="equal"`` splits a leg equally; ``"score"`` in proportion to the distance of
    each score from the date's median (so the strongest signals weigh most).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D (dates x assets), got {s.ndim}-D")
    if method not in ("long_short", "long_only"):
        raise ValueError(f"method must be 'long_short' or 'long_only', got {method!r}")
    if weighting not in ("equal", "score"):
        raise ValueError(f"weighting must be 'equal' or 'score', got {weighting!r}")
    from runlab.finance.ranking import rank_rows

    valid = ~np.isnan(s)
    n = valid.sum(axis=1, keepdims=True)
    ranks = rank_rows(s)  # 1..n per date, NaN where missing
    if top_k is not None and method == "long_only":
        k = np.minimum(n, top_k)
    else:
        k = np.floor(n * quantile)
    k = np.maximum(k, np.where(n >= 2, 1, 0))  # at least one asset a leg when possible
    long = valid & (ranks > n - k)
    short = valid & (ranks <= k) & (method == "long_short")
    strength = (
        np.abs(s - np.nanmedian(np.where(valid, s, np.nan), axis=1, keepdims=True))
        if weighting == "score"
        else np.ones_like(s)
    )
    strength = np.where(np.isnan(strength), 0.0, strength) + 1e-12
    leg = gross / 2 if method == "long_short" else gross
    return np.asarray(_leg(long, strength, leg) - _leg(short, strength, leg))


def _leg(mask: np.ndarray, strength: np.ndarray, total: float) -> np.ndarray:
    w = np.where(mask, strength, 0.0)
    sums = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(sums > 0, w / sums * total, 0.0))


@dataclass
class BacktestResult:
    """Everything per date (arrays of length T) plus the applied weights (T x assets)."""

    equity: np.ndarray
    net_returns: np.ndarray
    gross_returns: np.ndarray
    turnover: np.ndarray
    gross_leverage: np.ndarray
    transaction_costs: np.ndarray
    borrow_costs: np.ndarray
    weights: np.ndarray
    scaled_periods: int
    initial_value: float
    periods_per_year: int
    dates: Any = None
    assets: Any = None
    settings: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        """Summary with runlab.finance's return metrics, annualised with periods_per_year."""
        r, ppy = self.net_returns, self.periods_per_year
        days = len(r)
        final = float(self.equity[-1]) if days else self.initial_value
        return {
            "final_value": final,
            "cumulative_return": final / self.initial_value - 1,
            "avg_daily_return": _mean(r),
            "annual_return": _f(fr.annual_return(r, annualization=ppy)),
            "sharpe": _f(fr.sharpe_ratio(r, annualization=ppy)),
            "sortino": _f(fr.sortino_ratio(r, annualization=ppy)),
            "max_drawdown": _f(fr.max_drawdown(r)),
            "calmar": _f(fr.calmar_ratio(r, annualization=ppy)),
            "avg_turnover": _mean(self.turnover),
            "avg_gross_leverage": _mean(self.gross_leverage),
            "hit_rate": float((r > 0).mean()) if days else math.nan,
            "total_costs": float(self.transaction_costs.sum() + self.borrow_costs.sum()),
            "scaled_periods": float(self.scaled_periods),
            "days": float(days),
        }

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            {
                "equity": self.equity,
                "net_return": self.net_returns,
                "gross_return": self.gross_returns,
                "turnover": self.turnover,
                "gross_leverage": self.gross_leverage,
                "transaction_cost": self.transaction_costs,
                "borrow_cost": self.borrow_costs,
                "drawdown": fr.drawdown_series(self.net_returns),
            },
            index=pd.Index(self._dates(), name="date"),
        )

    def _dates(self) -> list[Any]:
        return list(self.dates) if self.dates is not None else list(range(len(self.equity)))

    def write(self, folder: str | os.PathLike[str], figures: bool = True) -> Path:
        """metrics.json, equity.csv (per date), decisions.csv (date, asset, weight) and, with
        matplotlib, equity.png (equity over drawdown) and rolling_sharpe.png."""
        from runlab._io import atomic_write_json

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "metrics.json", {**self.metrics(), "settings": self.settings})
        self.to_frame().to_csv(out / "equity.csv")
        self._write_decisions(out / "decisions.csv")
        if figures:
            self.plot(out)
        return out

    def _write_decisions(self, path: Path) -> None:
        dates = self._dates()
        assets = (
            list(self.assets) if self.assets is not None else list(range(self.weights.shape[1]))
        )
        t_idx, a_idx = np.nonzero(self.weights)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("date,asset,weight\n")
            fh.writelines(
                f"{dates[t]},{assets[a]},{float(self.weights[t, a])!r}\n"
                for t, a in zip(t_idx, a_idx, strict=True)
            )

    def plot(self, folder: Path, window: int = 63) -> None:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        x = np.arange(len(self.equity))
        fig, (top, bottom) = plt.subplots(
            2, 1, figsize=(8, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
        )
        top.plot(x, self.equity)
        top.set_ylabel("equity")
        dd = np.asarray(fr.drawdown_series(self.net_returns))
        bottom.fill_between(x, dd, 0, color="tab:red", alpha=0.5)
        bottom.set_ylabel("drawdown")
        bottom.set_xlabel("period")
        fig.tight_layout()
        fig.savefig(folder / "equity.png", dpi=100)
        plt.close(fig)
        fig, ax = plt.subplots(figsize=(8, 3))
        ax.plot(x, rolling_sharpe(self.net_returns, window, self.periods_per_year))
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_ylabel(f"rolling Sharpe ({window})")
        fig.tight_layout()
        fig.savefig(folder / "rolling_sharpe.png", dpi=100)
        plt.close(fig)


def rolling_sharpe(r: np.ndarray, window: int, periods_per_year: int = 252) -> np.ndarray:
    """Annualised Sharpe over a trailing window (NaN until the window is full)."""
    out = np.full(len(r), np.nan)
    if len(r) >= window >= 2:
        views = np.lib.stride_tricks.sliding_window_view(r, window)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[window - 1 :] = views.mean(1) / views.std(1, ddof=1) * np.sqrt(periods_per_year)
    return out


def _f(value: Any) -> float:
    return float(value)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else math.nan


# One period's arithmetic, on the last axis (assets): a row of weights or a dates x assets
# array. backtest() applies them to every date at once; runlab.rl.PortfolioEnv one step at a
# time, so an environment's rewards and a backtest of the same weights cannot disagree.
def limit_leverage(w: np.ndarray, limit: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Weights scaled down to gross exposure ``limit`` where above it, and where that was."""
    gross = np.abs(w).sum(axis=-1)
    if limit is None:
        return w, np.zeros(gross.shape, dtype=bool)
    over = gross > limit
    factor = np.where(over, limit / np.where(over, gross, 1.0), 1.0)
    return np.where(over[..., None], w * factor[..., None], w), over


def period_return(w: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The portfolio's simple return over the period: ``w · r``."""
    out: np.ndarray = (w * r).sum(axis=-1)
    return out


def drift(w: np.ndarray, r: np.ndarray, gross_return: np.ndarray) -> np.ndarray:
    """The weights held at the period's end, before trading: ``w (1 + r) / (1 + w·r)``; a
    wiped-out portfolio holds nothing."""
    with np.errstate(invalid="ignore", divide="ignore"):
        drifted = w * (1 + r) / (1 + gross_return)[..., None]
    out: np.ndarray = np.where(np.isfinite(drifted), drifted, 0.0)
    return out


def traded(w: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Turnover: ``sum |w - drifted previous|``."""
    out: np.ndarray = np.abs(w - previous).sum(axis=-1)
    return out


def costs(
    turnover: np.ndarray,
    w: np.ndarray,
    transaction_cost_bps: float,
    borrowing_cost: float,
    periods_per_year: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The period's transaction cost and borrowing cost, as fractions of the value."""
    longs = np.where(w > 0, w, 0.0).sum(axis=-1)
    shorts = np.where(w < 0, -w, 0.0).sum(axis=-1)
    borrowed = np.maximum(longs - 1.0, 0.0) + shorts
    return turnover * transaction_cost_bps / 1e4, borrowed * borrowing_cost / periods_per_year


def backtest(
    weights_or_scores: Any,
    asset_returns: Any,
    *,
    scores: bool = False,
    method: str = "long_short",
    quantile: float = 0.2,
    top_k: int | None = None,
    weighting: str = "equal",
    gross: float = 1.0,
    transaction_cost_bps: float = 0.0,
    leverage_limit: float | None = None,
    borrowing_cost: float = 0.0,
    initial_value: float = 1.0,
    periods_per_year: int = 252,
) -> BacktestResult:
    """Simulate holding ``weights`` (or weights built from ``scores=True`` input, see
    :func:`scores_to_weights`) against next-period ``asset_returns`` (dates x assets). The
    definitions of every series are in the module docstring and docs/finance.md."""
    dates = getattr(asset_returns, "index", None)
    assets = getattr(asset_returns, "columns", None)
    r = np.asarray(asset_returns, dtype=np.float64)
    if scores:
        w = scores_to_weights(weights_or_scores, method, quantile, top_k, weighting, gross)
    else:
        w = np.asarray(weights_or_scores, dtype=np.float64)
    if w.shape != r.shape or w.ndim != 2:
        raise ValueError(
            f"weights {w.shape} and asset returns {r.shape} must be the same dates x assets shape"
        )
    w = np.where(np.isnan(w), 0.0, w)
    r = np.where(np.isnan(r), 0.0, r)
    w, over = limit_leverage(w, leverage_limit)
    scaled = int(over.sum())
    gross_lev = np.abs(w).sum(axis=1)
    gross_ret = period_return(w, r)
    drifted = drift(w, r, gross_ret)
    previous = np.vstack([np.zeros((1, w.shape[1])), drifted[:-1]])
    turnover = traded(w, previous)
    t_cost, b_cost = costs(turnover, w, transaction_cost_bps, borrowing_cost, periods_per_year)
    net = gross_ret - t_cost - b_cost
    equity = initial_value * np.cumprod(1 + net)
    settings = {
        "transaction_cost_bps": transaction_cost_bps,
        "leverage_limit": leverage_limit,
        "borrowing_cost": borrowing_cost,
        "initial_value": initial_value,
        "periods_per_year": periods_per_year,
        "scores": scores,
        **(
            {
                "method": method,
                "quantile": quantile,
                "top_k": top_k,
                "weighting": weighting,
                "gross": gross,
            }
            if scores
            else {}
        ),
    }
    return BacktestResult(
        equity,
        net,
        gross_ret,
        turnover,
        gross_lev,
        t_cost,
        b_cost,
        w,
        scaled,
        initial_value,
        periods_per_year,
        dates,
        assets,
        settings,
    )
