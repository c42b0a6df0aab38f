"""Episode rewards for allocation policies trained by gradient ascent (``loop: episodic``).

Written with tensor methods only, so ``runlab.finance`` does not import torch; pass torch
tensors (they stay on their device and in the autograd graph).
"""

from __future__ import annotations

from typing import Any


def log_growth_reward(allocations: Any, prices: Any, transition_penalty: float = 0.0) -> Any:
    """One reward per episode, for tensors shaped (episodes, T, assets):

    sum over t < T-1 of log(sum_m a[t,m] * p[t+1,m] / (p[t,m] + 1e-8)), the growth inside the
    log clamped at 1e-8, minus ``transition_penalty`` * sum over t of ||a[t+1] - a[t]||_1.
    The allocation of the last step of a window earns nothing (there is no next price).
    """
    ratio = prices[:, 1:] / (prices[:, :-1] + 1e-8)
    growth = (allocations[:, :-1] * ratio).sum(-1).clamp_min(1e-8).log()
    reward = growth.sum(-1)
    if transition_penalty:
        moves = (allocations[:, 1:] - allocations[:, :-1]).abs().sum(-1).sum(-1)
        reward = reward - transition_penalty * moves
    return reward
