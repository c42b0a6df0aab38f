"""What the warm server (runlab.sweep.warm) imports once, so that no run it forks pays for it:
what ``runlab run`` imports for the built-in loops. A module that is not installed is left
out. Nothing here may start a thread (a fork would lose it) or initialise CUDA."""

import contextlib
import importlib

MODULES = (
    "numpy",
    "torch",
    "torch._dynamo",  # every Optimizer.step imports it (torch/optim/optimizer.py)
    "torch.optim",
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.pyplot",  # Agg: no GUI thread
    "psutil",  # the run's system metrics
    "hydra",
    "omegaconf",
    "optuna",  # a study's trial reports to its storage from the run
    "optuna.storages",
    "optuna.storages._rdb.models",  # what RDBStorage imports when it opens
    "sqlalchemy.orm",
    "sqlalchemy.dialects.sqlite",
    "runlab.cli.main",
    "runlab.cli.train",
    "runlab.config.compose",
    "runlab.train.session",
    "runlab.train.preflight",
    "runlab.train.fit",
    "runlab.train.figures",
    "runlab.train.supervised",
    "runlab.train.models",
    "runlab.train.data",
    "runlab.sweep.study",
    "runlab.monitor.alerts",
    "runlab.monitor.attach",
    "runlab.monitor.diagnostics",
    "runlab.train.metrics",
    "runlab.sinks.mirror",
)

for _name in MODULES:
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)


def _compose_once() -> None:
    """One composition of a small config: Hydra and OmegaConf import and build what they
    build lazily on their first use (no thread, no tensor)."""
    import tempfile
    from pathlib import Path

    from runlab.train.checks import load_checked

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warm.yaml"
        path.write_text("data: {source: synthetic.regression}\nmodel: {name: mlp}\n")
        load_checked(str(path), ["trainer.epochs=1"])


def _storage_once() -> None:
    """Optuna opening an SQLite storage: what it imports then (SQLAlchemy's dialects,
    alembic, mako) only on first use."""
    import tempfile

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}/warm.db")
        optuna.create_study(storage=storage, study_name="warm")
        storage.engine.dispose()


def _figure_once() -> None:
    """A figure saved as PNG: the Agg renderer's fonts and PIL's plugins."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [0, 1])
    fig.savefig(io.BytesIO(), format="png")


# warm-ups only (a run does each of these again for itself): none starts a thread
for _warm in (_compose_once, _storage_once, _figure_once):
    with contextlib.suppress(Exception):
        _warm()
