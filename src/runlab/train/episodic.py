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
from runlab.train.figures import epoch_figures
from runlab.train.handover import trainer_for
from runlab.train.models import build_model, model_spec
from runlab.train.optim import make_optimizer, make_scheduler, monitor_mode, step_epoch_schedule
from runlab.train.progress import ProgressView
from runlab.train.supervised import NonFiniteLossError, seed_everything


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
    """The model, optimizer, schedule, grad scaler and data of an episodic run, and one
    optimizer step on a batch of sampled episodes (:meth:`step`)."""

    def __init__(
        self, cfg: dict[str, Any], data: Dataset, device: torch.device, seed: int = 42
    ) -> None:
        if not data.is_panel:
            raise ConfigError("loop: episodic needs a panel (dates x assets) as data.source")
        self.cfg, self.data, self.device, self.seed = cfg, data, device, seed
        self.e, t = cfg["episodic"], cfg["trainer"]
        seed_everything(seed)
        self.spec = model_spec(cfg["model"], data.in_features, 1)
        self.model = build_model(self.spec).to(device)
        self.train_model: torch.nn.Module = self.model
        if t["compile"]:
            self.train_model = torch.compile(self.model)  # type: ignore[assignment]
        self.optimizer = make_optimizer(cfg["optim"], self.model.parameters())
        self.reward_fn = self._reward(self.e)
        self.splits = {name: self._tensors(s) for name, s in data.splits.items()}
        days = self.splits["train"]["x"].shape[0]
        if days < int(self.e["window"]) + 1:
            raise ConfigError(
                f"episodic.window={self.e['window']} does not fit in the {days} training dates"
            )
        self.gen = torch.Generator(device=device).manual_seed(seed)
        self.warnings: list[str] = []
        self.amp = t["mixed_precision"] or False
        if self.amp == "fp16" and device.type != "cuda":
            self.warnings.append("trainer.mixed_precision=fp16 needs CUDA; training in fp32")
            self.amp = False
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp == "fp16")
        steps = math.ceil(int(self.e["episodes_per_epoch"]) / int(self.e["batch_episodes"]))
        if t["limit_train_batches"] is not None:
            steps = min(steps, int(t["limit_train_batches"]))
        self.steps_per_epoch = max(1, steps)
        self.scheduler, self.sched_per_step = make_scheduler(
            cfg["schedule"], self.optimizer, self.steps_per_epoch * int(t["epochs"])
        )
        self.skip_nan = t["on_nan"] == "skip"
        self.episodes = self.steps = self.skipped_steps = 0
        self.grad_norm: float | None = None

    @staticmethod
    def _reward(e: dict[str, Any]) -> Any:
        """The episode reward: log growth with the risk penalties of the config, or a user's
        ``fn(allocations, prices, transition_penalty)`` (which brings its own)."""
        risk = {k: float(e[k]) for k in ("cvar_penalty", "drawdown_penalty") if e[k]}
        if e["reward"] != "log_growth":
            if risk:
                raise ConfigError(
                    f"episodic.{next(iter(risk))} applies to reward: log_growth; a custom "
                    f"reward ({e['reward']}) computes its own penalties"
                )
            return import_object(e["reward"], "episodic.reward")
        alpha = float(e["cvar_alpha"])
        return lambda a, p, penalty: log_growth_reward(a, p, penalty, cvar_alpha=alpha, **risk)

    def _tensors(self, split: Any) -> dict[str, torch.Tensor]:
        mask = torch.as_tensor(split.mask, device=self.device)
        y = torch.as_tensor(
            np.where(split.mask, split.y, 0.0), dtype=torch.float32, device=self.device
        )
        prices = torch.cat([torch.ones_like(y[:1]), torch.cumprod(1 + y, dim=0)])
        x = torch.as_tensor(split.x, dtype=torch.float32, device=self.device)
        return {"x": x, "y": y, "mask": mask, "prices": prices}

    def allocations(
        self, x: torch.Tensor, mask: torch.Tensor, model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        """(..., assets, features) -> allocations (..., assets); missing assets get 0."""
        with torch.autocast(
            self.device.type,
            dtype=torch.bfloat16 if self.amp == "bf16" else torch.float16,
            enabled=bool(self.amp),
        ):
            scores = (self.model if model is None else model)(x).squeeze(-1).float()
        return to_allocations(scores, mask, self.e["transform"])

    def step(self, measure: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
        """One optimizer step on a batch of episodes: (rewards, turnover per episode), or None
        when ``trainer.on_nan: skip`` skipped it. ``measure``: keep the gradient norm."""
        t, e = self.splits["train"], self.e
        window, n = int(e["window"]), int(e["batch_episodes"])
        starts = torch.randint(
            0, t["x"].shape[0] - window + 1, (n,), generator=self.gen, device=self.device
        )
        idx = starts[:, None] + torch.arange(window, device=self.device)
        alloc = self.allocations(t["x"][idx], t["mask"][idx], self.train_model)
        rewards = self.reward_fn(alloc, t["prices"][idx], float(e["transition_penalty"]))
        loss = -rewards.mean()
        if self.skip_nan and not bool(torch.isfinite(loss)):  # a per-step sync, skip mode only
            self.skipped_steps += 1
            self.optimizer.zero_grad(set_to_none=True)
            return None
        self.scaler.scale(loss).backward()
        self._optimizer_step(measure)
        self.episodes += n
        turnover = (alloc[:, 1:] - alloc[:, :-1]).abs().sum(-1).mean(-1)
        return rewards.detach(), turnover.detach()

    def _optimizer_step(self, measure: bool) -> None:
        clip = self.cfg["trainer"]["grad_clip"]
        if clip or measure:
            self.scaler.unscale_(self.optimizer)  # a no-op without fp16
            params = list(self.model.parameters())
            norm = (
                torch.nn.utils.clip_grad_norm_(params, clip)
                if clip
                else torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
            )
            self.grad_norm = float(norm) if measure else None
        self.scaler.step(self.optimizer)  # skips a step whose fp16 gradients overflowed
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.steps += 1
        if self.sched_per_step:
            self.scheduler.step()

    def check_finite(self, value: float, epoch: int) -> None:
        if not math.isfinite(value):
            raise NonFiniteLossError(
                f"non-finite episode reward in epoch {epoch} by step {self.steps} "
                "(trainer.on_nan: fail); lower optim.lr, set trainer.grad_clip, or "
                "trainer.on_nan: skip"
            )

    def warm_start(self, epochs: int) -> list[float]:
        """Supervised epochs: the model's scores regress on next-period returns (MSE, in
        percent). Returns each epoch's mean loss."""
        t = self.splits["train"]
        batch = max(1, int(self.cfg["trainer"]["batch_size"]))
        losses = []
        for _ in range(epochs):
            perm = torch.randperm(t["x"].shape[0], generator=self.gen, device=self.device)
            total = torch.zeros((), device=self.device)
            for i in range(0, len(perm), batch):
                idx = perm[i : i + batch]
                pred = self.model(t["x"][idx]).squeeze(-1)
                m = t["mask"][idx]
                loss = ((pred - t["y"][idx] * 100) ** 2 * m).sum() / m.sum().clamp_min(1)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total = total + loss.detach()
            losses.append(float(total) / math.ceil(len(perm) / batch))
        self.optimizer.zero_grad(set_to_none=True)
        return losses

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
            "loss": -reward,
            "reward": reward,
            "sharpe": m["sharpe"],
            "annual_return": m["annual_return"],
            "max_drawdown": m["max_drawdown"],
            "cumulative_return": m["cumulative_return"],
            "turnover": m["avg_turnover"],
        }

    def checkpoint(self, state: EpisodicState | None = None) -> dict[str, Any]:
        """Everything ``--resume`` needs to continue: model, optimizer, schedule, scaler, the
        episode sampler's generator and RNG states, and the epoch bookkeeping."""
        st = state or EpisodicState()
        rng: dict[str, Any] = {"torch": torch.get_rng_state(), "generator": self.gen.get_state()}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {
            "format": 1,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "grad_scaler": self.scaler.state_dict(),
            "rng": rng,
            "epoch": st.epoch,
            "batch": st.batch,
            "step": self.steps,
            "episodes": self.episodes,
            "skipped_steps": self.skipped_steps,
            "rewards": st.rewards.cpu(),
            "turnovers": st.turnovers.cpu(),
            "best": st.best,
            "best_epoch": st.best_epoch,
            "stale_epochs": st.stale_epochs,
            "es_best": st.es_best,
            "history": st.history,
            "data_scaler": self.data.scaler,
            "model_spec": self.spec,
            "task": "allocation",
            "n_classes": None,
            "config": redact(self.cfg),
        }

    def save(self, path: Path, state: EpisodicState | None = None) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(self.checkpoint(state), tmp)
        tmp.replace(path)

    def restore(self, path: Path, state: EpisodicState) -> None:
        self.load(torch.load(path, map_location=self.device, weights_only=True), state)

    def snapshot(self) -> dict[str, Any]:
        """The trainer as built (:meth:`checkpoint`, copied, and the NumPy and Python random
        states seed_everything set), for the preflight to rewind to."""
        import random

        from runlab.train.supervised import host_copy

        built = host_copy(self.checkpoint())
        built["rng_host"] = (np.random.get_state(), random.getstate())
        return built

    def rewind(self, built: dict[str, Any]) -> None:
        import random

        self.load(built, EpisodicState())
        np.random.set_state(built["rng_host"][0])
        random.setstate(built["rng_host"][1])
        self.grad_norm = None

    def load(self, ckpt: dict[str, Any], state: EpisodicState) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["grad_scaler"])
        self.steps, self.episodes = int(ckpt["step"]), int(ckpt["episodes"])
        self.skipped_steps = int(ckpt["skipped_steps"])
        st = state
        st.epoch, st.batch = int(ckpt["epoch"]), int(ckpt["batch"])
        st.rewards, st.turnovers = ckpt["rewards"].float(), ckpt["turnovers"].float()
        st.best, st.best_epoch = ckpt["best"], ckpt["best_epoch"]
        st.stale_epochs, st.es_best = ckpt["stale_epochs"], ckpt["es_best"]
        st.history = list(ckpt["history"])
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"].cpu())
        self.gen.set_state(rng["generator"].cpu())
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])


