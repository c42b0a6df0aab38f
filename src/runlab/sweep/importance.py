"""Hyperparameter importance of a study: Optuna's own evaluators (fANOVA by default, the one
Optuna's dashboard shows; PED-ANOVA; mean decrease in impurity) over its finished trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlab._imports import require
from runlab.errors import ConfigError, RunNotFoundError
from runlab.tracking.groups import StudyRecord

EVALUATORS = {
    "fanova": "FanovaImportanceEvaluator",
    "ped-anova": "PedAnovaImportanceEvaluator",
    "mdi": "MeanDecreaseImpurityImportanceEvaluator",
}


def default_storage(root: Path, name: str) -> str:
    """Where ``runlab tune`` keeps study ``name``: its journal (a study on a scheduler), else
    the SQLite file of the runs root."""
    journal = root / "studies" / name / "journal.log"
    if journal.is_file():
        return f"journal:{journal.resolve()}"
    return f"sqlite:///{(root / 'studies' / 'optuna.db').resolve()}"


def importances(
    root: Path,
    name: str,
    storage: str | None = None,
    evaluator: str = "fanova",
    objective: str | None = None,
    seed: int | None = 0,
) -> dict[str, Any]:
    """Each parameter's importance for ``objective`` (default: the study's first), largest
    first, with the evaluator and how many finished trials it read."""
    optuna = require("optuna", "tune", "runlab importance")
    from runlab.sweep.study import raced, storage_for

    folder = root / "studies" / name
    if not folder.is_dir():
        raise RunNotFoundError(f"no study {name!r} under {root} (runlab tune makes one)")
    if evaluator not in EVALUATORS:
        raise ConfigError(f"--evaluator {evaluator!r}: one of {', '.join(EVALUATORS)}")
    objectives = StudyRecord(folder).objectives
    target = objective or objectives[0]
    if target not in objectives:
        raise ConfigError(f"--objective {target!r}: the study's are {', '.join(objectives)}")
    opened = storage_for(storage or default_storage(root, name), root, opened=True)
    try:
        study = raced(lambda: optuna.load_study(study_name=name, storage=opened))
    except KeyError as err:
        raise RunNotFoundError(f"study {name!r} is not in its storage") from err
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < 2:
        raise ConfigError(f"study {name!r}: importance needs 2 finished trials, it has {len(done)}")
    index = objectives.index(target)
    cls = getattr(optuna.importance, EVALUATORS[evaluator])
    kwargs = {"seed": seed} if evaluator != "ped-anova" else {}
    values = optuna.importance.get_param_importances(
        study,
        evaluator=cls(**kwargs),
        target=(lambda t: t.values[index]) if len(objectives) > 1 else None,
    )
    return {
        "study": name,
        "objective": target,
        "evaluator": evaluator,
        "trials": len(done),
        "importances": {k: float(v) for k, v in values.items()},
    }
