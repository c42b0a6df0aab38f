"""Run states (the lifecycle of DESIGN.md) and what counts as final."""

from __future__ import annotations

from enum import Enum


class RunState(str, Enum):
    """``created -> running -> finished | failed | stopped | preempted | pruned``.

    ``crashed`` is never written: readers derive it for a run with no final status whose process
    is gone (dead pid on this host, or a stale heartbeat).
    """

    CREATED = "created"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    STOPPED = "stopped"
    PREEMPTED = "preempted"
    PRUNED = "pruned"
    CRASHED = "crashed"

    @property
    def is_final(self) -> bool:
        return self not in (RunState.CREATED, RunState.RUNNING)

    def __str__(self) -> str:
        return self.value


LIVE_STATES = frozenset({RunState.CREATED, RunState.RUNNING})


class Pruned(Exception):
    """Raised by a trainer when a study's pruner stops the trial: the run ends ``pruned``."""
