"""A form's values turned into what a worker runs: the ``runlab`` command line of the launch
and the preflight commands to run before anything is queued."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlab.queue.recipes import GRID_MAX, FieldError, Recipe, _text


@dataclass
class Launch:
    recipe: str
    kind: str
    launcher: str
    argv: list[str]  # runlab's arguments
    cwd: str
    values: dict[str, Any]
    checks: list[list[str]] = field(default_factory=list)  # runlab commands that must pass


def plan(recipe: Recipe, form: dict[str, Any], root: Path) -> Launch:
    """The launch a form asks for, every value checked against the recipe (FieldError)."""
    given = form.get("values") or {}
    if not isinstance(given, dict):
        raise FieldError("values: a mapping of field to value")
    outside = sorted(set(given) - set(recipe.fields))
    if outside:
        raise FieldError(
            f"{outside[0]}: not a field of recipe {recipe.name} "
            f"(its fields: {', '.join(recipe.fields) or 'none'})",
            outside[0],
        )
    launcher = str(form.get("launcher") or next(iter(recipe.launchers)))
    if launcher not in recipe.launchers:
        raise FieldError(
            f"launcher {launcher!r}: recipe {recipe.name} runs on {', '.join(recipe.launchers)}",
            "launcher",
        )
    where = ["--launcher", launcher]
    for key, value in recipe.launchers[launcher].items():
        where += ["--launcher-opt", f"{key}={json.dumps(value)}"]
    base = ["-o", str(root), "-f", "json"]
    config = str(recipe.path)
    cwd = str(recipe.path.parent)
    if recipe.kind == "flow":
        assert recipe.flow is not None
        flow = ["flow", str(recipe.flow), "-r", str(root)]
        return Launch(recipe.name, "flow", "local", flow, cwd, {},
                      [["flow", "status", str(recipe.flow), "-r", str(root)]])  # fmt: skip
    if recipe.kind == "tune":
        return _tune(recipe, form, given, root, launcher, where, base)
    grid = {k: _values(recipe, k, v, several=recipe.kind == "sweep") for k, v in given.items()}
    combos = list(itertools.product(*grid.values())) or [()]
    if len(combos) > GRID_MAX:
        raise FieldError(f"{len(combos)} combinations: a form launches at most {GRID_MAX}")
    overrides = [f"{k}={','.join(_text(v) for v in vs)}" for k, vs in grid.items()]
    first = [f"{k}={_text(v)}" for k, v in zip(grid, combos[0], strict=True)]
    last = [f"{k}={_text(v)}" for k, v in zip(grid, combos[-1], strict=True)]
    checks = [["check", config, *first]] + ([["check", config, *last]] if last != first else [])
    values = {k: vs if recipe.kind == "sweep" else vs[0] for k, vs in grid.items()}
    if recipe.kind == "run" and launcher == "local":
        argv = ["run", config, *overrides, *base, "--run-name", recipe.name]
    else:  # a sweep, or one run on another launcher (a sweep of one combination)
        argv = ["sweep", config, *overrides, *base, "--name", recipe.name, *where]
    return Launch(recipe.name, recipe.kind, launcher, argv, cwd, values, checks)


def _tune(
    recipe: Recipe,
    form: dict[str, Any],
    given: dict[str, Any],
    root: Path,
    launcher: str,
    where: list[str],
    base: list[str],
) -> Launch:
    if given:
        raise FieldError(f"{next(iter(given))}: a tune form searches the recipe's fields")
    trials = _whole(form.get("trials", min(10, recipe.trials)), "trials", 1, recipe.trials)
    seed = _whole(form.get("seed", 0), "seed", 0, 2**31 - 1)
    space = [f"{k}={f.space()}" for k, f in recipe.fields.items()]
    study = f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    argv = ["tune", str(recipe.path), *space, "-n", str(trials), "--seed", str(seed)]
    argv += ["--study-name", study, *base, *where]
    corner = [
        f"{k}={_text(f.choices[0] if f.kind == 'choice' else f.check(f.low))}"
        for k, f in recipe.fields.items()
    ]
    checks = [["check", str(recipe.path), *corner]]
    values = {"trials": trials, "seed": seed, "study": study}
    return Launch(recipe.name, "tune", launcher, argv, str(recipe.path.parent), values, checks)


def _values(recipe: Recipe, key: str, value: Any, several: bool) -> list[Any]:
    """A run form's one value, or a sweep form's list of values (a list-valued choice such
    as ``[8]`` is one value of a run form, one item of a sweep form's list)."""
    field_ = recipe.fields[key]
    values = (value if isinstance(value, list) else [value]) if several else [value]
    if not values:
        raise FieldError(f"{key}: give a value", key)
    return [field_.check(v) for v in values]


def _whole(value: Any, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise FieldError(f"{name}: {value!r} is not a whole number", name) from None
    if isinstance(value, bool) or not low <= number <= high or str(number) != str(value).strip():
        raise FieldError(f"{name}: a whole number from {low} to {high}", name)
    return number


def preflight(launch: Launch, fields: list[str], timeout: float = 180) -> None:
    """Each check of the launch (``runlab check`` on the config with the form's values; a
    flow's ``runlab flow status``) in a child process; the first failure's one line as a
    FieldError naming the field it mentions (the dashboard shows it beside that field)."""
    import subprocess
    import sys

    for args in launch.checks:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "runlab", *args],
                capture_output=True,
                text=True,
                cwd=launch.cwd,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise FieldError(f"the preflight took over {timeout:.0f} s") from None
        if proc.returncode == 0:
            continue
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()] or [
            f"runlab {args[0]} exited {proc.returncode}"
        ]
        message = lines[-1].removeprefix("runlab: error: ")
        named = next((f for f in fields if f in message), None)
        raise FieldError(f"preflight: {message}", named)
