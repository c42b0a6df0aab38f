"""``loop: ppo`` registered with runlab's loops (:mod:`runlab.rl.ppo` does the work)."""

from __future__ import annotations

from typing import Any, ClassVar

from runlab.train.loops import Loop, LoopContext


class PPOLoop(Loop):
    """PPO (Stable-Baselines3) on runlab.rl.PortfolioEnv over the train split, validated by a
    backtest of its allocations: runlab.rl.ppo."""

    name = "ppo"
    resumable = True
    refuses: ClassVar[dict[str, str]] = {
        "task": "its targets are next-period returns; leave task at regression",
        "trainer.loss": "it maximises the environment's reward; set rl.reward instead",
        "evaluate": "it backtests its allocations (runlab backtest RUN for the test split)",
        "model.name": "its networks are rl.hidden",
    }

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        from runlab.rl.ppo import train_ppo

        train_ppo(cfg, run, ctx)
