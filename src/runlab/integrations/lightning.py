"""A PyTorch Lightning logger that writes a runlab run directory, for users who keep their own
``LightningModule`` and ``Trainer``::

    from runlab.integrations.lightning import RunlabLogger

    trainer = L.Trainer(logger=RunlabLogger(root="runs", name="mnist"), max_epochs=10)
    trainer.fit(model, datamodule)

What lands where:

- ``log_hyperparams`` (``save_hyperparameters``) -> config.yaml, secrets redacted;
- every ``log_metrics`` call -> a steps.jsonl record at Lightning's step;
- one scalars.csv row per epoch and split, from the metrics logged during the epoch: a name's
  prefix gives the split (``train``/``val``/``valid``/``validation``/``test`` then ``_`` or
  ``/``; anything else is ``train``), ``_epoch`` is dropped (the epoch mean wins over the last
  step's value) and ``*_step`` names stay step-only;
- checkpoints' paths (best, last, best score) -> ``on_checkpoint`` events and metrics.json;
  ModelCheckpoint's default folder is the run's own ``checkpoints/``;
- the end of ``fit`` -> the run's final status: finished; failed (with the traceback) on an
  exception; stopped on Ctrl-C; an ``on_early_stop`` event and ``stopped_early`` in
  metrics.json when an ``EarlyStopping`` callback ended it.
- ``trainer.test`` / ``validate`` after ``fit`` add to the run instead of replacing it: their
  metrics go to the fit's last epoch (a name without a split prefix gets the phase's split) and
  to metrics.json; ``duration_seconds`` adds the phase's time; ``last_epoch``, the early stop
  and the fit's status stay (a phase that raises makes the run ``failed``, with its traceback).

Everything a :class:`runlab.Run` takes also works here (``tags``, ``sinks``, ``sink_options``...),
so a Lightning run mirrors to TensorBoard, W&B and MLflow like any other.
"""

from __future__ import annotations

import re
import sys
from argparse import Namespace
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from runlab._imports import require

require("lightning", "lightning", "runlab.integrations.lightning")

from lightning.fabric.loggers.logger import rank_zero_experiment  # noqa: E402
from lightning.pytorch.loggers.logger import Logger  # noqa: E402
from lightning.pytorch.utilities import rank_zero_only  # noqa: E402

from runlab.tracking.run import Run  # noqa: E402

_SPLIT = re.compile(r"^(train|training|val|valid|validation|test)[_/](.+)$")
_SPLIT_NAME = {"training": "train", "valid": "val", "validation": "val"}


def split_metric(key: str, default: str = "train") -> tuple[str, str] | None:
    """``val_loss`` -> (val, loss); ``train/acc_epoch`` -> (train, acc); ``loss_step`` -> None;
    a name without a split prefix gets ``default``."""
    if key.endswith("_step"):
        return None
    key = key.removesuffix("_epoch")
    match = _SPLIT.match(key)
    if match is None:
        return default, key
    return _SPLIT_NAME.get(match.group(1), match.group(1)), match.group(2)


def _calling_trainer() -> Any:
    """The Lightning Trainer that is calling the logger, from the call stack: Lightning gives a
    logger no reference to its trainer, and the phase (fit, test, ...) and the early-stopping
    callback are only there. None when it cannot be found."""
    from lightning.pytorch import Trainer

    frame: FrameType | None = sys._getframe(1)
    for _ in range(16):
        if frame is None:
            return None
        for name in ("trainer", "self"):
            value = frame.f_locals.get(name)
            if isinstance(value, Trainer):
                return value
        frame = frame.f_back
    return None


def _phase() -> str:
    """``fit``, ``validate``, ``test`` or ``predict`` (``fit`` when unknown)."""
    trainer = _calling_trainer()
    fn = getattr(getattr(trainer, "state", None), "fn", None)
    return str(getattr(fn, "value", fn) or "fit")


