"""Run the supervised trainer inside a Run through the shared epoch bookkeeping
(runlab.train.epochs): the trainer computes; this module adds what is supervised only (step
logs, the schedule, throughput, the final summary, the test split, figures)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import torch

from runlab.tracking.run import Run
from runlab.train.context import LoopContext
from runlab.train.data import Dataset
from runlab.train.epochs import EpochTrainer, run_epochs
from runlab.train.figures import epoch_figures
from runlab.train.handover import trainer_for
from runlab.train.optim import step_epoch_schedule
from runlab.train.progress import ProgressView
from runlab.train.supervised import SupervisedTrainer


class SupervisedEpochs(EpochTrainer):
    """The supervised trainer behind the shared epoch bookkeeping: it adds the step logs
    (loss, lr, grad norm every ``log_every`` steps), the learning-rate schedule, throughput
    and memory columns, and the final summary, test evaluation and figures."""

    def __init__(self, trainer: SupervisedTrainer, device: torch.device) -> None:
        self.trainer, self.device = trainer, device
        self.state, self.model = trainer.state, trainer.model
        self.monitor, self.mode = trainer.monitor, trainer.mode
        self.steps_per_epoch = trainer.steps_per_epoch
        self.compiled = trainer.train_model is not trainer.model
        self.train_seconds, self.samples = 0.0, 0

    def attach(self, run: Run, view: ProgressView, diagnostics: Any) -> None:
        trainer, st = self.trainer, self.state
        self.diagnostics = diagnostics
        trainer.pause_requested = self.paused

        def on_log_step(loss: torch.Tensor) -> None:
            value = float(loss.detach())  # the host sync, once per log_every steps
            record = {"loss": value, "lr": trainer.optimizer.param_groups[0]["lr"]}
            if trainer.grad_norm is not None:
                record["grad_norm"] = norm = float(trainer.grad_norm)
                if not math.isfinite(norm):
                    diagnostics.nonfinite_gradient(st.epoch, st.step, norm)
            run.log(record, step=st.step)
            run.progress(epoch=st.epoch, step=(st.epoch - 1) * self.steps_per_epoch + st.batch)
            view.step(st.epoch, st.batch, value)

        trainer.on_log_step = on_log_step
        trainer.on_batch = view.tick if view.live else None

    def train_epoch(self, epoch: int) -> dict[str, float]:
        st, trainer = self.state, self.trainer
        skipped_before = st.skipped_steps
        loss_sum = trainer.train_batches()
        if st.skipped_steps > skipped_before:
            self.diagnostics.skipped_steps(epoch, st.skipped_steps)
        counted = max(1, self.steps_per_epoch - (st.skipped_steps - skipped_before))
        out = {"loss": float(loss_sum) / counted}
        for name, total in trainer.term_sums.items():  # each term of a composite loss
            out[f"loss_{name}"] = float(total) / counted
        trainer.term_sums = {}
        return out

    def evaluate(self, split: str) -> dict[str, Any]:
        limit = self.trainer.cfg["trainer"]["limit_val_batches"]
        return self.trainer.evaluate(split, max_batches=limit if split == "val" else None)

    def save(self, path: Path) -> None:
        self.trainer.save(path)

    def restore(self, path: Path) -> dict[str, Any]:
        self.trainer.restore(path)
        return {"epoch": self.state.epoch, "batch": self.state.batch, "step": self.state.step}

    def lr(self) -> float:
        return float(self.trainer.optimizer.param_groups[0]["lr"])

    def next_epoch(self, epoch: int) -> None:
        st = self.state
        st.epoch, st.batch, st.perm, st.loss_sum = epoch + 1, 0, None, None

    def after_epoch(self, value: float | None) -> None:
        trainer = self.trainer
        step_epoch_schedule(trainer.scheduler, trainer.sched_per_step, value, trainer.mode)

    def epoch_extra(
        self, train_seconds: float, epoch_seconds: float, lr: float | None
    ) -> dict[str, Any]:
        self.train_seconds += train_seconds
        self.samples += self.trainer.samples_per_epoch
        extra: dict[str, Any] = {
            "lr": lr,
            "epoch_time_s": round(epoch_seconds, 4),
            "samples_per_s": round(self.trainer.samples_per_epoch / max(train_seconds, 1e-9), 1),
        }
        if self.device.type == "cuda":
            extra["max_memory_mib"] = round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return extra

    def epoch_summary(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"train_loss": metrics["train"]["loss"], "val_loss": metrics["val"].get("loss")}

    def finish(self, run: Run, stopped_early: bool) -> None:
        _finish(self.trainer, run, stopped_early, self.train_seconds, self.samples, self.device)


def fit(
    cfg: dict[str, Any], run: Run, data: Dataset, device: torch.device, seed: int, **options: Any
) -> SupervisedTrainer:
    """:func:`train_supervised` with the context as keywords: ``resume``, ``show_progress``,
    ``progress_to_stderr``, ``callbacks`` (each called as ``cb(epoch, metrics)`` after the
    epoch is recorded, after the gates and diagnostics; one may raise
    :class:`runlab.tracking.run.Pruned`, as a study's pruner does), ``baseline``, ``alerts``."""
    options["callbacks"] = list(options.get("callbacks") or [])
    return train_supervised(cfg, run, LoopContext(device=device, seed=seed, data=data, **options))


def train_supervised(cfg: dict[str, Any], run: Run, ctx: LoopContext) -> SupervisedTrainer:
    """Train ``cfg`` in ``run`` with the supervised trainer and the shared epoch bookkeeping."""
    trainer = trainer_for(SupervisedTrainer, cfg, ctx.dataset(cfg), ctx.device, ctx.seed)
    ctx.record_data(run, trainer.data)
    ctx.init_weights(trainer.model, run)
    for warning in trainer.warnings:
        run.event("on_warning", message=warning)
    run_epochs(cfg, run, SupervisedEpochs(trainer, ctx.device), ctx)
    return trainer


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _finish(
    trainer: SupervisedTrainer,
    run: Run,
    stopped_early: bool,
    train_seconds: float,
    samples: int,
    device: torch.device,
) -> None:
    st = trainer.state
    summary: dict[str, Any] = {}
    last = st.history[-1] if st.history else {}
    summary["train_loss"] = last.get("train.loss")
    summary["val_loss"] = last.get("val.loss")
    summary["best_epoch"] = st.best_epoch
    summary["best"] = st.best
    summary["monitor"] = trainer.monitor
    summary["val"] = {k.removeprefix("val."): v for k, v in last.items() if k.startswith("val.")}
    if "test" in trainer.tensors:
        test = trainer.evaluate("test")
        summary["test"] = {k: v for k, v in test.items() if not k.startswith("_")}
        if "_ic_by_date" in test:
            _write_ic(run, trainer, test)
    summary.update(
        device=str(device),
        samples_per_sec=round(samples / train_seconds, 1) if train_seconds else None,
        epochs_run=len(st.history),
        stopped_early=stopped_early,
        skipped_steps=st.skipped_steps,
        parameters=_parameters(trainer.model),
    )
    if device.type == "cuda":
        summary["max_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    run.summary.update(summary)
    epoch_figures(run, st.history, trainer.cfg)


def _write_ic(run: Run, trainer: SupervisedTrainer, test: dict[str, Any]) -> None:
    dates = trainer.data.dates.get("test") or [str(i) for i in range(len(test["_ic_by_date"]))]
    with open(run.artifact_path("test_ic_by_date.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "ic", "rank_ic"])
        writer.writerows(zip(dates, test["_ic_by_date"], test["_rank_ic_by_date"], strict=False))
