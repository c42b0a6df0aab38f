"""runlab: run, record, tune and watch training experiments.

``import runlab`` is light: it never imports torch, wandb, mlflow, ray or fastapi.

    import runlab
    with runlab.start_run(config=cfg, root="runs", name="exp") as run:
        run.log({"loss": 0.3}, step=1)
        run.log_epoch(0, {"train": {"loss": 0.3}, "val": {"loss": 0.4}})
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any

from runlab._imports import lazy_attribute
from runlab._version import __version__
from runlab.errors import RunlabError

if TYPE_CHECKING:
    from runlab.tracking import Preempted, Run, RunRecord, RunState, load_runs

# what `import runlab` names, imported when first used: `runlab --help` and every command
# that does not read runs pay nothing for them
_LAZY = {
    "Preempted": "runlab.tracking.run",
    "Run": "runlab.tracking.run",
    "RunRecord": "runlab.tracking.record",
    "RunState": "runlab.tracking.state",
    "load_runs": "runlab.tracking.record",
    "load_model": "runlab.train.load",  # imports torch
}


def start_run(
    config: Any = None,
    root: str | PathLike[str] | None = None,
    name: str | None = None,
    tags: dict[str, Any] | None = None,
    **options: Any,
) -> Run:
    """:func:`runlab.tracking.run.start_run` (every option it takes), and ``sinks``
    (``["tensorboard", "wandb", "mlflow", "pkg.mod:MySink"]``) to mirror the run, with
    ``sink_options`` per sink (default: the config's own ``wandb:`` ... blocks)."""
    from runlab.tracking.run import start_run as _start_run

    if "sinks" in options or "sink_options" in options:
        from runlab.sinks.mirror import with_mirrors

        options = with_mirrors(options, config)
    return _start_run(config, root, name, tags, **options)


def __getattr__(name: str) -> object:
    return lazy_attribute(globals(), _LAZY, name, __name__)


__all__ = [
    "Preempted",
    "Run",
    "RunRecord",
    "RunState",
    "RunlabError",
    "__version__",
    "load_model",
    "load_runs",
    "start_run",
]
