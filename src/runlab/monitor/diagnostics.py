"""Diagnostics raised without being asked: ``on_warning`` events with a ``code``, once each,
listed in the summary's ``diagnostics`` so ``runlab status`` and ``watch`` show them.

- ``val_peaked_early``: the monitored validation metric was best at the first epoch and has not
  improved for ``patience`` epochs while the training loss kept falling;
- ``prediction_collapse``: ``val.scale`` (std of predictions / std of targets) fell to ~0;
- ``nonfinite_grad``: a non-finite gradient norm at a logged step, or skipped non-finite steps;
- ``lr_zero``: the learning rate reached 0 before the last epoch.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping
from typing import Any

from runlab.evaluators import higher_is_better

COLLAPSE_SCALE = 1e-3  # val.scale below this: the predictions are a constant
PEAK_PATIENCE = 3  # epochs without improvement after a first-epoch best


class Diagnostics:
    def __init__(
        self,
        run: Any,
        monitor: str,
        epochs: int,
        lr: Callable[[], float | None] | None = None,
        patience: int = PEAK_PATIENCE,
    ) -> None:
        self.run, self.monitor, self.epochs, self.lr = run, monitor, epochs, lr
        self.patience = patience
        self.raised: set[str] = {d.get("code") for d in run.summary.get("diagnostics") or []}
        self.first_epoch: int | None = None
        self.best: tuple[int, float] | None = None
        self.train_losses: list[float] = []

    def warn(self, code: str, epoch: int | None, message: str) -> None:
        """Emit diagnostic ``code`` once per run."""
        if code in self.raised:
            return
        self.raised.add(code)
        self.run.event("on_warning", code=code, epoch=epoch, message=message)
        found = list(self.run.summary.get("diagnostics") or [])
        self.run.summary["diagnostics"] = [
            *found,
            {"code": code, "epoch": epoch, "message": message},
        ]

    def __call__(self, epoch: int, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        self._peak(epoch, metrics)
        scale = metrics.get("val", {}).get("scale")
        if isinstance(scale, (int, float)) and math.isfinite(scale) and abs(scale) < COLLAPSE_SCALE:
            self.warn(
                "prediction_collapse",
                epoch,
                f"prediction scale collapsed: val.scale = {scale:.3g} at epoch {epoch} "
                "(predictions are nearly constant)",
            )
        if self.lr is not None and epoch < self.epochs:
            lr = self.lr()
            if lr is not None and (lr <= 0 or lr < 1e-12):
                self.warn(
                    "lr_zero",
                    epoch,
                    f"learning rate reached {lr:g} at epoch {epoch} of {self.epochs}: "
                    "the remaining epochs cannot learn (check schedule)",
                )

    def _peak(self, epoch: int, metrics: Mapping[str, Mapping[str, Any]]) -> None:
        split, _, key = self.monitor.partition(".")
        value = metrics.get(split, {}).get(key)
        loss = metrics.get("train", {}).get("loss")
        if self.first_epoch is None:
            self.first_epoch = epoch
        if isinstance(loss, (int, float)) and math.isfinite(loss):
            self.train_losses.append(float(loss))
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return
        up = higher_is_better(self.monitor)
        if self.best is None or (value > self.best[1] if up else value < self.best[1]):
            self.best = (epoch, float(value))
        best_epoch = self.best[0]
        recent = self.train_losses[-(self.patience + 1) :]
        falling = len(recent) == self.patience + 1 and all(
            b < a for a, b in itertools.pairwise(recent)
        )
        if best_epoch == self.first_epoch and epoch - best_epoch >= self.patience and falling:
            self.warn(
                "val_peaked_early",
                epoch,
                f"{self.monitor} was best at epoch {best_epoch} ({self.best[1]:.4g}) and has not "
                f"improved in {epoch - best_epoch} epochs while train.loss kept falling "
                f"({recent[0]:.4g} -> {recent[-1]:.4g}): overfitting, or validation differs "
                "from training",
            )

    def nonfinite_gradient(self, epoch: int, step: int, norm: float) -> None:
        self.warn(
            "nonfinite_grad",
            epoch,
            f"non-finite gradient norm ({norm}) at step {step} of epoch {epoch}: lower optim.lr "
            "or set trainer.grad_clip",
        )

    def skipped_steps(self, epoch: int, count: int) -> None:
        self.warn(
            "nonfinite_grad",
            epoch,
            f"{count} steps skipped with a non-finite loss by epoch {epoch} (trainer.on_nan: skip)",
        )
