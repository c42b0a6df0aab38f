"""What a live run emits: its records, in the order they happen, and the listeners that take
them. A listener (the mirrors to TensorBoard, W&B and MLflow are one) is attached by whoever
starts the run; the run itself knows no listener by name.

A listener sees :class:`RunMeta` when the run starts, each :class:`StepRecord` and
:class:`EpochRecord` as it is logged (on the training thread: it must not block), and
:class:`Final` when the run has ended.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunMeta:
    id: str
    name: str
    dir: Path
    config: dict[str, Any]  # redacted
    tags: dict[str, Any]
    parent: str | None = None
    created: str | None = None
    resumed: bool = False
    git_commit: str | None = None  # provenance, from run.json
    user: str | None = None
    source: str | None = None  # the program that ran (its script or command)
    notes: str = ""  # notes.md (runlab note, the run page): mirrored by runlab sync


@dataclass(frozen=True)
class StepRecord:
    step: int
    time: float
    values: dict[str, float]


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    time: float
    metrics: dict[str, dict[str, float]]  # split -> name -> value
    extras: dict[str, float] = field(default_factory=dict)  # lr, epoch_time_s, ...


Record = StepRecord | EpochRecord


@dataclass(frozen=True)
class Final:
    status: str  # finished, failed, stopped, preempted, pruned, crashed
    summary: dict[str, Any]  # metrics.json
    run_dir: Path
    ended: float | None = None


def provenance_fields(info: Mapping[str, Any]) -> dict[str, Any]:
    """RunMeta's provenance fields from a run.json."""
    git = info.get("git")
    git = git if isinstance(git, Mapping) else {}
    command = info.get("command") if isinstance(info.get("command"), list) else []
    return {
        "git_commit": git.get("commit") or None,
        "user": info.get("user") or None,
        "source": str(command[1] if len(command) > 1 else command[0]) if command else None,
    }


def numeric(values: Mapping[str, Any]) -> dict[str, float]:
    """The scalar numbers among ``values`` (bools count; strings, lists, None do not)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(value, (int, float)):
            item = getattr(value, "item", None)  # NumPy / torch scalars
            try:
                value = item() if callable(item) else None
            except (ValueError, RuntimeError):
                continue
        if isinstance(value, (int, float)):
            out[str(key)] = float(value)
    return out


class Listener:
    """Something that follows a live run. Every method but :meth:`on_end` is called on the
    training thread and must return at once; exceptions are the listener's to handle."""

    def attach(self, warn: Any) -> None:
        """Called once, before the run directory exists: ``warn(source, message)`` records an
        ``on_warning`` event in the run (from any thread) and prints it."""

    def run_info(self) -> dict[str, Any]:
        """Fields for run.json (the mirrors record their options under ``sinks``)."""
        return {}

    def on_start(self, meta: RunMeta) -> None:
        """The run is running (again, when ``meta.resumed``)."""

    def on_record(self, record: Record) -> None:
        """A step or an epoch was logged."""

    def on_end(self, final: Final) -> None:
        """The run has ended and its files are complete; may take a while (a deadline of its
        own). A KeyboardInterrupt here is noted by the run, which then calls :meth:`abandon`."""

    def abandon(self) -> None:
        """Give up at once (a second Ctrl-C while :meth:`on_end` waited)."""
