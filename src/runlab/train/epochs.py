"""The epoch bookkeeping every built-in loop shares, once: progress, the gates and diagnostics,
stop and preemption requests, the monitored best, early stopping, the epoch's record and
summary, last/best/every-N checkpoints, the console line, the epoch callbacks, and at the end
the best weights loaded back.

A loop implements :class:`EpochTrainer` (train one epoch, evaluate a split, save and restore
its state, say what its epoch adds) and calls :func:`run_epochs`. The order of the writes is
the durable one: an epoch's record (scalars.csv, metrics.json) before the checkpoint that
claims it, so that a kill between them resumes from the previous last.pt and redoes the epoch.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from runlab.tracking.run import Run
from runlab.train.context import LoopContext
from runlab.train.progress import ProgressView, epoch_line


class EpochTrainer:
    """What :func:`run_epochs` needs from a loop's trainer. ``state`` holds at least
    ``epoch`` (the next to train, 1-based), ``best``, ``best_epoch``, ``stale_epochs``,
    ``es_best`` and ``history``, and is saved with the checkpoint."""

    state: Any
    model: Any
    monitor: str = "val.loss"
    mode: str = "min"  # max: a larger monitored value is better
    steps_per_epoch: int = 1
    compiled: bool = False  # trains a torch.compile'd model (trainer.compile)

    def attach(self, run: Run, view: ProgressView, diagnostics: Any) -> None:
        """Called once before the first epoch: what the trainer reports to while it trains."""

    def train_epoch(self, epoch: int) -> dict[str, float]:
        """Train epoch ``epoch`` until done or until :meth:`paused` says so; its train
        metrics (a paused epoch's are ignored)."""
        raise NotImplementedError

    def paused(self) -> bool:
        """Asked between steps: stop the epoch now (set by :func:`run_epochs`)."""
        return False

    def evaluate(self, split: str) -> dict[str, Any]:
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """The whole state to ``path`` (atomically): what ``--resume`` continues from."""
        raise NotImplementedError

    def restore(self, path: Path) -> dict[str, Any]:
        """Load ``path``; returns the position for the ``on_resume_checkpoint`` event."""
        raise NotImplementedError

    def lr(self) -> float | None:
        return None

    def next_epoch(self, epoch: int) -> None:
        """Epoch ``epoch`` is complete: the state moves to the next one."""
        self.state.epoch = epoch + 1

    def after_epoch(self, value: float | None) -> None:
        """Before last.pt is saved (a learning-rate schedule steps on the monitored value)."""

    def epoch_extra(
        self, train_seconds: float, epoch_seconds: float, lr: float | None
    ) -> dict[str, Any]:
        """Columns on every scalars.csv row of the epoch (lr, epoch_time_s, throughput);
        ``lr`` is the learning rate the epoch trained with."""
        return {"epoch_time_s": round(epoch_seconds, 4)}

    def epoch_summary(self, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The summary's entries for the epoch besides last/best epoch, best, monitor, val."""
        return {}

    def finish(self, run: Run, stopped_early: bool) -> None:
        """After the last epoch, with the best weights loaded: the run's final summary."""


def split_metric(name: str, metrics: dict[str, dict[str, Any]]) -> float | None:
    split, _, key = name.partition(".")
    value = metrics.get(split, {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def improved(value: float | None, best: float | None, mode: str, delta: float = 0.0) -> bool:
    """Is ``value`` better than ``best`` by more than ``delta``? (NaN and None never are.)"""
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best - delta if mode == "min" else value > best + delta


def copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def run_epochs(cfg: dict[str, Any], run: Run, trainer: EpochTrainer, ctx: LoopContext) -> bool:
    """Train ``trainer`` epoch by epoch in ``run``; False when the run was preempted (last.pt
    saved mid-epoch: no summary or final evaluation yet, ``--resume`` continues)."""
    from runlab.monitor.attach import watchers

    st, epochs = trainer.state, int(cfg["trainer"]["epochs"])
    last = run.checkpoint_path("last")
    history = None
    if ctx.resume:
        position = trainer.restore(last)
        run.truncate_epochs(st.epoch)
        run.event("on_resume_checkpoint", **position)
        history = [r for r in _scalar_rows(run) if int(r["epoch"]) < st.epoch]
    run.cooperative_signals = True  # SIGTERM: finish the step, save last.pt, end preempted
    watch, diagnostics = watchers(
        cfg,
        run,
        trainer.monitor,
        epochs,
        ctx.baseline,
        ctx.alerts,
        lr=trainer.lr,
        history=history,
    )
    callbacks = [*watch, *ctx.callbacks]
    run.progress(total_epochs=epochs, total_steps=epochs * trainer.steps_per_epoch)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    run.update_info(device=str(ctx.device), parameters=parameters, compiled=trainer.compiled)
    view = ProgressView(
        run, epochs, trainer.steps_per_epoch, ctx.show_progress, ctx.progress_to_stderr
    )
    trainer.paused = lambda: run.preempt_requested or run.stop_requested  # type: ignore[method-assign]
    trainer.attach(run, view, diagnostics)
    try:
        outcome = _epochs(cfg, run, trainer, epochs, callbacks, view)
    finally:
        view.close()
    if outcome == "preempted":
        return False
    _load_best(run, trainer)
    trainer.finish(run, stopped_early=outcome == "early_stop")
    return True


def _epochs(
    cfg: dict[str, Any],
    run: Run,
    trainer: EpochTrainer,
    epochs: int,
    callbacks: list[Any],
    view: ProgressView,
) -> str:
    """The epoch loop: ``done``, ``stopped``, ``early_stop`` or ``preempted``."""
    st, es = trainer.state, cfg["trainer"]["early_stopping"]
    es_monitor = es["monitor"] or trainer.monitor
    while st.epoch <= epochs:
        epoch, t0 = st.epoch, time.perf_counter()
        run.progress(epoch=epoch)
        train = trainer.train_epoch(epoch)
        if run.preempt_requested or run.stop_requested:
            trainer.save(run.checkpoint_path("last"))
            reason = "stopped" if run.stop_requested else "preempted"
            run.event(
                "on_checkpoint",
                epoch=epoch,
                batch=getattr(st, "batch", None),
                path="checkpoints/last.pt",
                reason=reason,
            )
            return reason  # a preempted run resumes later: no summary, figures or test yet
        train_seconds = time.perf_counter() - t0
        val = trainer.evaluate("val")
        metrics = {"train": train, "val": {k: v for k, v in val.items() if not k.startswith("_")}}
        value = split_metric(trainer.monitor, metrics)
        better = improved(value, st.best, trainer.mode)
        if better:
            st.best, st.best_epoch = value, epoch
        _early_stopping_state(trainer, es, split_metric(es_monitor, metrics))
        st.history.append(
            {"epoch": epoch, **{f"{s}.{k}": v for s, d in metrics.items() for k, v in d.items()}}
        )
        trainer.next_epoch(epoch)
        lr_used = trainer.lr()
        # the schedule steps before last.pt is saved: a resume starts the next epoch with the
        # learning rate it would have had (a gate or `runlab stop` can end any epoch)
        trainer.after_epoch(value)
        epoch_seconds = time.perf_counter() - t0
        extra = trainer.epoch_extra(train_seconds, epoch_seconds, lr_used)
        # The epoch's record is durable before the checkpoint that claims the epoch: a kill
        # between them resumes from the previous last.pt and redoes (and rewrites) it. The
        # summary first, so that the metrics.json written with the row is the epoch's.
        run.summary.update(
            **trainer.epoch_summary(metrics),
            last_epoch=epoch,
            best_epoch=st.best_epoch,
            best=st.best,
            monitor=trainer.monitor,
            val=metrics["val"],
        )
        run.log_epoch(epoch, metrics, summarize=False, **extra)
        _save_checkpoints(cfg, run, trainer, epoch, better)
        view.epoch(epoch_line(epoch, epochs, metrics, epoch_seconds))
        for callback in callbacks:
            callback(epoch, metrics)
        if run.stop_requested:  # a gate failed, or `runlab stop` came during validation
            return "stopped"
        if es["patience"] is not None and st.stale_epochs >= int(es["patience"]):
            run.event("on_early_stop", epoch=epoch, monitor=es_monitor, patience=es["patience"])
            return "early_stop"
    return "done"


def _early_stopping_state(trainer: EpochTrainer, es: dict[str, Any], value: float | None) -> None:
    """Did the early-stopping monitor improve by more than min_delta? (stale epochs count)"""
    from runlab.train.optim import monitor_mode

    st = trainer.state
    monitor = es["monitor"] or trainer.monitor
    mode = es["mode"] or (trainer.mode if monitor == trainer.monitor else monitor_mode(monitor))
    if improved(value, st.es_best, mode, float(es["min_delta"])):
        st.es_best, st.stale_epochs = value, 0
    else:
        st.stale_epochs += 1


def _save_checkpoints(
    cfg: dict[str, Any], run: Run, trainer: EpochTrainer, epoch: int, better: bool
) -> None:
    last = run.checkpoint_path("last")
    trainer.save(last)
    saved = ["checkpoints/last.pt"]
    if better:
        copy_atomic(last, run.checkpoint_path("best"))
        saved.append("checkpoints/best.pt")
    every, keep = cfg["checkpoint"]["every"], cfg["checkpoint"]["keep"]
    if keep or (every and epoch % int(every) == 0):
        copy_atomic(last, run.checkpoint_path(epoch))
        saved.append(f"checkpoints/epoch_{epoch:04d}.pt")
    run.event("on_checkpoint", epoch=epoch, paths=saved, best=better)


def _load_best(run: Run, trainer: EpochTrainer) -> None:
    """checkpoints/model.pt -> best.pt, and the best weights back in the model."""
    import torch

    best, link = run.checkpoint_path("best"), run.checkpoint_path("model")
    if not best.exists():
        return
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    try:
        link.symlink_to(best.name)
    except OSError:
        shutil.copyfile(best, link)
    ckpt = torch.load(best, map_location="cpu", weights_only=True)  # copied to the model's device
    trainer.model.load_state_dict(ckpt["model"])


def _scalar_rows(run: Run) -> list[dict[str, Any]]:
    from runlab.tracking.scalars import read_scalars

    return read_scalars(run.dir / "scalars.csv")