@dataclass
class EpisodicState:
    epoch: int = 1  # the epoch being trained, 1-based
    batch: int = 0  # optimizer steps of it already done
    rewards: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # the epoch's so far
    turnovers: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    best: float | None = None
    best_epoch: int | None = None
    stale_epochs: int = 0
    es_best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class EpisodicEpochs(EpochTrainer):
    """The episodic trainer behind the shared epoch bookkeeping: an epoch is
    ``episodes_per_epoch`` episodes in batches of ``batch_episodes`` (at most
    ``trainer.limit_train_batches`` steps); the monitor defaults to ``val.reward``, maximised.
    Every ``trainer.log_every`` steps, loss, reward, lr and gradient norm go to steps.jsonl."""

    def __init__(self, cfg: dict[str, Any], trainer: EpisodicTrainer) -> None:
        self.cfg, self.trainer = cfg, trainer
        self.state, self.model = EpisodicState(), trainer.model
        t = cfg["trainer"]
        self.steps_per_epoch = trainer.steps_per_epoch
        self.compiled = trainer.train_model is not trainer.model
        self.log_every = int(t["log_every"])
        monitor = t["monitor"]
        self.monitor = monitor if monitor != "val.loss" else "val.reward"  # a sensible default
        self.mode = t["mode"] or (
            "max" if self.monitor.endswith(".reward") else monitor_mode(self.monitor)
        )
        self.seconds = 0.0
        self.history_rewards = torch.zeros(0)

    def attach(self, run: Run, view: ProgressView, diagnostics: Any) -> None:
        self.run, self.view, self.diagnostics = run, view, diagnostics

    def train_epoch(self, epoch: int) -> dict[str, float]:
        st, trainer = self.state, self.trainer
        rewards, turnovers = [st.rewards.to(trainer.device)], [st.turnovers.to(trainer.device)]
        skipped = trainer.skipped_steps
        while st.batch < self.steps_per_epoch:
            if self.paused():
                break
            logged = (trainer.steps + 1) % self.log_every == 0
            out = trainer.step(measure=logged)
            st.batch += 1
            if out is not None:
                rewards.append(out[0])
                turnovers.append(out[1])
                if logged:
                    self._log_step(epoch, out[0])
            if self.view.live:
                self.view.tick(epoch, st.batch)
        st.rewards, st.turnovers = torch.cat(rewards).float(), torch.cat(turnovers).float()
        if self.paused():
            return {}
        if trainer.skipped_steps > skipped:
            self.diagnostics.skipped_steps(epoch, trainer.skipped_steps)
        reward = float(st.rewards.mean()) if len(st.rewards) else float("nan")
        if not trainer.skip_nan:
            trainer.check_finite(reward, epoch)
        self.history_rewards = st.rewards.cpu()
        turnover = float(st.turnovers.mean()) if len(st.turnovers) else float("nan")
        return {"loss": -reward, "reward": reward, "turnover": turnover}

    def _log_step(self, epoch: int, rewards: torch.Tensor) -> None:
        trainer = self.trainer
        reward = float(rewards.mean())  # the host sync, once per log_every steps
        if not trainer.skip_nan:
            trainer.check_finite(reward, epoch)
        record = {"loss": -reward, "reward": reward, "lr": self.lr()}
        if trainer.grad_norm is not None:
            record["grad_norm"] = trainer.grad_norm
            if not math.isfinite(trainer.grad_norm):
                self.diagnostics.nonfinite_gradient(epoch, trainer.steps, trainer.grad_norm)
        self.run.log(record, step=trainer.steps)
        self.run.progress(epoch=epoch, step=(epoch - 1) * self.steps_per_epoch + self.state.batch)
        self.view.step(epoch, self.state.batch, -reward)

    def evaluate(self, split: str) -> dict[str, Any]:
        return self.trainer.evaluate(split)

    def save(self, path: Path) -> None:
        self.trainer.save(path, self.state)

    def restore(self, path: Path) -> dict[str, Any]:
        self.trainer.restore(path, self.state)
        st = self.state
        return {"epoch": st.epoch, "batch": st.batch, "step": self.trainer.steps}

    def lr(self) -> float:
        return float(self.trainer.optimizer.param_groups[0]["lr"])

    def next_epoch(self, epoch: int) -> None:
        st = self.state
        st.epoch, st.batch = epoch + 1, 0
        st.rewards, st.turnovers = torch.zeros(0), torch.zeros(0)

    def after_epoch(self, value: float | None) -> None:
        trainer = self.trainer
        step_epoch_schedule(trainer.scheduler, trainer.sched_per_step, value, self.mode)

    def epoch_extra(
        self, train_seconds: float, epoch_seconds: float, lr: float | None
    ) -> dict[str, Any]:
        self.seconds += train_seconds
        episodes = self.steps_per_epoch * int(self.cfg["episodic"]["batch_episodes"])
        return {
            "lr": lr,
            "epoch_time_s": round(epoch_seconds, 4),
            "episodes_per_s": round(episodes / max(train_seconds, 1e-9), 1),
        }

    def epoch_summary(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"train_loss": metrics["train"]["loss"], "val_loss": metrics["val"].get("loss")}

    def finish(self, run: Run, stopped_early: bool) -> None:
        trainer, st, rewards = self.trainer, self.state, self.history_rewards
        val = trainer.evaluate("val")
        last = st.history[-1] if st.history else {}
        summary: dict[str, Any] = {
            "train_loss": last.get("train.loss"),
            "val_loss": last.get("val.loss"),
            "reward_mean": float(rewards.mean()) if len(rewards) else None,
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
            "epochs_run": len(st.history),
            "stopped_early": stopped_early,
            "skipped_steps": trainer.skipped_steps,
        }
        if "test" in trainer.splits:
            summary["test"] = trainer.evaluate("test")
        run.summary.update(summary)
        epoch_figures(run, st.history, self.cfg)


