"""Episode rewards for allocation policies trained by gradient ascent (``loop: episodic``).

Written with tensor methods only, so ``runlab.finance`` does not import torch; pass torch
tensors (they stay on their device and in the autograd graph).
"""

from __future__ import annotations

from typing import Any


def log_growth_reward(
    allocations: Any, prices: Any, transition_penalty: float = 0.0, cash_rate: float = 0.0
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
    """
    before = prices[:, :-1]
    listed = before != 0  # a zero price (not yet listed, delisted) earns nothing
    simple = (prices[:, 1:] / before.where(listed, 1) - 1).where(listed, 0)
    held = allocations[:, :-1]
    growth = 1 + (held * simple).sum(-1)
    if cash_rate:
        growth = growth + (1 - held.sum(-1)) * cash_rate
    reward = growth.clamp_min(1e-8).log().sum(-1)
    if transition_penalty:
        moves = (allocations[:, 1:] - allocations[:, :-1]).abs().sum(-1).sum(-1)
        reward = reward - transition_penalty * moves
    return reward
