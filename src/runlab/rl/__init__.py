"""Reinforcement learning for allocation (extra ``rl``: gymnasium, stable-baselines3)."""

from __future__ import annotations

from typing import Any

__all__ = ["PortfolioEnv"]


def __getattr__(name: str) -> Any:  # gymnasium is imported only when the environment is used
    if name == "PortfolioEnv":
        from runlab.rl.env import PortfolioEnv

        return PortfolioEnv
    raise AttributeError(name)
