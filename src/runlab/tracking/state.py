"""Run states (the lifecycle of DESIGN.md) and what counts as final."""

from __future__ import annotations

from enum import Enum
from typing import Any


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


def failure_text(status: str, metrics: Any, width: int = 120) -> str | None:
    """The one-line reason of a ``failed`` run (its metrics.json ``error``) or a ``crashed``
    one; None for other statuses."""
    if status == "crashed":
        return "crashed: the process died without a status (killed, out of memory?)"
    if status != "failed":
        return None
    error = metrics.get("error") if isinstance(metrics, dict) else None
    if not isinstance(error, dict):
        return "failed (no error recorded)"
    message = " ".join(str(error.get("message") or "").split())
    text = f"{error.get('type') or 'Error'}: {message}" if message else str(error.get("type"))
    return text if len(text) <= width else text[: width - 3] + "..."
