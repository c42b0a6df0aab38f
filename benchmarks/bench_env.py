"""Environment steps per second: runlab.rl.PortfolioEnv beside gym-anytrading's StocksEnv on
the same prices (one asset, a window of 20, random actions), and PortfolioEnv on 10 assets with
costs, a leverage limit and borrowing (what gym-anytrading cannot express).

    python benchmarks/bench_env.py [--steps 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import pandas as pd


def rate(env, steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    space = env.action_space
    actions = [space.sample() for _ in range(1000)]
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, done, truncated, _ = env.step(actions[i % 1000])
        if done or truncated:
            env.reset(seed=int(rng.integers(1 << 30)))
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from gym_anytrading.envs import StocksEnv

    from runlab.rl.env import PortfolioEnv

    rng = np.random.default_rng(0)
    dates = 5000
    one = rng.normal(3e-4, 0.01, (dates, 1))
    prices = 100 * np.cumprod(1 + one[:, 0])
    frame = pd.DataFrame({"Open": prices, "High": prices, "Low": prices, "Close": prices,
                          "Volume": np.ones(dates)})  # fmt: skip
    many = rng.normal(3e-4, 0.01, (dates, 10))
    cases = {
        "gym-anytrading StocksEnv, 1 asset": lambda: StocksEnv(
            df=frame, window_size=20, frame_bound=(20, dates)
        ),
        "runlab PortfolioEnv, 1 asset": lambda: PortfolioEnv(one, one, window=20),
        "runlab PortfolioEnv, 10 assets, costs+limit+borrowing": lambda: PortfolioEnv(
            many,
            many,
            window=20,
            transaction_cost_bps=1,
            leverage_limit=1.5,
            borrowing_cost=0.0675,
            gross=1.5,
        ),
    }
    print(f"# {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    results = {}
    for name, make in cases.items():
        runs = [rate(make(), args.steps, seed) for seed in range(args.repeats)]
        results[name] = statistics.median(runs)
        print(f"{name:<58} {results[name]:>10,.0f} steps/s (median of {args.repeats})")
    base = results["gym-anytrading StocksEnv, 1 asset"]
    mine = results["runlab PortfolioEnv, 1 asset"]
    print(f"PortfolioEnv / StocksEnv, 1 asset: {mine / base:.2f}x")


if __name__ == "__main__":
    main()
