"""The registries of the training roles, light to import (names and import paths only, no
torch): models, optimizers, learning-rate schedules and data sources. The loops are in
:mod:`runlab.train.loops`, the evaluators in :mod:`runlab.evaluators`.

Each takes plugins through its entry-point group and an import path ``pkg.mod:name``:

- ``model.name``: ``fn(spec) -> torch.nn.Module``; ``spec`` is the model block with
  ``in_features`` / ``out_features`` filled in (group ``runlab.models``). A class with its
  own keyword arguments is ``model: {_target_: pkg.mod.Net, ...}`` instead.
- ``optim.name``: ``fn(cfg, params) -> torch.optim.Optimizer`` (group ``runlab.optimizers``).
- ``schedule.name``: ``fn(cfg, optimizer, total_steps) -> (scheduler, per_step)``
  (group ``runlab.schedules``).
- ``data.source``: ``fn(**data.kwargs)`` returning the arrays ``{X_train, y_train, X_val,
  y_val[, X_test, y_test]}`` or a long pandas DataFrame panel (group ``runlab.data``); files
  (.npz, .csv, .parquet) are read by suffix.
- loss terms of ``trainer.loss: {sharpe: 0.5, listnet: 0.2, ic: 0.1, huber: 0.1}``:
  ``fn(pred, y, mask) -> scalar tensor`` to minimise (group ``runlab.losses``); a term that
  needs a panel (dates x assets) says so with a ``needs_panel = True`` attribute.
"""

from __future__ import annotations

from typing import Any

from runlab.registry import Registry


def _callable(obj: Any) -> str | None:
    return None if callable(obj) else f"is not callable (it is {type(obj).__name__})"


MODELS = Registry("model", "runlab.models", check=_callable)
for _name in ("mlp", "resmlp", "gru"):
    MODELS.add(_name, f"runlab.train.models:build_{_name}")

OPTIMIZERS = Registry("optimizer", "runlab.optimizers", check=_callable)
for _name in ("adamw", "adam", "sgd"):
    OPTIMIZERS.add(_name, f"runlab.train.optim:{_name}")

SCHEDULES = Registry("schedule", "runlab.schedules", check=_callable)
for _name in ("constant", "step", "cosine", "plateau"):
    SCHEDULES.add(_name, f"runlab.train.optim:{_name}_schedule")


class _DataSources(Registry):
    """``synthetic.regression`` is a name here, not a module path: only ``pkg.mod:fn``
    (with a colon) is an import path."""

    @staticmethod
    def is_path(name: str) -> bool:
        return ":" in name


DATA_SOURCES = _DataSources("data source", "runlab.data", check=_callable)
for _name in ("regression", "classification", "panel"):
    DATA_SOURCES.add(f"synthetic.{_name}", f"runlab.train.data:synthetic_{_name}")

LOSS_TERMS = Registry("loss term", "runlab.losses", check=_callable)
for _name, _help in {
    "mse": "mean squared error",
    "huber": "Huber (smooth L1)",
    "mae": "mean absolute error",
    "listnet": "ListNet top-one cross entropy per date (a RankIC proxy); panel",
    "pairwise": "RankNet logistic loss over ordered pairs per date; panel",
    "ic": "minus the mean cross-sectional Pearson IC per date; panel",
    "sharpe": "minus the Sharpe ratio of the long-short portfolio of the scores; panel",
}.items():
    LOSS_TERMS.add(_name, f"runlab.train.losses:{_name}_term", help=_help)
