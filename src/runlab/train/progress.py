"""What the trainer shows: a Rich progress bar on a terminal, one plain line per epoch
otherwise (CI, ``> log``). Both end up in stdout.log as the per-epoch lines."""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from runlab.tracking.run import Run


def epoch_line(epoch: int, epochs: int, metrics: dict[str, dict[str, Any]], seconds: float) -> str:
    """One console line; per-output metrics (``r2_0``, ...) stay in scalars.csv."""
    parts = [f"epoch {epoch}/{epochs}"]
    for split, values in metrics.items():
        for key, value in values.items():
            if isinstance(value, float) and not re.search(r"_\d+$", key):
                parts.append(f"{split}.{key} {value:.4g}")
    parts.append(f"{seconds:.1f}s")
    return "  ".join(parts)


class ProgressView:
    def __init__(
        self,
        run: Run,
        epochs: int,
        steps_per_epoch: int,
        enabled: bool = True,
        to_stderr: bool = False,
    ) -> None:
        self.run, self.epochs, self.steps = run, epochs, steps_per_epoch
        self.to_stderr = to_stderr  # `--format json`: stdout carries only the JSON
        terminal = sys.__stderr__
        self.live = enabled and terminal is not None and terminal.isatty()
        self._progress: Any = None
        self._last_tick = 0.0
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeRemainingColumn(),
                console=Console(file=terminal),
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._progress.add_task(
                "train", total=steps_per_epoch, epoch=1, epochs=epochs, loss="-"
            )
            self._progress.start()

    def step(self, epoch: int, batch: int, loss: float | None) -> None:
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=batch,
                epoch=epoch,
                loss="-" if loss is None else f"{loss:.4g}",
            )

    def tick(self, epoch: int, batch: int) -> None:
        """Every step: move the bar, at most ten times a second."""
        now = time.monotonic()
        if self._progress is not None and (now - self._last_tick > 0.1 or batch == self.steps):
            self._last_tick = now
            self._progress.update(self._task, completed=batch, epoch=epoch)

    def epoch(self, line: str) -> None:
        if self._progress is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            self.run.write_log(line + "\n")
        else:
            print(line, file=sys.stderr if self.to_stderr else sys.stdout, flush=True)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
