"""``loop: ppo``: Stable-Baselines3's PPO on :class:`runlab.rl.PortfolioEnv` over the panel's
train split, behind runlab's shared epoch bookkeeping (:func:`runlab.train.epochs.run_epochs`):
gates, early stopping, best and last checkpoints, ``runlab stop``, SIGTERM and ``--resume`` as
for every loop.

An epoch is ``rl.steps_per_epoch`` environment steps (whole rollouts of ``rl.n_envs x
rl.n_steps``), each rollout recorded in steps.jsonl by :class:`~runlab.integrations.sb3.
RunlabCallback` (episode returns, info terms, SB3's update statistics, environment and learner
time); the epoch's train metrics are their means. Then the deterministic policy allocates every
date of the validation split after its first ``rl.window`` (what it needs to see), and
:func:`runlab.finance.backtest` of those weights, with the ``portfolio`` block's costs,
leverage limit and borrowing, is the epoch's ``val`` (``reward``: the log of the final value;
``sharpe``, ``annual_return``, ``max_drawdown``, ``cumulative_return``, ``turnover``,
``final_value``). The monitor defaults to ``val.reward``, maximised. A checkpoint holds the
policy's and its optimizer's state and the step count (no pickle); an epoch interrupted by
SIGTERM is trained again from its start on ``--resume``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runlab.finance.backtest import BacktestResult, backtest
from runlab.rl.env import PortfolioEnv
from runlab.train.epochs import EpochTrainer, run_epochs

EPOCH_KEYS = (
    "loss", "episode_return", "episode_length", "entropy", "approx_kl", "clip_fraction",
    "explained_variance", "value_loss", "policy_loss", "info_turnover", "info_leverage",
    "info_cost", "info_borrowing", "info_scaled", "env_steps_per_s", "learner_steps_per_s",
)  # fmt: skip


@dataclass
class PPOState:
    epoch: int = 1
    best: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    es_best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _split(data: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A panel split's next-period returns (a missing pair earns 0) and features."""
    s = data.splits[name]
    y = np.asarray(s.y, dtype=np.float64)
    y = y.reshape(y.shape[0], y.shape[1], -1)[..., 0]
    mask = np.asarray(s.mask, dtype=bool) if s.mask is not None else np.ones(y.shape, bool)
    return np.where(mask, y, 0.0), np.asarray(s.x, dtype=np.float64)


