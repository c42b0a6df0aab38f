"""The episodic allocation trainer (``loop: episodic``): a model scores each asset from its
features, a transform turns the scores into allocations, and the model is trained to maximise
an episode reward (by default the log growth of the allocated portfolio) by gradient ascent,
without reinforcement learning.

Data is a panel (dates x assets x features) whose target is each asset's next-period return;
prices are rebuilt from those returns (p[t+1] = p[t] * (1 + y[t])). Each optimizer step samples
``batch_episodes`` windows of ``window`` dates from the training period (start dates uniform,
with replacement) and runs them through the model in one batched pass on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runlab._imports import import_object
from runlab._secrets import redact
from runlab.errors import ConfigError
from runlab.finance.backtest import backtest
from runlab.finance.rewards import log_growth_reward
from runlab.tracking.run import Run
from runlab.train.context import LoopContext
from runlab.train.data import Dataset
from runlab.train.epochs import EpochTrainer, run_epochs
from runlab.train.models import build_model, model_spec
from runlab.train.optim import make_optimizer, monitor_mode
from runlab.train.progress import ProgressView
from runlab.train.supervised import seed_everything


def to_allocations(scores: torch.Tensor, mask: torch.Tensor, transform: str) -> torch.Tensor:
    """The primary transform over the last axis (assets): ``softmax`` (long only, summing to
    1); ``tanh`` or ``identity`` scaled so that gross exposure is at most 1. Missing assets
    get 0."""
    if transform == "softmax":
        return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    raw = torch.tanh(scores) if transform == "tanh" else scores
    raw = raw.masked_fill(~mask, 0.0)
    return raw / raw.abs().sum(-1, keepdim=True).clamp_min(1.0)


class EpisodicTrainer:
    def __init__(
        self, cfg: dict[str, Any], data: Dataset, device: torch.device, seed: int = 42
    ) -> None:
        if not data.is_panel:
            raise ConfigError("loop: episodic needs a panel (dates x assets) as data.source")
        self.cfg, self.data, self.device, self.seed = cfg, data, device, seed
        self.e = cfg["episodic"]
        seed_everything(seed)
        self.spec = model_spec(cfg["model"], data.in_features, 1)
        self.model = build_model(self.spec).to(device)
        self.optimizer = make_optimizer(cfg["optim"], self.model.parameters())
        self.reward_fn = (
            log_growth_reward
            if self.e["reward"] == "log_growth"
            else import_object(self.e["reward"], "episodic.reward")
        )
        self.splits = {name: self._tensors(s) for name, s in data.splits.items()}
        days = self.splits["train"]["x"].shape[0]
        if days < int(self.e["window"]) + 1:
            raise ConfigError(
                f"episodic.window={self.e['window']} does not fit in the {days} training dates"
            )
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.amp = cfg["trainer"]["mixed_precision"] or False
        if self.amp == "fp16" and device.type != "cuda":
            self.amp = False
        self.episodes = 0

    def _tensors(self, split: Any) -> dict[str, torch.Tensor]:
        mask = torch.as_tensor(split.mask, device=self.device)
        y = torch.as_tensor(
            np.where(split.mask, split.y, 0.0), dtype=torch.float32, device=self.device
        )
        prices = torch.cat([torch.ones_like(y[:1]), torch.cumprod(1 + y, dim=0)])
        x = torch.as_tensor(split.x, dtype=torch.float32, device=self.device)
        return {"x": x, "y": y, "mask": mask, "prices": prices}

    def allocations(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(..., assets, features) -> allocations (..., assets); missing assets get 0."""
        with torch.autocast(
            self.device.type,
            dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16,
            enabled=bool(self.amp),
        ):
            scores = self.model(x).squeeze(-1).float()
        return to_allocations(scores, mask, self.e["transform"])

    def step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch of episodes: (rewards, turnover per episode)."""
        t, e = self.splits["train"], self.e
        window, n = int(e["window"]), int(e["batch_episodes"])
        starts = torch.randint(
            0, t["x"].shape[0] - window + 1, (n,), generator=self.gen, device=self.device
        )
        idx = starts[:, None] + torch.arange(window, device=self.device)
        alloc = self.allocations(t["x"][idx], t["mask"][idx])
        prices = t["prices"][idx]
        rewards = self.reward_fn(alloc, prices, float(e["transition_penalty"]))
        loss = -rewards.mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg["trainer"]["grad_clip"]
        if clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip)
        self.optimizer.step()
        self.episodes += n
        turnover = (alloc[:, 1:] - alloc[:, :-1]).abs().sum(-1).mean(-1)
        return rewards.detach(), turnover.detach()

    def warm_start(self, epochs: int) -> None:
        """Supervised epochs: the model's scores regress on next-period returns (MSE)."""
        t = self.splits["train"]
        batch = max(1, int(self.cfg["trainer"]["batch_size"]))
        for _ in range(epochs):
            perm = torch.randperm(t["x"].shape[0], generator=self.gen, device=self.device)
            for i in range(0, len(perm), batch):
                idx = perm[i : i + batch]
                pred = self.model(t["x"][idx]).squeeze(-1)
                m = t["mask"][idx]
                loss = ((pred - t["y"][idx] * 100) ** 2 * m).sum() / m.sum().clamp_min(1)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """Allocate every date of ``split`` in sequence and backtest the allocations."""
        t = self.splits[split]
        self.model.eval()
        alloc = self.allocations(t["x"], t["mask"])
        self.model.train()
        reward = float(
            self.reward_fn(
                alloc[None], t["prices"][None, :-1], float(self.e["transition_penalty"])
            )[0]
        )
        p = self.cfg["portfolio"]
        result = backtest(
            alloc.cpu().numpy(),
            t["y"].cpu().numpy(),
            transaction_cost_bps=p["transaction_cost_bps"],
            leverage_limit=p["leverage_limit"],
            borrowing_cost=p["borrowing_cost"],
            periods_per_year=p["periods_per_year"],
        )
        m = result.metrics()
        return {
            "reward": reward,
            "sharpe": m["sharpe"],
            "annual_return": m["annual_return"],
            "max_drawdown": m["max_drawdown"],
            "cumulative_return": m["cumulative_return"],
            "turnover": m["avg_turnover"],
        }

    def checkpoint(self, epoch: int, best: float | None) -> dict[str, Any]:
        return {
            "format": 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch,
            "best": best,
            "episodes": self.episodes,
            "data_scaler": self.data.scaler,
            "model_spec": self.spec,
            "task": "allocation",
            "n_classes": None,
            "config": redact(self.cfg),
        }

    def save(self, path: Path, epoch: int, best: float | None) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.checkpoint(epoch, best), tmp)
        tmp.replace(path)


