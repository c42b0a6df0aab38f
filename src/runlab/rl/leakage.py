"""``runlab rl check-leakage CFG``: does any observation of the environment a ``loop: ppo``
config trains on depend on the future? For each of ``steps`` dates t of the split, the rows
after t are shuffled and rescaled (returns from t on: ``returns[t]`` is what the action at t
earns; features after t), the environment is rebuilt on the perturbed panel, and its
observation at t must be the same, bit for bit. It checks the environment and the panel as
loaded; a loader that uses the future itself (a scaler fitted on rows after t) is outside it."""

from __future__ import annotations

from typing import Any

import numpy as np

from runlab.rl.env import PortfolioEnv


def leaking_steps(
    returns: np.ndarray,
    features: np.ndarray,
    options: dict[str, Any],
    steps: int = 20,
    seed: int = 0,
    env_class: type[PortfolioEnv] = PortfolioEnv,
) -> tuple[list[int], int]:
    """The dates whose observation changed when the future did, and how many were checked."""
    rng = np.random.default_rng(seed)
    window = int(options.get("window", 20))
    last = returns.shape[0] - 1
    dates = sorted({int(t) for t in np.linspace(window, last, num=min(steps, last - window + 1))})
    leaks = []
    for t in dates:
        base = env_class(returns, features, **options)
        base.reset(options={"start": t})
        future_r, future_f = returns.copy(), features.copy()
        later = future_r[t:]
        future_r[t:] = later[rng.permutation(len(later))] * rng.uniform(0.5, 2.0, later.shape)
        if t + 1 < len(future_f):
            rest = future_f[t + 1 :]
            future_f[t + 1 :] = rest[rng.permutation(len(rest))] * rng.uniform(0.5, 2, rest.shape)
        other = env_class(future_r, future_f, **options)
        other.reset(options={"start": t})
        if not np.array_equal(base._observation(), other._observation()):
            leaks.append(t)
    return leaks, len(dates)
