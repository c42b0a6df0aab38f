"""Give a built-in trainer its epoch-end watchers: the config's gates and the diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runlab.monitor.alerts import Alerts
from runlab.monitor.baseline import Baseline
from runlab.monitor.diagnostics import Diagnostics
from runlab.monitor.gates import GateKeeper, gates_from_config


def watchers(
    cfg: dict[str, Any],
    run: Any,
    monitor: str,
    epochs: int,
    baseline: Baseline | None = None,
    alerts: Alerts | None = None,
    lr: Callable[[], float | None] | None = None,
    history: list[dict[str, Any]] | None = None,
) -> tuple[list[Callable[..., None]], Diagnostics]:
    """``(callbacks, diagnostics)``: call each callback as ``cb(epoch, metrics)`` after an
    epoch is recorded; ``history`` (scalars rows) replays a resumed run's earlier epochs."""
    diagnostics = Diagnostics(run, monitor, epochs, lr)
    gates = gates_from_config(cfg)
    if not gates:
        return [diagnostics], diagnostics
    keeper = GateKeeper(
        gates, run, baseline, monitor, on_failure=alerts.gate_failed if alerts else None
    )
    if history:
        keeper.replay(history)
    return [keeper, diagnostics], diagnostics