@dataclass
class EpisodicState:
    epoch: int = 1  # the next epoch to train, 1-based
    best: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    es_best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class EpisodicEpochs(EpochTrainer):
    """The episodic trainer behind the shared epoch bookkeeping: an epoch is
    ``episodes_per_epoch`` episodes in batches of ``batch_episodes``; the monitor defaults to
    ``val.reward``, maximised."""

    def __init__(self, cfg: dict[str, Any], trainer: EpisodicTrainer) -> None:
        self.cfg, self.trainer = cfg, trainer
        self.state, self.model = EpisodicState(), trainer.model
        e, t = cfg["episodic"], cfg["trainer"]
        self.steps_per_epoch = max(
            1, math.ceil(int(e["episodes_per_epoch"]) / int(e["batch_episodes"]))
        )
        monitor = t["monitor"]
        self.monitor = monitor if monitor != "val.loss" else "val.reward"  # a sensible default
        self.mode = t["mode"] or (
            "max" if self.monitor.endswith(".reward") else monitor_mode(self.monitor)
        )
        self.seconds = 0.0
        self.last_rewards = torch.zeros(1)

    def attach(self, run: Run, view: ProgressView, diagnostics: Any) -> None:
        self.view = view

    def train_epoch(self, epoch: int) -> dict[str, float]:
        rewards, turnovers = [], []
        for i in range(self.steps_per_epoch):
            if self.paused():
                return {}
            r, turn = self.trainer.step()
            rewards.append(r)
            turnovers.append(turn)
            if self.view.live:
                self.view.tick(epoch, i + 1)
        self.last_rewards = torch.cat(rewards).float().cpu()
        reward = float(self.last_rewards.mean())
        return {"loss": -reward, "reward": reward, "turnover": float(torch.cat(turnovers).mean())}

    def evaluate(self, split: str) -> dict[str, Any]:
        return self.trainer.evaluate(split)

    def save(self, path: Path) -> None:
        self.trainer.save(path, self.state.epoch - 1, self.state.best)

    def lr(self) -> float:
        return float(self.trainer.optimizer.param_groups[0]["lr"])

    def epoch_extra(
        self, train_seconds: float, epoch_seconds: float, lr: float | None
    ) -> dict[str, Any]:
        self.seconds += train_seconds
        episodes = self.steps_per_epoch * int(self.cfg["episodic"]["batch_episodes"])
        return {
            "epoch_time_s": round(train_seconds, 4),
            "episodes_per_s": round(episodes / train_seconds, 1),
        }

    def finish(self, run: Run, stopped_early: bool) -> None:
        trainer, st, rewards = self.trainer, self.state, self.last_rewards
        val = trainer.evaluate("val")
        summary: dict[str, Any] = {
            "reward_mean": float(rewards.mean()),
            "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
            "episodes": trainer.episodes,
            "transition_penalty": float(self.cfg["episodic"]["transition_penalty"]),
            "turnover": val["turnover"],
            "throughput_eps_per_sec": round(trainer.episodes / self.seconds, 1)
            if self.seconds
            else None,
            "best_epoch": st.best_epoch,
            "best": st.best,
            "monitor": self.monitor,
            "val": val,
            "device": str(trainer.device),
            "stopped_early": stopped_early,
        }
        if "test" in trainer.splits:
            summary["test"] = trainer.evaluate("test")
        run.summary.update(summary)


def fit_episodic(
    cfg: dict[str, Any], run: Run, data: Dataset, device: torch.device, seed: int, **options: Any
) -> EpisodicTrainer:
    """:func:`train_episodic` with the context as keywords (``show_progress``,
    ``progress_to_stderr``, ``callbacks``, ``baseline``, ``alerts``)."""
    options["callbacks"] = list(options.get("callbacks") or [])
    return train_episodic(cfg, run, LoopContext(device=device, seed=seed, data=data, **options))


def train_episodic(cfg: dict[str, Any], run: Run, ctx: LoopContext) -> EpisodicTrainer:
    """Train ``cfg`` in ``run`` with the episodic trainer and the shared epoch bookkeeping."""
    trainer = EpisodicTrainer(cfg, ctx.dataset(cfg), ctx.device, ctx.seed)
    warm = int(cfg["episodic"]["warm_start_epochs"])
    if warm:
        trainer.warm_start(warm)
        run.event("on_warm_start", epochs=warm)
    run_epochs(cfg, run, EpisodicEpochs(cfg, trainer), ctx)
    return trainer
