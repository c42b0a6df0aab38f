"""Importable objects for configs under test (``_target_``, ``loop``, ``data.source``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


class TinyNet(nn.Module):
    """A user model: sizes come from runlab's inference, width from the config."""

    def __init__(self, in_features: int, out_features: int, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, width), nn.Tanh(), nn.Linear(width, out_features)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # type: ignore[no-any-return]


class NaNAfter(nn.Module):
    """Outputs NaN from the ``after``-th training forward pass on (every ``every``-th one)."""

    def __init__(self, in_features: int, out_features: int, after: int = 3, every: int = 1) -> None:
        super().__init__()
        self.lin = nn.Linear(in_features, out_features)
        self.after, self.every, self.calls = after, every, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.after and (self.calls - self.after) % self.every == 0:
                return out * float("nan")
        return out  # type: ignore[no-any-return]


def arrays(n: int = 400, features: int = 5, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (n, features)).astype(np.float32)
    y = (x @ rng.normal(size=features)).astype(np.float32)
    cut1, cut2 = int(n * 0.6), int(n * 0.8)
    return {
        "X_train": x[:cut1],
        "y_train": y[:cut1],
        "X_val": x[cut1:cut2],
        "y_val": y[cut1:cut2],
        "X_test": x[cut2:],
        "y_test": y[cut2:],
    }


def tuple_source(n: int = 300) -> tuple[np.ndarray, ...]:
    a = arrays(n)
    return a["X_train"], a["y_train"], a["X_val"], a["y_val"]


def custom_loop(cfg: dict[str, Any], run: Any) -> None:
    """The "add a new training loop" story: any function of (cfg, run)."""
    for epoch in range(1, int(cfg["trainer"]["epochs"]) + 1):
        run.log_epoch(epoch, {"train": {"loss": 1.0 / epoch}})
    run.summary["custom"] = True


def linear_reward(allocations: Any, prices: Any, transition_penalty: float = 0.0) -> Any:
    """A user reward for episodic training: the sum of allocated simple returns."""
    ratio = prices[:, 1:] / prices[:, :-1] - 1
    return (allocations[:, :-1] * ratio).sum(-1).sum(-1)


def loop_without_run(cfg: dict[str, Any]) -> None:
    """A loop with the wrong signature: the preflight rejects it."""


def env_loop(cfg: dict[str, Any], run: Any) -> None:
    """A loop that records where it ran and what it was given (the Ray cluster test)."""
    import os

    run.log_epoch(1, {"train": {"loss": 1.0}, "val": {"loss": float(cfg.get("mark", 1.0))}})
    run.summary["cwd"] = os.getcwd()
    run.summary["env"] = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "PYTHONPATH")}


def niceness_loop(cfg: dict[str, Any], run: Any) -> None:
    """Records the nice value the run's process has (a launcher's doing)."""
    import os

    run.summary["niceness"] = os.nice(0)
    run.log_epoch(0, {"val": {"loss": float(cfg.get("x", 0))}})


def picky_loop(cfg: dict[str, Any], run: Any) -> None:
    """Naps ``nap`` seconds, then fails when ``mark`` is ``fail`` (the scheduler tests)."""
    import time

    time.sleep(float(cfg.get("nap", 0)))
    if str(cfg.get("mark")) == "fail":
        raise RuntimeError("planted failure for the scheduler tests")
    run.log_epoch(1, {"train": {"loss": 1.0}, "val": {"loss": float(cfg.get("mark", 1) or 1)}})


def crash_loop(cfg: dict[str, Any], run: Any) -> None:
    """Logs one epoch, then ends as ``+how`` says: ``ok``; ``segv`` (a segmentation fault);
    ``oom`` (torch's out-of-memory error); ``killed`` (SIGKILL, as the kernel's OOM killer
    does); ``nap`` (sleeps ``+nap`` seconds first, for Ctrl-C tests)."""
    import os
    import signal
    import time

    how = str(cfg.get("how", "ok"))
    run.log_epoch(1, {"train": {"loss": 1.0}, "val": {"loss": float(cfg.get("x", 1.0))}})
    run.summary["pid"] = os.getpid()
    run.flush()
    if how == "segv":
        import ctypes

        ctypes.string_at(0)
    elif how == "oom":
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
    elif how == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "nap":
        time.sleep(float(cfg.get("nap", 60)))


def bowl_loop(cfg: dict[str, Any], run: Any) -> None:
    """val.loss = (x - 0.3)^2 + 0.001 y: x matters, y hardly (the importance tests)."""
    x, y = float(cfg.get("x", 0)), float(cfg.get("y", 0))
    run.log_epoch(1, {"val": {"loss": (x - 0.3) ** 2 + 0.001 * y}})
