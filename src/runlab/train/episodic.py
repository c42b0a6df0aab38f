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
import time
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
from runlab.train.data import Dataset
from runlab.train.models import build_model, model_spec
from runlab.train.optim import make_optimizer
from runlab.train.progress import ProgressView, epoch_line
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


def fit_episodic(
    cfg: dict[str, Any],
    run: Run,
    data: Dataset,
    device: torch.device,
    seed: int,
    show_progress: bool = True,
    progress_to_stderr: bool = False,
    callbacks: list[Any] | None = None,
    baseline: Any = None,
    alerts: Any = None,
) -> EpisodicTrainer:
    """``callbacks``: called as ``cb(epoch, metrics)`` after each epoch, after the config's
    gates and the diagnostics."""
    from runlab.monitor.attach import watchers

    trainer = EpisodicTrainer(cfg, data, device, seed)
    e, epochs = cfg["episodic"], int(cfg["trainer"]["epochs"])
    steps = max(1, math.ceil(int(e["episodes_per_epoch"]) / int(e["batch_episodes"])))
    run.update_info(
        device=str(device), parameters=sum(p.numel() for p in trainer.model.parameters())
    )
    run.progress(total_epochs=epochs, total_steps=epochs * steps)
    run.cooperative_signals = True
    if int(e["warm_start_epochs"]):
        trainer.warm_start(int(e["warm_start_epochs"]))
        run.event("on_warm_start", epochs=int(e["warm_start_epochs"]))
    monitor = cfg["trainer"]["monitor"]
    monitor = monitor if monitor != "val.loss" else "val.reward"  # a sensible default here
    watch, _ = watchers(
        cfg,
        run,
        monitor,
        epochs,
        baseline,
        alerts,
        lr=lambda: float(trainer.optimizer.param_groups[0]["lr"]),
    )
    callbacks = [*watch, *(callbacks or [])]
    best, best_epoch, seconds = None, None, 0.0
    last_rewards = torch.zeros(1)
    view = ProgressView(run, epochs, steps, enabled=show_progress, to_stderr=progress_to_stderr)
    try:
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            rewards, turnovers = [], []
            for i in range(steps):
                if run.preempt_requested or run.stop_requested:
                    trainer.save(run.checkpoint_path("last"), epoch, best)
                    if not run.stop_requested:
                        return trainer
                    break
                r, turn = trainer.step()
                rewards.append(r)
                turnovers.append(turn)
                if view.live:
                    view.tick(epoch, i + 1)
            if run.stop_requested and len(rewards) < steps:
                break
            last_rewards = torch.cat(rewards).float().cpu()
            train_seconds = time.perf_counter() - t0
            seconds += train_seconds
            val = trainer.evaluate("val")
            train = {
                "loss": -float(last_rewards.mean()),
                "reward": float(last_rewards.mean()),
                "turnover": float(torch.cat(turnovers).mean()),
            }
            metrics = {"train": train, "val": val}
            value = val.get(monitor.partition(".")[2])
            if value is not None and not math.isnan(value) and (best is None or value > best):
                best, best_epoch = value, epoch
                trainer.save(run.checkpoint_path("best"), epoch, best)
            trainer.save(run.checkpoint_path("last"), epoch, best)
            run.log_epoch(
                epoch,
                metrics,
                summarize=False,
                epoch_time_s=round(train_seconds, 4),
                episodes_per_s=round(steps * int(e["batch_episodes"]) / train_seconds, 1),
            )
            view.epoch(epoch_line(epoch, epochs, metrics, time.perf_counter() - t0))
            run.progress(epoch=epoch)
            run.summary.update(
                last_epoch=epoch, best_epoch=best_epoch, best=best, monitor=monitor, val=val
            )
            for callback in callbacks or []:
                callback(epoch, metrics)
            if run.stop_requested:
                break
    finally:
        view.close()
    _finish(trainer, run, cfg, last_rewards, best, best_epoch, monitor, seconds)
    return trainer


def _finish(
    trainer: EpisodicTrainer,
    run: Run,
    cfg: dict[str, Any],
    rewards: torch.Tensor,
    best: float | None,
    best_epoch: int | None,
    monitor: str,
    seconds: float,
) -> None:
    best_path = run.checkpoint_path("best")
    if best_path.exists():
        ckpt = torch.load(best_path, map_location=trainer.device, weights_only=True)
        trainer.model.load_state_dict(ckpt["model"])
        link = run.checkpoint_path("model")
        link.unlink(missing_ok=True)
        link.symlink_to(best_path.name)
    val = trainer.evaluate("val")
    summary: dict[str, Any] = {
        "reward_mean": float(rewards.mean()),
        "reward_std": float(rewards.std()) if len(rewards) > 1 else 0.0,
        "episodes": trainer.episodes,
        "transition_penalty": float(cfg["episodic"]["transition_penalty"]),
        "turnover": val["turnover"],
        "throughput_eps_per_sec": round(trainer.episodes / seconds, 1) if seconds else None,
        "best_epoch": best_epoch,
        "best": best,
        "monitor": monitor,
        "val": val,
        "device": str(trainer.device),
    }
    if "test" in trainer.splits:
        summary["test"] = trainer.evaluate("test")
    run.summary.update(summary)
