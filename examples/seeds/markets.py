"""Synthetic markets for the worked seed examples: long panels (one row per date and asset)
as a data function returns them (``data.source: examples.seeds.markets:multi_horizon``).

Prices follow a one-factor model whose expected return comes partly from two features
(momentum and a slow "value" signal), so the forward returns at 1, 5 and 20 periods are
predictable but noisy. The features use only the past; the targets are the future.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def multi_horizon(
    n_dates: int = 320, n_assets: int = 30, horizons: tuple[int, ...] = (1, 5, 20), seed: int = 0
) -> pd.DataFrame:
    """Columns: date, asset, features mom_5, mom_20, vol_20, value, and a target ret_h<N>
    (the simple return from date t to t+N) per horizon. Rows whose features or targets are
    not yet (or no longer) defined are dropped."""
    rng = np.random.default_rng(seed)
    value = rng.standard_normal((n_dates, n_assets)).cumsum(0) * 0.05
    value = (value - value.mean(1, keepdims=True)) / value.std(1, keepdims=True)
    market = 0.01 * rng.standard_normal(n_dates)
    alpha = 0.0015 * value + 0.02 * rng.standard_normal((n_dates, n_assets))
    log_ret = market[:, None] + alpha
    prices = np.exp(np.vstack([np.zeros((1, n_assets)), log_ret.cumsum(0)]))[:-1]
    frame = {}
    frame["mom_5"] = _past_return(prices, 5)
    frame["mom_20"] = _past_return(prices, 20)
    frame["vol_20"] = _rolling_std(np.diff(np.log(prices), axis=0, prepend=np.nan), 20)
    frame["value"] = value
    for h in horizons:
        future = np.full_like(prices, np.nan)
        future[:-h] = prices[h:] / prices[:-h] - 1
        frame[f"ret_h{h}"] = future
    dates = pd.date_range("2021-01-04", periods=n_dates, freq="B").strftime("%Y-%m-%d")
    long = pd.DataFrame(
        {
            "date": np.repeat(dates, n_assets),
            "asset": np.tile([f"S{i:03d}" for i in range(n_assets)], n_dates),
            **{name: values.reshape(-1) for name, values in frame.items()},
        }
    )
    return long.dropna().reset_index(drop=True)


def _past_return(prices: np.ndarray, lag: int) -> np.ndarray:
    out = np.full_like(prices, np.nan)
    out[lag:] = prices[lag:] / prices[:-lag] - 1
    return out


def _rolling_std(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full_like(values, np.nan)
    for t in range(window, len(values)):
        out[t] = np.nanstd(values[t - window + 1 : t + 1], axis=0)
    return out
