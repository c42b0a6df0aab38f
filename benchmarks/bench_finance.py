"""Return metrics on 2520 days x 1000 strategies: runlab.finance against empyrical (on the 2-D
array, and column by column), quantstats on a DataFrame, and a plain NumPy version.

    python benchmarks/bench_finance.py [--repeats 7]

"Core four" = sharpe_ratio, sortino_ratio, max_drawdown, annual_return. "Whole set" = every
return metric of runlab.finance that gives one value per strategy: each function called on its
own, and all at once by perf_stats (which shares their work).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import runlab.finance as rf

CORE = ["sharpe_ratio", "sortino_ratio", "max_drawdown", "annual_return"]
WHOLE = [
    *CORE,
    "cum_returns_final",
    "annual_volatility",
    "downside_risk",
    "calmar_ratio",
    "omega_ratio",
    "tail_ratio",
    "value_at_risk",
    "conditional_value_at_risk",
    "stability_of_timeseries",
]


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def plain_numpy_core(r: np.ndarray) -> list[np.ndarray]:
    mean, std = r.mean(0), r.std(0, ddof=1)
    sharpe = mean / std * np.sqrt(252)
    down = np.sqrt((np.minimum(r, 0) ** 2).mean(0)) * np.sqrt(252)
    sortino = mean * 252 / down
    wealth = np.cumprod(1 + r, 0)
    mdd = (wealth / np.maximum(np.maximum.accumulate(wealth, 0), 1) - 1).min(0)
    ann = wealth[-1] ** (252 / len(r)) - 1
    return [sharpe, sortino, mdd, ann]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    r = rng.normal(0.0004, 0.01, (2520, 1000))
    frame = pd.DataFrame(r, index=pd.bdate_range("2010-01-01", periods=2520))
    rows: list[tuple[str, list[float]]] = []

    rows.append(
        (
            "runlab.finance, core four (2-D array)",
            timed(lambda: [getattr(rf, n)(r) for n in CORE], args.repeats),
        )
    )
    rows.append(
        (
            "runlab.finance, whole set (2-D array)",
            timed(lambda: [getattr(rf, n)(r) for n in WHOLE], args.repeats),
        )
    )
    rows.append(
        (
            "runlab.finance.perf_stats, whole set at once (2-D array)",
            timed(lambda: rf.perf_stats(r), args.repeats),
        )
    )
    rows.append(
        (
            "plain NumPy, core four (no NaN handling)",
            timed(lambda: plain_numpy_core(r), args.repeats),
        )
    )
    try:
        import empyrical as ep

        rows.append(
            (
                "empyrical, core four (2-D array)",
                timed(lambda: [getattr(ep, n)(r) for n in CORE], args.repeats),
            )
        )
        rows.append(
            (
                "empyrical, core four (column by column)",
                timed(
                    lambda: [getattr(ep, n)(r[:, j]) for n in CORE for j in range(r.shape[1])], 1
                ),
            )
        )
        rows.append(
            (
                "empyrical, whole set (column by column)",
                timed(
                    lambda: [getattr(ep, n)(r[:, j]) for n in WHOLE for j in range(r.shape[1])], 1
                ),
            )
        )
    except ImportError:
        print("empyrical skipped: pip install empyrical-reloaded")
    try:
        import quantstats as qs

        def qs_core() -> list[Any]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return [
                    qs.stats.sharpe(frame),
                    qs.stats.sortino(frame),
                    qs.stats.max_drawdown(frame),
                    qs.stats.cagr(frame),
                ]

        rows.append(("quantstats, core four (DataFrame)", timed(qs_core, 3)))
    except ImportError:
        print("quantstats skipped: pip install quantstats")

    print(
        f"machine: {platform.node()} {os.cpu_count()} cores, NumPy {np.__version__}, "
        f"2520 days x 1000 strategies\n"
    )
    base = statistics.median(rows[0][1])
    print("| what | median ms | min-max ms | x runlab core four |")
    print("| --- | ---: | ---: | ---: |")
    for label, times in rows:
        med = statistics.median(times)
        print(
            f"| {label} | {med * 1000:.1f} | {min(times) * 1000:.1f}-{max(times) * 1000:.1f} "
            f"| {med / base:.2f} |"
        )


if __name__ == "__main__":
    main()
