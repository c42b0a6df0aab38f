"""Run the supervised trainer inside a Run: epochs, checkpoints, early stopping, the summary,
figures. The trainer computes; this module records."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from runlab.tracking.run import Run
from runlab.train.data import Dataset
from runlab.train.progress import ProgressView, epoch_line
from runlab.train.supervised import SupervisedTrainer


def _split_metric(name: str, metrics: dict[str, dict[str, Any]]) -> float | None:
    split, _, key = name.partition(".")
    value = metrics.get(split, {}).get(key)
    return float(value) if isinstance(value, (int, float)) else None


def fit(
    cfg: dict[str, Any],
    run: Run,
    data: Dataset,
    device: torch.device,
    seed: int,
    resume: bool = False,
    show_progress: bool = True,
    progress_to_stderr: bool = False,
    callbacks: list[Any] | None = None,
    baseline: Any = None,
    alerts: Any = None,
) -> SupervisedTrainer:
    """``callbacks``: called as ``cb(epoch, metrics)`` after each epoch is recorded, after the
    config's gates and the diagnostics; one may raise :class:`runlab.tracking.run.Pruned` to
    stop the run (a study's pruner does). ``baseline``: a runlab.monitor.Baseline for gates."""
    from runlab.monitor.attach import watchers

    trainer = SupervisedTrainer(cfg, data, device, seed)
    for warning in trainer.warnings:
        run.event("on_warning", message=warning)
    st, t = trainer.state, cfg["trainer"]
    last, best = run.checkpoint_path("last"), run.checkpoint_path("best")
    if resume:
        trainer.restore(last)
        run.truncate_epochs(st.epoch)
        run.event("on_resume_checkpoint", epoch=st.epoch, batch=st.batch, step=st.step)
    run.cooperative_signals = True  # SIGTERM: finish the step, save last.pt, end preempted
    trainer.pause_requested = lambda: run.preempt_requested or run.stop_requested
    epochs = int(t["epochs"])
    history = [r for r in _scalar_rows(run) if int(r["epoch"]) < st.epoch] if resume else None
    watch, diagnostics = watchers(
        cfg,
        run,
        trainer.monitor,
        epochs,
        baseline,
        alerts,
        lr=lambda: float(trainer.optimizer.param_groups[0]["lr"]),
        history=history,
    )
    callbacks = [*watch, *(callbacks or [])]
    run.progress(total_epochs=epochs, total_steps=epochs * trainer.steps_per_epoch)
    run.update_info(device=str(device), parameters=_parameters(trainer.model))
    view = ProgressView(
        run, epochs, trainer.steps_per_epoch, enabled=show_progress, to_stderr=progress_to_stderr
    )

    def on_log_step(loss: torch.Tensor) -> None:
        value = float(loss.detach())  # the host sync, once per log_every steps
        lr = trainer.optimizer.param_groups[0]["lr"]
        record = {"loss": value, "lr": lr}
        if trainer.grad_norm is not None:
            record["grad_norm"] = norm = float(trainer.grad_norm)
            if not math.isfinite(norm):
                diagnostics.nonfinite_gradient(st.epoch, st.step, norm)
        run.log(record, step=st.step)
        run.progress(epoch=st.epoch, step=(st.epoch - 1) * trainer.steps_per_epoch + st.batch)
        view.step(st.epoch, st.batch, value)

    trainer.on_log_step = on_log_step
    trainer.on_batch = view.tick if view.live else None
    train_seconds, samples, stopped_early = 0.0, 0, False
    es = t["early_stopping"]
    es_monitor = es["monitor"] or trainer.monitor
    try:
        while st.epoch <= epochs:
            epoch, t0 = st.epoch, time.perf_counter()
            run.progress(epoch=epoch)
            skipped_before = st.skipped_steps
            loss_sum = trainer.train_batches()
            if run.preempt_requested or run.stop_requested:
                trainer.save(last)
                reason = "stopped" if run.stop_requested else "preempted"
                run.event(
                    "on_checkpoint",
                    epoch=epoch,
                    batch=st.batch,
                    path="checkpoints/last.pt",
                    reason=reason,
                )
                if reason == "preempted":
                    return trainer  # resumed later: no summary, figures or test yet
                break
            if st.skipped_steps > skipped_before:
                diagnostics.skipped_steps(epoch, st.skipped_steps)
            counted = max(1, trainer.steps_per_epoch - (st.skipped_steps - skipped_before))
            train_loss = float(loss_sum) / counted
            seconds = time.perf_counter() - t0
            train_seconds += seconds
            samples += trainer.samples_per_epoch
            val = trainer.evaluate("val")
            metrics = {
                "train": {"loss": train_loss},
                "val": {k: v for k, v in val.items() if not k.startswith("_")},
            }
            value = _split_metric(trainer.monitor, metrics)
            improved = trainer.improved(value)
            if improved:
                st.best, st.best_epoch = value, epoch
            es_value = _split_metric(es_monitor, metrics)
            st.stale_epochs = 0 if _es_improved(trainer, es, es_value) else st.stale_epochs + 1
            st.history.append(
                {
                    "epoch": epoch,
                    **{f"{s}.{k}": v for s, d in metrics.items() for k, v in d.items()},
                }
            )
            st.epoch, st.batch, st.perm, st.loss_sum = epoch + 1, 0, None, None
            lr_used = trainer.optimizer.param_groups[0]["lr"]
            # the scheduler steps before last.pt is saved: a resume starts the next epoch with
            # the learning rate it would have had (a gate or `runlab stop` can end any epoch)
            _step_epoch_scheduler(trainer, value)
            epoch_time = time.perf_counter() - t0
            extra = {
                "lr": lr_used,
                "epoch_time_s": round(epoch_time, 4),
                "samples_per_s": round(trainer.samples_per_epoch / max(seconds, 1e-9), 1),
            }
            if device.type == "cuda":
                extra["max_memory_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
            # The epoch's record is durable before the checkpoint that claims the epoch: a kill
            # between them resumes from the previous last.pt and redoes (and rewrites) it; the
            # other order lost the epoch's row for good. The summary first, so that the
            # metrics.json written with the row is the epoch's.
            run.summary.update(
                train_loss=train_loss,
                val_loss=metrics["val"].get("loss"),
                last_epoch=epoch,
                best_epoch=st.best_epoch,
                best=st.best,
                monitor=trainer.monitor,
                val=metrics["val"],
            )
            run.log_epoch(epoch, metrics, summarize=False, **extra)
            _save_checkpoints(trainer, run, epoch, improved, last, best, cfg)
            view.epoch(epoch_line(epoch, epochs, metrics, epoch_time))
            for callback in callbacks or []:
                callback(epoch, metrics)
            if run.stop_requested:  # a gate failed, or `runlab stop` came during validation
                break
            if es["patience"] is not None and st.stale_epochs >= int(es["patience"]):
                stopped_early = True
                run.event("on_early_stop", epoch=epoch, monitor=es_monitor, patience=es["patience"])
                break
    finally:
        view.close()
    _finish(trainer, run, best, stopped_early, train_seconds, samples, device)
    return trainer


def _scalar_rows(run: Run) -> list[dict[str, Any]]:
    from runlab.tracking.scalars import read_scalars

    return read_scalars(run.dir / "scalars.csv")


def _es_improved(trainer: SupervisedTrainer, es: dict[str, Any], value: float | None) -> bool:
    """Did the early-stopping monitor improve by more than min_delta?"""
    from runlab.train.optim import monitor_mode

    st = trainer.state
    monitor = es["monitor"] or trainer.monitor
    mode = es["mode"] or (trainer.mode if monitor == trainer.monitor else monitor_mode(monitor))
    if value is None:
        return False
    delta = float(es["min_delta"])
    best = st.es_best
    if best is None or (value < best - delta if mode == "min" else value > best + delta):
        st.es_best = value
        return True
    return False


def _save_checkpoints(
    trainer: SupervisedTrainer,
    run: Run,
    epoch: int,
    improved: bool,
    last: Path,
    best: Path,
    cfg: dict[str, Any],
) -> None:
    trainer.save(last)
    saved = ["checkpoints/last.pt"]
    if improved:
        _copy_atomic(last, best)
        saved.append("checkpoints/best.pt")
    every, keep = cfg["checkpoint"]["every"], cfg["checkpoint"]["keep"]
    if keep or (every and epoch % int(every) == 0):
        _copy_atomic(last, run.checkpoint_path(epoch))
        saved.append(f"checkpoints/epoch_{epoch:04d}.pt")
    run.event("on_checkpoint", epoch=epoch, paths=saved, best=improved)


def _copy_atomic(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def _step_epoch_scheduler(trainer: SupervisedTrainer, value: float | None) -> None:
    if trainer.sched_per_step:
        return
    if isinstance(trainer.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if value is not None:
            trainer.scheduler.step(value if trainer.mode == "min" else -value)
    else:
        trainer.scheduler.step()


def _parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _finish(
    trainer: SupervisedTrainer,
    run: Run,
    best: Path,
    stopped_early: bool,
    train_seconds: float,
    samples: int,
    device: torch.device,
) -> None:
    st = trainer.state
    model_link = run.checkpoint_path("model")
    if best.exists():
        with contextlib.suppress(FileNotFoundError):
            model_link.unlink()
        try:
            model_link.symlink_to(best.name)
        except OSError:
            shutil.copyfile(best, model_link)
        ckpt = torch.load(best, map_location=device, weights_only=True)
        trainer.model.load_state_dict(ckpt["model"])
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
    _figures(run, st.history)


def _write_ic(run: Run, trainer: SupervisedTrainer, test: dict[str, Any]) -> None:
    dates = trainer.data.dates.get("test") or [str(i) for i in range(len(test["_ic_by_date"]))]
    with open(run.artifact_path("test_ic_by_date.csv"), "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["date", "ic", "rank_ic"])
        writer.writerows(zip(dates, test["_ic_by_date"], test["_rank_ic_by_date"], strict=False))


def _nan(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def _figures(run: Run, history: list[dict[str, Any]]) -> None:
    if not history:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        run.event(
            "on_warning",
            message="figures skipped: pip install matplotlib (runlab[torch] includes it)",
        )
        return
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in ("train.loss", "val.loss"):
        ax.plot(epochs, [_nan(h.get(key)) for h in history], marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(run.figure_path("losses"), dpi=100)
    plt.close(fig)
    keys = [k for k in history[-1] if k.startswith("val.") and k != "val.loss"]
    if keys:
        fig, axes = plt.subplots(len(keys), 1, figsize=(6, 2.2 * len(keys)), squeeze=False)
        for ax, key in zip(axes[:, 0], keys, strict=True):
            ax.plot(epochs, [_nan(h.get(key)) for h in history], marker="o")
            ax.set_ylabel(key)
        axes[-1, 0].set_xlabel("epoch")
        fig.tight_layout()
        fig.savefig(run.figure_path("metrics"), dpi=100)
        plt.close(fig)
