"""Optimizers and learning-rate schedules from the ``optim`` and ``schedule`` blocks."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch

from runlab._imports import import_object
from runlab.errors import ConfigError
from runlab.evaluators import higher_is_better


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
    from runlab.train.plugins import OPTIMIZERS

    optimizer: torch.optim.Optimizer = OPTIMIZERS.load(cfg["name"], "optim.name")(cfg, params)
    return optimizer


def adamw(cfg: dict[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))


def adam(cfg: dict[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))


def sgd(cfg: dict[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=float(cfg["lr"]),
        weight_decay=float(cfg["weight_decay"]),
        momentum=float(cfg["momentum"]),
    )


class _Constant(torch.optim.lr_scheduler.LambdaLR):
    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(optimizer, lambda _: 1.0)


def make_scheduler(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    """(scheduler, stepped per optimizer step?). Plateau steps on the monitored value."""
    from runlab.train.plugins import SCHEDULES

    made: tuple[Any, bool] = SCHEDULES.load(cfg["name"], "schedule.name")(
        cfg, optimizer, total_steps
    )
    return made


def step_epoch_schedule(scheduler: Any, per_step: bool, value: float | None, mode: str) -> None:
    """At an epoch's end: step a per-epoch schedule (plateau on the monitored ``value``, made
    "lower is better" for ``mode: max``); a per-step one has stepped already."""
    if per_step:
        return
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        if value is not None:
            scheduler.step(value if mode == "min" else -value)
    else:
        scheduler.step()


def cosine_schedule(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    warmup, floor = int(cfg["warmup_steps"]), float(cfg["min_lr"])
    base = optimizer.param_groups[0]["lr"]

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        cosine = 0.5 * (1 + math.cos(math.pi * progress))
        return floor / base + (1 - floor / base) * cosine if base else cosine

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True


def step_schedule(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    return torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=int(cfg["step_size"]), gamma=float(cfg["gamma"])
    ), False


def plateau_schedule(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=float(cfg["factor"]), patience=int(cfg["patience"])
    ), False


def constant_schedule(
    cfg: dict[str, Any], optimizer: torch.optim.Optimizer, total_steps: int
) -> tuple[Any, bool]:
    return _Constant(optimizer), False


def monitor_mode(monitor: str) -> str:
    return "max" if higher_is_better(monitor) else "min"
