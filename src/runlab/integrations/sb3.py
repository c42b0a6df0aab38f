"""A Stable-Baselines3 callback that records an RL training run into a runlab run, for users who
keep their own SB3 scripts::

    from runlab.integrations.sb3 import RunlabCallback

    with runlab.start_run(cfg, name="ppo") as run:
        model = PPO("MlpPolicy", env, n_steps=256)
        model.learn(20_000, callback=RunlabCallback(run))

Each rollout is an epoch of the run (``train`` split), with:

- the episodes that ended in it, counted by the callback itself (no Monitor wrapper needed):
  ``episode_return`` (mean), ``episode_return_min``/``max``/``std``, ``episode_length``,
  ``episodes``;
- the mean over the rollout's steps of every number the environment put in ``info`` (for
  :class:`runlab.rl.PortfolioEnv`: ``gross_return``, ``cost``, ``borrowing``, ``leverage``,
  ``turnover``, ``net_return``, ``scaled``), as ``info_<name>``;
- SB3's own update statistics of the update that followed it: ``entropy`` (minus SB3's
  ``entropy_loss``), ``approx_kl``, ``clip_fraction``, ``explained_variance``, ``value_loss``,
  ``policy_loss``, ``loss``, ``learning_rate``;
- ``env_seconds`` and ``learner_seconds``, and steps per second of each (``env_steps_per_s``,
  ``learner_steps_per_s``);

and a warning event (``on_warning``, code ``rl_diagnostic``) for an entropy collapse (below
``entropy_floor``), a KL spike (over 2x ``target_kl``, or 0.05 without one), a clip fraction
over 0.3, an explained variance below 0 after the first five updates, and actions pinned at the
leverage limit (``info_scaled`` over 0.9).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any

from runlab._imports import require

require("stable_baselines3", "rl", "runlab.integrations.sb3")

import numpy as np  # noqa: E402
from stable_baselines3.common.callbacks import BaseCallback  # noqa: E402

SB3_KEYS = {
    "train/approx_kl": "approx_kl",
    "train/clip_fraction": "clip_fraction",
    "train/explained_variance": "explained_variance",
    "train/value_loss": "value_loss",
    "train/policy_gradient_loss": "policy_loss",
    "train/loss": "loss",
    "train/learning_rate": "learning_rate",
}


class RunlabCallback(BaseCallback):
    def __init__(
        self,
        run: Any,
        entropy_floor: float = -math.inf,
        verbose: int = 0,
        per_rollout: str = "epoch",
        stop: Any = None,
    ) -> None:
        """``per_rollout``: ``epoch`` (each rollout an epoch of the run) or ``steps`` (each a
        steps.jsonl record at the step count, for ``loop: ppo``, whose epochs are longer);
        ``stop``: a function asked after every step, True ends ``learn``."""
        super().__init__(verbose)
        self.run, self.entropy_floor = run, entropy_floor
        self.per_rollout, self.stop = per_rollout, stop
        self.recorded: list[dict[str, float]] = []
        self.rollout = 0
        self._returns: np.ndarray | None = None
        self._lengths: np.ndarray | None = None
        self._ended: list[tuple[float, int]] = []
        self._info: dict[str, list[float]] = defaultdict(list)
        self._pending: dict[str, float] | None = None  # the last rollout, until its update
        self._t_start = self._t_end = 0.0
        self._steps = 0

    # ------------------------------------------------------------------ SB3's hooks
    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._pending is not None:
            self._record(self._pending, now - self._t_end)
        self._t_start, self._steps = now, 0

    def _on_step(self) -> bool:
        rewards = np.asarray(self.locals["rewards"], dtype=np.float64)
        dones = np.asarray(self.locals["dones"], dtype=bool)
        if self._returns is None:
            self._returns, self._lengths = np.zeros(len(rewards)), np.zeros(len(rewards), int)
        assert self._lengths is not None
        self._returns += rewards
        self._lengths += 1
        for i in np.flatnonzero(dones):
            self._ended.append((float(self._returns[i]), int(self._lengths[i])))
            self._returns[i], self._lengths[i] = 0.0, 0
        for info in self.locals.get("infos") or []:
            for key, value in info.items():
                if isinstance(value, (bool, int, float, np.floating, np.bool_)) and key != "date":
                    self._info[key].append(float(value))
        self._steps += len(rewards)
        return not (self.stop is not None and self.stop())

    def _on_rollout_end(self) -> None:
        self._t_end = time.perf_counter()
        self.rollout += 1
        values: dict[str, float] = {"env_seconds": self._t_end - self._t_start}
        values["env_steps_per_s"] = self._steps / max(values["env_seconds"], 1e-9)
        if self._ended:
            returns = np.array([r for r, _ in self._ended])
            values.update(
                episode_return=float(returns.mean()),
                episode_return_min=float(returns.min()),
                episode_return_max=float(returns.max()),
                episode_return_std=float(returns.std()),
                episode_length=float(np.mean([n for _, n in self._ended])),
                episodes=float(len(returns)),
            )
        for key, seen in self._info.items():
            values[f"info_{key}"] = float(np.mean(seen))
        values["rollout_steps"] = float(self._steps)
        self._ended, self._info = [], defaultdict(list)
        self._pending = values

    def _on_training_end(self) -> None:
        if self._pending is not None:
            self._record(self._pending, time.perf_counter() - self._t_end)
            self._pending = None

    # ------------------------------------------------------------------ recording
    def _record(self, values: dict[str, float], learner_seconds: float) -> None:
        """The rollout with the statistics of the update that followed it."""
        logged = dict(self.model.logger.name_to_value)
        for sb3, name in SB3_KEYS.items():
            if sb3 in logged:
                values[name] = float(logged[sb3])
        if "train/entropy_loss" in logged:
            values["entropy"] = -float(logged["train/entropy_loss"])
        values["learner_seconds"] = learner_seconds
        values["learner_steps_per_s"] = values["rollout_steps"] / max(learner_seconds, 1e-9)
        values["timesteps"] = float(self.num_timesteps)
        if self.per_rollout == "steps":
            self.run.log(values, step=self.num_timesteps)
        else:
            self.run.log_epoch(self.rollout, {"train": values})
        self.recorded.append(values)
        self._diagnose(values)

    def means(self) -> dict[str, float]:
        """The mean of each value over the rollouts recorded (``loss``: minus the mean
        episode return), for an epoch of several rollouts."""
        keys = {k for r in self.recorded for k in r}
        out = {k: float(np.mean([r[k] for r in self.recorded if k in r])) for k in keys}
        if "episode_return" in out:
            out["loss"] = -out["episode_return"]
        return out

    def _diagnose(self, values: dict[str, float]) -> None:
        target = getattr(self.model, "target_kl", None)
        found = []
        if values.get("entropy", math.inf) < self.entropy_floor:
            found.append(f"entropy collapsed to {values['entropy']:.3g}")
        if values.get("approx_kl", 0.0) > 2 * (target or 0.025):
            found.append(f"KL spike: approx_kl {values['approx_kl']:.3g}")
        if values.get("clip_fraction", 0.0) > 0.3:
            found.append(f"clip fraction {values['clip_fraction']:.2f} over 0.3")
        if self.rollout > 5 and values.get("explained_variance", 1.0) < 0:
            found.append(f"explained variance {values['explained_variance']:.2f} below 0")
        if values.get("info_scaled", 0.0) > 0.9:
            found.append(f"actions pinned at the leverage limit ({values['info_scaled']:.0%})")
        for message in found:
            self.run.event(
                "on_warning", code="rl_diagnostic", rollout=self.rollout, message=message
            )
