"""runlab: run, record, tune and watch training experiments.

``import runlab`` is light: it never imports torch, wandb, mlflow, ray or fastapi.

    import runlab
    with runlab.start_run(config=cfg, root="runs", name="exp") as run:
        run.log({"loss": 0.3}, step=1)
        run.log_epoch(0, {"train": {"loss": 0.3}, "val": {"loss": 0.4}})
"""

from os import PathLike
from typing import Any

from runlab._version import __version__
from runlab.errors import RunlabError
from runlab.tracking import Preempted, Run, RunRecord, RunState, load_runs
from runlab.tracking.run import start_run as _start_run


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
    if "sinks" in options or "sink_options" in options:
        from runlab.sinks.mirror import with_mirrors

        options = with_mirrors(options, config)
    return _start_run(config, root, name, tags, **options)


def __getattr__(name: str) -> object:
    if name == "load_model":  # imports torch: only when asked for
        from runlab.train.load import load_model

        return load_model
    raise AttributeError(f"module 'runlab' has no attribute {name!r}")


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
