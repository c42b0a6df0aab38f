"""Episode rewards for allocation policies trained by gradient ascent (``loop: episodic``).

Written with tensor methods only, so ``runlab.finance`` does not import torch; pass torch
tensors (they stay on their device and in the autograd graph).
"""

from __future__ import annotations

import math
from typing import Any


def step_log_growth(allocations: Any, prices: Any, cash_rate: float = 0.0) -> Any:
    """(episodes, T-1): the log growth of the portfolio from each step to the next (the terms
    :func:`log_growth_reward` sums)."""
    before = prices[:, :-1]
    listed = before != 0  # a zero price (not yet listed, delisted) earns nothing
    simple = (prices[:, 1:] / before.where(listed, 1) - 1).where(listed, 0)
    held = allocations[:, :-1]
    growth = 1 + (held * simple).sum(-1)
    if cash_rate:
        growth = growth + (1 - held.sum(-1)) * cash_rate
    return growth.clamp_min(1e-8).log()


def cvar(step_returns: Any, alpha: float) -> Any:
    """Per episode, the mean of the worst ``ceil(alpha * n)`` of its n step returns (the
    expected shortfall at level alpha, as a return: negative when the tail loses)."""
    n = step_returns.shape[-1]
    k = max(1, min(n, math.ceil(alpha * n - 1e-9)))
    return step_returns.topk(k, dim=-1, largest=False).values.mean(-1)


def max_drawdown_log(step_returns: Any) -> Any:
    """Per episode, the largest fall of the cumulative log growth from its running peak
    (the start counts as a peak at 0): >= 0, in log units."""
    path = step_returns.cumsum(-1)
    peak = path.cummax(-1).values.clamp_min(0)
    return (peak - path).amax(-1).clamp_min(0)


def log_growth_reward(
    allocations: Any,
    prices: Any,
    transition_penalty: float = 0.0,
    cash_rate: float = 0.0,
    cvar_penalty: float = 0.0,
    cvar_alpha: float = 0.05,
    drawdown_penalty: float = 0.0,
) -> Any:
    """One reward per episode, for tensors shaped (episodes, T, assets): the log of the
    portfolio's value at the end of the window over its value at the start,

    sum over t < T-1 of log(1 + sum_m a[t,m] * (p[t+1,m] / p[t,m] - 1) + c[t] * cash_rate),

    where ``a[t]`` are fractions of the portfolio's value held in each asset (negative for a
    short), ``c[t] = 1 - sum_m a[t,m]`` is the rest, in cash, and ``cash_rate`` what cash earns
    per period (0 by default, as in :func:`runlab.finance.backtest`). A fully invested
    allocation (softmax) gives log(sum_m a[t,m] p[t+1,m] / p[t,m]); a half-invested or
    long-short one is not charged for the money it does not hold. The growth inside the log is
    clamped at 1e-8 (a wiped-out portfolio); a held asset whose price is 0 at t earns 0 from t to
    t+1. ``transition_penalty`` * sum over t of
    ||a[t+1] - a[t]||_1 is subtracted. The allocation of the last step of a window earns
    nothing (there is no next price).

    Risk penalties, on the step log growths r[t]: ``cvar_penalty`` * -CVaR_alpha(r) (the
    mean of the worst ``ceil(cvar_alpha * (T-1))`` steps, :func:`cvar`) and
    ``drawdown_penalty`` * the largest fall of sum r from its running peak
    (:func:`max_drawdown_log`) are subtracted.
    """
    steps = step_log_growth(allocations, prices, cash_rate)
    reward = steps.sum(-1)
    if cvar_penalty:
        reward = reward + cvar_penalty * cvar(steps, cvar_alpha)
    if drawdown_penalty:
        reward = reward - drawdown_penalty * max_drawdown_log(steps)
    if transition_penalty:
        moves = (allocations[:, 1:] - allocations[:, :-1]).abs().sum(-1).sum(-1)
        reward = reward - transition_penalty * moves
    return reward