def fit_episodic(
    cfg: dict[str, Any], run: Run, data: Dataset, device: torch.device, seed: int, **options: Any
) -> EpisodicTrainer:
    """:func:`train_episodic` with the context as keywords (``resume``, ``show_progress``,
    ``progress_to_stderr``, ``callbacks``, ``baseline``, ``alerts``)."""
    options["callbacks"] = list(options.get("callbacks") or [])
    return train_episodic(cfg, run, LoopContext(device=device, seed=seed, data=data, **options))


def train_episodic(cfg: dict[str, Any], run: Run, ctx: LoopContext) -> EpisodicTrainer:
    """Train ``cfg`` in ``run`` with the episodic trainer and the shared epoch bookkeeping;
    first the warm start (``episodic.warm_start_epochs``), unless resuming."""
    trainer = trainer_for(EpisodicTrainer, cfg, ctx.dataset(cfg), ctx.device, ctx.seed)
    ctx.record_data(run, trainer.data)
    ctx.init_weights(trainer.model, run)
    for warning in trainer.warnings:
        run.event("on_warning", message=warning)
    warm = int(cfg["episodic"]["warm_start_epochs"])
    if warm and not ctx.resume:
        _warm_start(run, trainer, warm)
    run_epochs(cfg, run, EpisodicEpochs(cfg, trainer), ctx)
    return trainer


def _warm_start(run: Run, trainer: EpisodicTrainer, epochs: int) -> None:
    """The warm start's own record: each epoch's loss (metrics.json's ``warm_start``) and its
    weights (checkpoints/warm_start.pt), before the first episodic epoch."""
    losses = trainer.warm_start(epochs)
    path = run.checkpoint_path("warm_start")
    trainer.save(path)
    run.summary.update(
        warm_start={"epochs": epochs, "loss": losses, "checkpoint": "checkpoints/warm_start.pt"}
    )
    run.event("on_warm_start", epochs=epochs, loss=losses[-1], path="checkpoints/warm_start.pt")