class PPOEpochs(EpochTrainer):
    def __init__(self, cfg: dict[str, Any], data: Any, device: Any, seed: int) -> None:
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.logger import configure

        self.cfg, self.data, self.rl = cfg, data, cfg["rl"]
        rl, t = self.rl, cfg["trainer"]
        returns, features = _split(data, "train")
        self.env_options = self._env_options()
        length = rl["episode_length"] or returns.shape[0] - int(rl["window"])
        length = min(int(length), returns.shape[0] - int(rl["window"]))
        self.vec = make_vec_env(
            PortfolioEnv, n_envs=int(rl["n_envs"]), seed=seed,
            env_kwargs={"returns": returns, "features": features, "episode_length": length,
                        "random_start": True, **self.env_options},
        )  # fmt: skip
        rollout = int(rl["n_envs"]) * int(rl["n_steps"])
        self.steps_per_epoch = max(1, math.ceil(int(rl["steps_per_epoch"]) / rollout))
        self.epoch_steps = self.steps_per_epoch * rollout
        self.total_steps = self.epoch_steps * int(t["epochs"])
        self.ppo = PPO(
            "MlpPolicy", self.vec, learning_rate=self._lr, n_steps=int(rl["n_steps"]),
            batch_size=int(rl["batch_size"]), n_epochs=int(rl["n_epochs"]),
            gamma=float(rl["gamma"]), gae_lambda=float(rl["gae_lambda"]),
            clip_range=float(rl["clip_range"]), ent_coef=float(rl["ent_coef"]),
            vf_coef=float(rl["vf_coef"]), target_kl=rl["target_kl"],
            max_grad_norm=float(rl["grad_clip"]), seed=seed, device=device,
            policy_kwargs={"net_arch": [int(h) for h in rl["hidden"]]},
        )  # fmt: skip
        self.ppo.set_logger(configure(None, []))  # runlab records; SB3 prints nothing
        self.model = self.ppo.policy
        self.state = PPOState()
        monitor = t["monitor"]
        self.monitor = monitor if monitor != "val.loss" else "val.reward"
        self.mode = t["mode"] or ("min" if self.monitor.endswith("loss") else "max")

    def _env_options(self) -> dict[str, Any]:
        return env_options(self.cfg)

    def evaluate(self, split: str) -> dict[str, Any]:
        returns, features = _split(self.data, split)
        targets, total = allocate(self.ppo, PortfolioEnv(returns, features, **self.env_options))
        result = _backtest(self.cfg["portfolio"], targets, returns, int(self.rl["window"]))
        m = result.metrics()
        return {
            "loss": -total, "reward": total, "sharpe": m["sharpe"],
            "annual_return": m["annual_return"], "max_drawdown": m["max_drawdown"],
            "cumulative_return": m["cumulative_return"], "turnover": m["avg_turnover"],
            "final_value": float(result.equity[-1]),
        }  # fmt: skip

    def _lr(self, progress_remaining: float) -> float:
        """Linear warm-up over ``rl.warmup_steps``, then cosine decay to ``rl.min_lr`` at the
        last epoch's end: by the steps taken in the whole run, not in one ``learn`` call."""
        # SB3 calls the schedule once while PPO is built, before self.ppo exists: step 0
        rl, done = self.rl, float(self.ppo.num_timesteps) if hasattr(self, "ppo") else 0.0
        peak, floor, warm = float(rl["learning_rate"]), float(rl["min_lr"]), int(rl["warmup_steps"])
        if warm and done < warm:
            return peak * (done + 1) / warm
        span = max(self.total_steps - warm, 1)
        return floor + (peak - floor) * 0.5 * (
            1 + math.cos(math.pi * min(1.0, (done - warm) / span))
        )

    def attach(self, run: Any, view: Any, diagnostics: Any) -> None:
        self.run, self.view = run, view

    def train_epoch(self, epoch: int) -> dict[str, float]:
        from runlab.integrations.sb3 import RunlabCallback

        floor = self.rl["entropy_floor"]
        callback = RunlabCallback(
            self.run,
            entropy_floor=-math.inf if floor is None else float(floor),
            per_rollout="steps",
            stop=self.paused,
        )
        self.ppo.learn(self.epoch_steps, callback=callback, reset_num_timesteps=False)
        if self.paused():
            return {}
        means = callback.means()  # every rollout's values are in steps.jsonl; the epoch's:
        return {k: means[k] for k in EPOCH_KEYS if k in means}

    def save(self, path: Path) -> None:
        st = self.state
        checkpoint = {
            "format": 1,
            "model": self.model.state_dict(),
            "optimizer": self.model.optimizer.state_dict(),
            "timesteps": int(self.ppo.num_timesteps),
            "state": {
                "epoch": st.epoch,
                "best": st.best,
                "best_epoch": st.best_epoch,
                "stale_epochs": st.stale_epochs,
                "es_best": st.es_best,
                "history": st.history,
            },
        }
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(path)

    def restore(self, path: Path) -> dict[str, Any]:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        self.model.load_state_dict(ckpt["model"])
        self.model.optimizer.load_state_dict(ckpt["optimizer"])
        self.ppo.num_timesteps = int(ckpt["timesteps"])
        for key, value in ckpt["state"].items():
            setattr(self.state, key, value)
        return {"epoch": self.state.epoch, "step": self.ppo.num_timesteps}

    def lr(self) -> float:
        return float(self.model.optimizer.param_groups[0]["lr"])

    def epoch_extra(
        self, train_seconds: float, epoch_seconds: float, lr: float | None
    ) -> dict[str, Any]:
        return {
            "lr": lr,
            "epoch_time_s": round(epoch_seconds, 4),
            "steps_per_s": round(self.epoch_steps / max(train_seconds, 1e-9), 1),
        }

    def epoch_summary(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"train_loss": metrics["train"].get("loss"), "val_loss": metrics["val"]["loss"]}

    def finish(self, run: Any, stopped_early: bool) -> None:
        st = self.state
        summary: dict[str, Any] = {
            "best_epoch": st.best_epoch, "best": st.best, "monitor": self.monitor,
            "val": self.evaluate("val"), "timesteps": int(self.ppo.num_timesteps),
            "epochs_run": len(st.history), "stopped_early": stopped_early,
        }  # fmt: skip
        if "test" in self.data.splits:
            summary["test"] = self.evaluate("test")
        run.summary.update(summary)


