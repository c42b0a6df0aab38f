"""A training loop: a linear model fitted by full-batch gradient descent in NumPy, one step
per epoch, yet a run like any other: epochs recorded, last.pt saved, stop requests and
``--resume`` honoured, gates and sinks attached by runlab.

    runlab run examples/quickstart.yaml loop=examples.plugins.linear_loop:LinearLoop
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from runlab.train.loops import Loop, LoopContext


class LinearLoop(Loop):
    name = "linear"
    resumable = True

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        data = ctx.dataset(cfg)
        x, y = _xy(data, "train")
        xv, yv = _xy(data, "val")
        w, start = np.zeros(x.shape[1]), 1
        last = run.checkpoint_path("last")
        if ctx.resume:
            state = torch.load(last, weights_only=True)
            w, start = state["w"].numpy(), int(state["epoch"]) + 1
            run.truncate_epochs(start)
        run.cooperative_signals = True  # we poll stop_requested / preempt_requested
        epochs, lr = int(cfg["trainer"]["epochs"]), float(cfg["optim"]["lr"]) * 100
        run.progress(total_epochs=epochs)
        for epoch in range(start, epochs + 1):
            w -= lr * 2 * x.T @ (x @ w - y) / len(y)
            metrics = {
                "train": {"loss": float(np.mean((x @ w - y) ** 2))},
                "val": {"loss": float(np.mean((xv @ w - yv) ** 2))},
            }
            run.log_epoch(epoch, metrics)
            tmp = last.with_name(".last.pt.tmp")  # a kill mid-save leaves last.pt whole
            torch.save({"w": torch.from_numpy(w.copy()), "epoch": epoch}, tmp)
            tmp.replace(last)
            for callback in ctx.callbacks:
                callback(epoch, metrics)
            if run.stop_requested or run.preempt_requested:
                break


def _xy(data: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    s = data.splits[split]
    return s.x.reshape(len(s.x), -1).astype(np.float64), s.y.reshape(-1).astype(np.float64)
