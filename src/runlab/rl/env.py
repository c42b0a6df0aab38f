"""``PortfolioEnv``: a Gymnasium environment of allocating a portfolio over a panel, whose
arithmetic is :mod:`runlab.finance.backtest`'s own, one period at a time: the leverage limit
(:func:`~runlab.finance.backtest.limit_leverage`), the period's return, turnover against the
drifted weights, transaction and borrowing costs. Running it with any sequence of actions ends
at the value ``backtest`` gives for the weights it held (tested with Hypothesis), so a policy's
training reward and its backtest cannot disagree.

Timing as in the backtest: at step t the agent sees what is known at date t (``features[t -
window + 1 .. t]`` and the realized returns ``returns[t - window .. t - 1]``, never
``returns[t]``), chooses target weights, holds them over the period and earns ``returns[t]``.

Actions are in [-1, 1] per asset, times ``action_scale`` the assets' scores, turned into
weights by the episodic loop's transforms
(``softmax``: long only, fully invested; ``tanh`` / ``identity``: long-short, gross at most 1),
times ``gross`` (e.g. 1.5 to allow leverage), then cut to ``leverage_limit``.

Rewards per step, ``net`` being the period's net return:

* ``log_growth``: ``log(1 + net)`` (the episode's rewards sum to the log of its final value);
* ``differential_sharpe``: Moody and Saffell's differential Sharpe ratio of ``net``, with
  moving moments of rate ``eta``;

minus ``turnover_penalty * turnover``; and at the episode's last step minus
``cvar_penalty * -CVaR_alpha`` of the episode's step log growths (as the episodic loop's
reward). ``info`` carries each step's ``gross_return``, ``cost``, ``borrowing``, ``leverage``,
``turnover``, ``net_return``, ``scaled`` (the leverage limit cut it) and ``value``.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from runlab.finance.backtest import costs, drift, limit_leverage, period_return, traded

TRANSFORMS = ("softmax", "tanh", "identity")
REWARDS = ("log_growth", "differential_sharpe")


def to_weights(action: np.ndarray, transform: str, gross: float = 1.0) -> np.ndarray:
    """Scores -> weights, as :func:`runlab.train.episodic.to_allocations` does (NumPy)."""
    a = np.asarray(action, dtype=np.float64)
    if transform == "softmax":
        e = np.exp(a - a.max())
        w = e / e.sum()
    else:
        raw = np.tanh(a) if transform == "tanh" else a
        w = raw / max(float(np.abs(raw).sum()), 1.0)
    out: np.ndarray = w * gross
    return out


class PortfolioEnv(gym.Env[np.ndarray, np.ndarray]):
    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium declares it an instance variable

    def __init__(
        self,
        returns: Any,
        features: Any = None,
        *,
        window: int = 20,
        transform: str = "tanh",
        gross: float = 1.0,
        transaction_cost_bps: float = 0.0,
        leverage_limit: float | None = None,
        borrowing_cost: float = 0.0,
        periods_per_year: int = 252,
        reward: str = "log_growth",
        turnover_penalty: float = 0.0,
        cvar_penalty: float = 0.0,
        cvar_alpha: float = 0.05,
        eta: float = 0.01,
        episode_length: int | None = None,
        random_start: bool = False,
        action_scale: float = 5.0,
    ) -> None:
        r = np.asarray(returns, dtype=np.float64)
        if r.ndim != 2 or r.shape[0] <= window or r.shape[1] < 1:
            raise ValueError(f"returns: dates x assets with more than window={window} dates")
        if transform not in TRANSFORMS or reward not in REWARDS:
            raise ValueError(f"transform one of {TRANSFORMS}, reward one of {REWARDS}")
        f = np.zeros((*r.shape, 0)) if features is None else np.asarray(features, np.float64)
        if f.ndim == 2:
            f = f[..., None]
        if f.shape[:2] != r.shape:
            raise ValueError(f"features {f.shape} must be dates x assets (x features) {r.shape}")
        self.r = np.where(np.isnan(r), 0.0, r)  # as the backtest counts a missing return
        self.f = np.where(np.isfinite(f), f, 0.0)
        self.window, self.transform, self.gross = window, transform, gross
        self.bps, self.limit, self.borrow = transaction_cost_bps, leverage_limit, borrowing_cost
        self.ppy, self.reward_kind = periods_per_year, reward
        self.turnover_penalty, self.cvar_penalty, self.cvar_alpha = (
            turnover_penalty, cvar_penalty, cvar_alpha,
        )  # fmt: skip
        self.eta, self.random_start = eta, random_start
        dates, assets = r.shape
        self.length = episode_length or dates - window
        if not 1 <= self.length <= dates - window:
            raise ValueError(f"episode_length {episode_length}: 1 to {dates - window}")
        size = window * assets * (self.f.shape[2] + 1) + assets
        self._size = size
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        # actions in [-1, 1] (what Stable-Baselines3 advises), times action_scale: the scores
        self.action_space = gym.spaces.Box(-1.0, 1.0, (assets,), np.float32)
        self.action_scale = action_scale
        self.t = self.start = window
        self.held = np.zeros(assets)
        self.value, self.steps = 1.0, []  # type: ignore[var-annotated]
        self.moments = (0.0, 0.0)

    def _observation(self) -> np.ndarray:
        t, k = self.t, self.window
        seen = np.concatenate([self.f[t - k + 1 : t + 1], self.r[t - k : t, :, None]], axis=2)
        return np.concatenate([seen.ravel(), self.held]).astype(np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        last = self.r.shape[0] - self.length
        start = (
            int(self.np_random.integers(self.window, last + 1))
            if self.random_start
            else self.window
        )
        if options and "start" in options:
            start = int(options["start"])
        self.t = self.start = start
        self.held = np.zeros(self.r.shape[1])
        self.value, self.steps, self.moments = 1.0, [], (0.0, 0.0)
        return self._observation(), {"date": self.t, "value": self.value}

    def target(self, action: np.ndarray) -> np.ndarray:
        """The weights an action asks for, before the leverage limit: the action clipped to
        [-1, 1], times ``action_scale``, through the transform, times ``gross``."""
        scores = np.clip(np.asarray(action, np.float64), -1.0, 1.0) * self.action_scale
        return to_weights(scores, self.transform, self.gross)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        target = self.target(action)
        w, over = limit_leverage(target, self.limit)
        r = self.r[self.t]
        gross_return = period_return(w, r)
        turnover = traded(w, self.held)
        t_cost, b_cost = costs(turnover, w, self.bps, self.borrow, self.ppy)
        net = float(gross_return - t_cost - b_cost)
        self.value *= 1 + net
        self.held = drift(w, r, gross_return)
        growth = math.log(max(1 + net, 1e-12))
        self.steps.append(growth)
        reward = growth if self.reward_kind == "log_growth" else self._differential_sharpe(net)
        reward -= self.turnover_penalty * float(turnover)
        self.t += 1
        wiped = 1 + net <= 0
        terminated = wiped or self.t >= self.start + self.length
        if terminated and self.cvar_penalty:
            worst = sorted(self.steps)[
                : max(1, math.ceil(self.cvar_alpha * len(self.steps) - 1e-9))
            ]
            reward += self.cvar_penalty * float(np.mean(worst))
        info = {
            "date": self.t - 1, "weights": w, "gross_return": float(gross_return),
            "cost": float(t_cost), "borrowing": float(b_cost), "leverage": float(np.abs(w).sum()),
            "turnover": float(turnover), "net_return": net, "scaled": bool(over),
            "value": self.value, "wiped_out": wiped,
        }  # fmt: skip
        done = self.t >= self.r.shape[0]  # past the panel's end: an observation of zeros
        observation = np.zeros(self._size, np.float32) if done else self._observation()
        return observation, float(reward), bool(terminated), False, info

    def _differential_sharpe(self, net: float) -> float:
        a, b = self.moments
        da, db = net - a, net * net - b
        variance = b - a * a
        d = (b * da - 0.5 * a * db) / variance**1.5 if variance > 1e-12 else 0.0
        self.moments = (a + self.eta * da, b + self.eta * db)
        return float(d)
