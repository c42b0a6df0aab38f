"""Optimizers and learning-rate schedules from the ``optim`` and ``schedule`` blocks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from runlab._imports import import_object
from runlab.config.schema import HIGHER_IS_BETTER
from runlab.errors import ConfigError


def make_optimizer(
    cfg: dict[str, Any], params: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    if "_target_" in cfg:
        cls = import_object(cfg["_target_"], "optim._target_")
        kwargs = {k: v for k, v in cfg.items() if k != "_target_"}
        try:
            return cls(params, **kwargs)  # type: ignore[no-any-return]
        except TypeError as err:
            raise ConfigError(f"optim._target_ {cfg['_target_']!r}: {err}") from err
    lr, wd = float(cfg["lr"]), float(cfg["weight_decay"])
    if cfg["name"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if cfg["name"] == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    return torch.optim.SGD(params, lr=lr, weight_decay=wd, momentum=float(cfg["momentum"]))


class _Constant(torch.optim.lr_scheduler.LambdaLR):
    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(optimizer, lambda _: 1.0)


def make_scheduler(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    """(scheduler, stepped per optimizer step?). Plateau steps on the monitored value."""
    name = cfg["name"]
    if name == "cosine":
        warmup, floor = int(cfg["warmup_steps"]), float(cfg["min_lr"])
        base = optimizer.param_groups[0]["lr"]

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            cosine = 0.5 * (1 + math.cos(math.pi * progress))
            return floor / base + (1 - floor / base) * cosine if base else cosine

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    if name == "step":
        return torch.optim.lr_scheduler.StepLR(
            optimizer, step_size=int(cfg["step_size"]), gamma=float(cfg["gamma"])
        ), False
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=float(cfg["factor"]), patience=int(cfg["patience"])
        ), False
    return _Constant(optimizer), False


def monitor_mode(monitor: str) -> str:
    metric = monitor.rsplit(".", 1)[-1]
    return "max" if metric in HIGHER_IS_BETTER else "min"
