"""Evaluators by name (``evaluate: [regression, portfolio, pkg.mod:fn]``) and which way each
of their metrics is better, known without importing them (gates, early stopping and
``best`` need it before anything is computed).

An evaluator is a function ``fn(pred, y, mask, cfg) -> {name: tensor}`` over a whole split
(``mask``: the panel's present cells, or None; ``cfg``: the resolved config), and says which
way its metrics go in a ``metrics`` attribute, ``{"sharpe": "max", "turnover": "min"}``.
Plugins register under the entry-point group ``runlab.evaluators``; metric names a plugin
declares join the built-in ones for ``trainer.monitor`` and gates.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from runlab.registry import Registry


def _is_evaluator(obj: Any) -> str | None:
    return None if callable(obj) else f"is not a function (it is {type(obj).__name__})"


EVALUATORS = Registry("evaluator", "runlab.evaluators", check=_is_evaluator)
for _name, _metrics in {
    "regression": {"mse": "min", "mae": "min", "r2": "max"},
    "classification": {"accuracy": "max", "f1": "max"},
    "ranking": {"ic": "max", "rank_ic": "max", "ic_ir": "max", "scale": "max"},
    "portfolio": {
        "sharpe": "max",
        "sortino": "max",
        "calmar": "max",
        "annual_return": "max",
        "max_drawdown": "max",  # drawdowns are negative: higher is better
        "cumulative_return": "max",
        "final_value": "max",
        "hit_rate": "max",
        "ir": "max",
        "turnover": "min",
    },
}.items():
    EVALUATORS.add(_name, f"runlab.train.metrics:{_name}", meta={"metrics": _metrics})


def metrics_of(name: str) -> dict[str, str]:
    """The metrics an evaluator declares, with their direction (``max`` or ``min``)."""
    entry = EVALUATORS.entry(name, "evaluate")
    declared = entry.meta.get("metrics")
    if declared is None:
        declared = getattr(entry.load("evaluate"), "metrics", None) or {}
    return {str(k): str(v) for k, v in dict(declared).items()}


_LOADED: dict[str, str] = {}  # directions declared by evaluators loaded by import path


def load_evaluator(name: str) -> Any:
    """The evaluator ``name`` (registered or ``pkg.mod:fn``), its metric directions noted."""
    fn = EVALUATORS.load(name, "evaluate")
    if EVALUATORS.is_path(name):
        declared = getattr(fn, "metrics", None) or {}
        _LOADED.update({str(k): str(v) for k, v in dict(declared).items()})
    return fn


@cache
def _directions() -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in EVALUATORS.entries():
        try:
            out.update({k: v for k, v in metrics_of(entry.name).items() if k not in out})
        except Exception:  # a broken plugin says so when it is used, not here
            continue
    return out


def higher_is_better(metric: str) -> bool:
    """``val.sharpe`` or ``sharpe``: is a larger value better? (Unknown names: no, as a loss.)"""
    key = metric.rsplit(".", 1)[-1]
    return (_directions().get(key) or _LOADED.get(key)) == "max"