class RunlabLogger(Logger):
    """Lightning logger writing ``<root>/<run id>/``. The run starts when Lightning first asks
    for it (``trainer.fit`` does, at setup)."""

    def __init__(
        self,
        root: str | Path | None = None,
        name: str | None = None,
        config: Any = None,
        tags: Mapping[str, Any] | None = None,
        **run_options: Any,
    ) -> None:
        super().__init__()
        self._root, self._name, self._config = root, name, config
        self._tags, self._options = tags, run_options
        self._run: Run | None = None
        self._epoch: int | None = None
        self._pending: dict[str, dict[str, float]] = {}
        self._fit_epoch: int | None = None  # the last epoch fit recorded
        self._ended_as: str | None = None  # the status the run had before a later phase

    # ------------------------------------------------------------------ the run
    @property
    @rank_zero_experiment
    def experiment(self) -> Run:
        """The :class:`runlab.Run` (created and started on first use)."""
        return self._ensure(reopen=False)

    def _ensure(self, reopen: bool = True) -> Run:
        """The run; one that has ended is reopened when there is something new to record."""
        from runlab.sinks.mirror import with_mirrors

        if self._run is None:
            self._run = Run(
                root=self._root,
                name=self._name or "lightning",
                config=self._config,
                tags=self._tags,
                handle_signals=False,  # Lightning has its own SIGTERM handling
                **with_mirrors(self._options, self._config),
            ).start()
        elif reopen and self._run.status.value != "running":
            self._ended_as = self._run.status.value
            options = with_mirrors(self._options, self._config)
            self._run = Run.reopen(self._run.dir, **options).start()
        return self._run

    # ModelCheckpoint saves to save_dir/name/version/checkpoints: here <root>/<run id>/checkpoints
    @property
    def save_dir(self) -> str:
        return str(self._ensure(reopen=False).dir.parent)

    @property
    def name(self) -> str:
        return self._ensure(reopen=False).id

    @property
    def version(self) -> str:
        return ""

    @property
    def log_dir(self) -> str:
        return str(self._ensure(reopen=False).dir)

    # ------------------------------------------------------------------ Logger API
    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **_: Any) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        run = self._ensure()
        config = dict(run.config) if isinstance(run.config, Mapping) else {}
        config.update(values)
        run.set_config(config)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        run = self._ensure()
        values = {k: float(v) for k, v in metrics.items() if k != "epoch"}
        if values:
            run.log(values, step=step)
        epoch = metrics.get("epoch")
        if epoch is None:
            return
        phase = _phase()
        if phase != "fit" and self._fit_epoch is not None:
            epoch = self._fit_epoch  # a test after fit describes the model fit left
        epoch = int(epoch)
        if self._epoch is not None and epoch != self._epoch:
            self._flush_epoch()
        self._epoch = epoch
        for key, value in values.items():
            parts = split_metric(key, "train" if phase == "fit" else phase)
            if parts is not None:
                self._pending.setdefault(parts[0], {})[parts[1]] = value
        if phase == "fit":
            run.progress(epoch=epoch)

    def _flush_epoch(self) -> None:
        if self._run is not None and self._epoch is not None and self._pending:
            later = self._ended_as is not None  # a phase after fit: last_epoch stays
            self._run.log_epoch(self._epoch, self._pending, summarize=not later)
            if later:
                for split, values in self._pending.items():
                    for key, value in values.items():
                        self._run.summary[f"{split}_{key}"] = value
            else:
                self._fit_epoch = self._epoch
        self._pending = {}

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        best = getattr(checkpoint_callback, "best_model_path", "") or None
        last = getattr(checkpoint_callback, "last_model_path", "") or None
        score = getattr(checkpoint_callback, "best_model_score", None)
        run = self._ensure()
        fields: dict[str, Any] = {"best_checkpoint": best, "last_checkpoint": last}
        if score is not None:
            fields["best_score"] = float(score)
            fields["monitor"] = getattr(checkpoint_callback, "monitor", None)
        run.event("on_checkpoint", **fields)
        for key, value in fields.items():
            if value is not None:
                run.summary[key] = value

    @rank_zero_only
    def finalize(self, status: str) -> None:
        run = self._run
        if run is None or run.status.value != "running":
            return
        self._flush_epoch()
        self._epoch = None
        if self._ended_as is None:
            self._record_early_stop(run, _calling_trainer())
        exc = sys.exc_info()[1]  # Lightning calls finalize("failed") inside its except block
        if status == "failed" and exc is not None:
            run.finish(exc=exc)
        elif status == "failed":
            run.finish("failed")
        else:  # a later phase leaves the status fit ended with (finished, stopped, ...)
            run.finish(self._ended_as)

    def _record_early_stop(self, run: Run, trainer: Any) -> None:
        callback = getattr(trainer, "early_stopping_callback", None)
        stopped = int(getattr(callback, "stopped_epoch", 0) or 0)
        if callback is None:
            return
        run.summary["stopped_early"] = stopped > 0
        if stopped > 0:
            run.event(
                "on_early_stop",
                epoch=stopped,
                monitor=getattr(callback, "monitor", None),
                patience=getattr(callback, "patience", None),
            )
