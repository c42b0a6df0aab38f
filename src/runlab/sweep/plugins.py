"""The registries of a study's roles, light to import (names and import paths only, no
Optuna): samplers (``--sampler``, entry-point group ``runlab.samplers``, a factory
``fn(seed, space) -> optuna sampler``) and pruners (``--pruner``, group ``runlab.pruners``, a
factory ``fn() -> optuna pruner``). The launchers are in :mod:`runlab.sweep.launchers`."""

from __future__ import annotations

from typing import Any

from runlab.registry import Registry


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else f"is not callable (it is {type(obj).__name__})"


SAMPLERS = Registry("sampler", "runlab.samplers", check=_callable)
for _name in ("tpe", "random", "cmaes", "grid", "nsgaii"):
    SAMPLERS.add(_name, f"runlab.sweep.study:{_name}_sampler")
PRUNERS = Registry("pruner", "runlab.pruners", check=_callable)
for _name in ("median", "successive_halving", "hyperband", "none"):
    PRUNERS.add(_name, f"runlab.sweep.study:{_name}_pruner")
