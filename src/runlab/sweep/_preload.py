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
    "hydra",
    "omegaconf",
    "runlab.cli.main",
    "runlab.cli.train",
    "runlab.config.compose",
    "runlab.train.session",
    "runlab.train.preflight",
    "runlab.train.fit",
    "runlab.train.figures",
)

for _name in MODULES:
    with contextlib.suppress(ImportError):
        importlib.import_module(_name)