def env_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """PortfolioEnv's settings from a config: ``rl`` and the ``portfolio`` block's costs."""
    rl, p = cfg["rl"], cfg["portfolio"]
    return {
        "window": int(rl["window"]), "transform": rl["transform"], "gross": float(p["gross"]),
        "transaction_cost_bps": float(p["transaction_cost_bps"]),
        "leverage_limit": p["leverage_limit"], "borrowing_cost": float(p["borrowing_cost"]),
        "periods_per_year": int(p["periods_per_year"]), "reward": rl["reward"],
        "turnover_penalty": float(rl["turnover_penalty"]),
        "cvar_penalty": float(rl["cvar_penalty"]), "cvar_alpha": float(rl["cvar_alpha"]),
    }  # fmt: skip


def allocate(ppo: Any, env: PortfolioEnv) -> tuple[np.ndarray, float]:
    """The deterministic policy over the whole of ``env``'s dates: the target weights of each
    step and the sum of the rewards."""
    obs, _ = env.reset()
    targets, total, done = [], 0.0, False
    while not done:
        action, _ = ppo.predict(obs, deterministic=True)
        targets.append(env.target(action))
        obs, reward, done, _, _ = env.step(action)
        total += reward
    return np.array(targets), total


def _backtest(
    settings: dict[str, Any], targets: np.ndarray, returns: np.ndarray, window: int
) -> BacktestResult:
    from runlab.train.evaluate_run import WEIGHT_SETTINGS

    held = returns[window : window + len(targets)]
    return backtest(targets, held, **{k: settings[k] for k in WEIGHT_SETTINGS if k in settings})


def backtest_ppo_run(
    record: Any, data: Path | None, split: str, overrides: dict[str, Any], which: str = "best"
) -> tuple[BacktestResult, Path]:
    """``runlab backtest`` of a ``loop: ppo`` run: its checkpoint ``which`` allocates every
    date of ``split`` after the first ``rl.window``, backtested with the run's ``portfolio``
    settings and ``overrides``; artifacts/backtest/<split>/ as for every run."""
    from stable_baselines3 import PPO

    from runlab.config.validate import resolve
    from runlab.errors import ConfigError
    from runlab.train.data import load_dataset
    from runlab.train.figures import wanted

    cfg = resolve(record.config)
    if data is not None:
        if not Path(data).exists():
            raise ConfigError(f"--data {str(data)!r} not found")
        cfg["data"]["source"] = str(data)
    path = record.path / "checkpoints" / f"{which}.pt"
    if not path.is_file():
        raise ConfigError(f"run {record.id} has no checkpoints/{which}.pt")
    ds = load_dataset(cfg["data"], cfg["task"], int(record.info.get("seed", 42)))
    if split not in ds.splits:
        raise ConfigError(f"the data has no {split!r} split (it has {', '.join(ds.splits)})")
    returns, features = _split(ds, split)
    env = PortfolioEnv(returns, features, **env_options(cfg))
    ppo = PPO("MlpPolicy", env, device="cpu",
              policy_kwargs={"net_arch": [int(h) for h in cfg["rl"]["hidden"]]})  # fmt: skip
    ppo.policy.load_state_dict(torch.load(path, map_location="cpu", weights_only=True)["model"])
    targets, _ = allocate(ppo, env)
    result = _backtest({**cfg["portfolio"], **overrides}, targets, returns, env.window)
    dates = ds.dates.get(split)
    result.dates = dates[env.window : env.window + len(targets)] if dates else None
    result.assets = ds.assets
    result.settings["checkpoint"] = which
    folder = split if which == "best" else f"{split}@{which}"
    out = result.write(
        record.path / "artifacts" / "backtest" / folder, figures="backtest" in wanted(cfg)
    )
    return result, out


def train_ppo(cfg: dict[str, Any], run: Any, ctx: Any) -> PPOEpochs:
    data = ctx.dataset(cfg)
    if not data.is_panel:
        from runlab.errors import ConfigError

        raise ConfigError("loop: ppo needs a panel (dates x assets) as data.source")
    ctx.record_data(run, data)
    trainer = PPOEpochs(cfg, data, "cpu" if ctx.device is None else ctx.device, ctx.seed)
    run_epochs(cfg, run, trainer, ctx)
    return trainer
