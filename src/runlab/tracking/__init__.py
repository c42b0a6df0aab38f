"""Recording runs: the live :class:`Run`, the read-only :class:`RunRecord`, the index.

The names below are imported when first used, so that importing one module of this package
(``runlab.tracking.roots`` for a command's help text) does not import them all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from runlab._imports import lazy_attribute

if TYPE_CHECKING:
    from runlab.tracking.record import RunRecord, load_runs
    from runlab.tracking.run import Preempted, Run, start_run
    from runlab.tracking.state import RunState

_LAZY = {
    "RunRecord": "runlab.tracking.record",
    "load_runs": "runlab.tracking.record",
    "Preempted": "runlab.tracking.run",
    "Run": "runlab.tracking.run",
    "start_run": "runlab.tracking.run",
    "RunState": "runlab.tracking.state",
}


def __getattr__(name: str) -> object:
    return lazy_attribute(globals(), _LAZY, name, __name__)


__all__ = ["Preempted", "Run", "RunRecord", "RunState", "load_runs", "start_run"]
