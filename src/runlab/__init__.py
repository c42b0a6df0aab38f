"""runlab: run, record, tune and watch training experiments.

``import runlab`` is light: it never imports torch, wandb, mlflow, ray or fastapi.

    import runlab
    with runlab.start_run(config=cfg, root="runs", name="exp") as run:
        run.log({"loss": 0.3}, step=1)
        run.log_epoch(0, {"train": {"loss": 0.3}, "val": {"loss": 0.4}})
"""

from runlab._version import __version__
from runlab.errors import RunlabError
from runlab.tracking import Preempted, Run, RunRecord, RunState, load_runs, start_run


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
