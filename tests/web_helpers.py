"""Runs for the dashboard's tests, written with the tracking API (no training needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import runlab


def make_run(root: Path, name: str, lr: float, losses: list[float], **kw: Any) -> runlab.Run:
    """A finished run: epochs (train/val loss, lr), steps, a figure, an artifact, a print."""
    with runlab.start_run(
        {"optim": {"lr": lr}, "model": {"hidden": 16}}, root=root, name=name, index=True, **kw
    ) as run:
        for epoch, loss in enumerate(losses):
            run.log_epoch(epoch, {"train": {"loss": loss * 1.1}, "val": {"loss": loss}}, lr=lr)
            for step in range(epoch * 50, (epoch + 1) * 50):
                run.log({"loss": loss * (1.2 + 0.1 * math.sin(step / 5))}, step=step)
        run.summary["val_loss"] = losses[-1]
        run.summary["best"] = min(losses)
        run.figure_path("losses.png").write_bytes(_png())
        run.artifact_path("predictions.csv").write_text("id,pred\n1,0.5\n")
        print(f"training {name}")
    return run


def _png() -> bytes:
    """A real 1x1 PNG, so the browser renders the figure."""
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
