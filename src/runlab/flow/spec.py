"""A flow file read and checked before anything runs: its steps, their kinds and fields, the
references between them and the order they make. Every problem is one ConfigError (exit 2).

::

    name: demo
    steps:
      data:                       # kind cmd: a shell command with declared inputs and outputs
        cmd: python make_data.py --out data/panel.csv
        inputs: [make_data.py]
        outputs: {panel: data/panel.csv}
      train:                      # kind run: a runlab config with overrides
        kind: run
        config: quickstart.yaml
        overrides: ["data.source={steps.data.out.panel}"]
      good_enough:                # kind gate: stops the flow when false
        kind: gate
        when: steps.train.metrics.val_loss < 1.0
      bundle:                     # kind package: runlab package of a run step
        kind: package
        run: train

Kinds ``sweep`` (a grid: ``overrides`` with comma lists) and ``tune`` (an Optuna study:
``trials``, ``seed``) give their best run as ``run``/``run_dir``; ``backtest`` backtests the
run of a run, sweep or tune step (``split``, ``data``, ``checkpoint``, ``options``: the
command's flags, ``transaction_cost_bps: 1``).

Steps of kinds ``cmd``, ``run``, ``sweep`` and ``tune`` run where ``launcher:`` says (a name,
or a mapping of ``name:`` and the launcher's options; the flow's top-level ``launcher:`` is every
such step's default, ``launcher: local`` keeps one step here). On a scheduler (``slurm``,
``htcondor``) the step is submitted as jobs and the flow waits for them (a ``tune`` step runs
``workers`` worker jobs); a flow killed while it waits finds the same jobs again when rerun.
Where a step runs is not part of its key: a step cached here stays cached on a cluster.

A string field may reference another step: ``{steps.NAME.out.KEY}`` (a cmd step's output
path), ``{steps.NAME.run}`` / ``{steps.NAME.run_dir}`` (a run step's id and directory),
``{steps.NAME.metrics.KEY}``, ``{steps.NAME.dir}`` (a package). A step runs after every step
it references and those in its ``after`` list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError

KINDS = ("cmd", "run", "sweep", "tune", "backtest", "gate", "package")
TRAINS = ("run", "sweep", "tune")  # kinds whose result is a run (a sweep's or study's best)
REFERENCE = re.compile(r"\{steps\.([A-Za-z_][\w-]*)\.([\w.-]+)\}")
_COMMON = {"inputs", "code", "cache", "after", "kind", "launcher"}
_FIELDS = {
    "cmd": {"cmd", "outputs", *_COMMON},
    "run": {"config", "overrides", "seeds", *_COMMON},
    "sweep": {"config", "overrides", *_COMMON},
    "tune": {"config", "overrides", "trials", "seed", "workers", *_COMMON},
    "backtest": {
        "run",
        "split",
        "data",
        "checkpoint",
        "options",
        "inputs",
        "cache",
        "after",
        "kind",
    },
    "gate": {"when", "after", "kind"},
    "package": {"run", "checkpoint", "cache", "after", "kind"},
}
_REQUIRED = {
    "cmd": "cmd",
    "run": "config",
    "sweep": "config",
    "tune": "config",
    "backtest": "run",
    "gate": "when",
    "package": "run",
}


@dataclass
class Step:
    name: str
    kind: str
    spec: dict[str, Any]
    needs: list[str] = field(default_factory=list)
    launcher: tuple[str, dict[str, Any]] = ("local", {})  # where it runs, and the options

    @property
    def cached(self) -> bool:
        return self.kind != "gate" and self.spec.get("cache", "auto") != "never"


@dataclass
class Flow:
    name: str
    path: Path
    steps: dict[str, Step]  # in an order that runs every step after what it needs

    @property
    def base(self) -> Path:
        """Paths in the flow (inputs, outputs, configs, commands' working directory) are
        relative to the flow file's folder."""
        return self.path.parent


def load_flow(path: Path) -> Flow:
    from runlab._yaml import load_yaml

    if not path.is_file():
        raise ConfigError(f"flow file {path} does not exist")
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"))
    except Exception as err:
        raise ConfigError(f"{path} is not YAML: {' '.join(str(err).split())[:200]}") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("steps"), dict) or not doc["steps"]:
        raise ConfigError(f"{path}: a flow is a mapping with a 'steps:' mapping of named steps")
    name = str(doc.get("name") or path.stem)
    if not re.fullmatch(r"[\w.-]+", name):
        raise ConfigError(f"{path}: flow name {name!r}: use letters, digits, '_', '-' and '.'")
    unknown = sorted(set(doc) - {"name", "steps", "launcher"})
    if unknown:
        raise ConfigError(f"{path}: a flow has no field {unknown[0]!r} (name, steps, launcher)")
    default = _launcher(path, "the flow", doc.get("launcher"), ("local", {}))
    steps = {str(k): _step(path, str(k), v, default) for k, v in doc["steps"].items()}
    for step in steps.values():
        for needed in step.needs:
            if needed not in steps:
                raise ConfigError(
                    f"{path}: step {step.name!r} references step {needed!r}, which the flow "
                    f"does not have (steps: {', '.join(steps)})"
                )
    for step in steps.values():
        if step.kind in ("package", "backtest") and steps[str(step.spec["run"])].kind not in TRAINS:
            raise ConfigError(
                f"{path}: step {step.name!r} ({step.kind}) takes the run of {step.spec['run']!r}, "
                f"which is not a {', '.join(TRAINS)} step"
            )
    try:
        order = list(TopologicalSorter({s.name: s.needs for s in steps.values()}).static_order())
    except CycleError as err:
        cycle = " -> ".join(err.args[1])
        raise ConfigError(f"{path}: the steps reference each other in a cycle: {cycle}") from err
    return Flow(name, path.resolve(), {n: steps[n] for n in order})


def _launcher(
    path: Path, owner: str, given: Any, default: tuple[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    """``launcher: slurm`` or ``launcher: {name: slurm, partition: debug, ...}``, its name and
    options checked as ``--launcher`` checks them (before anything runs)."""
    from runlab.sweep.launchers import make_launcher

    if given is None:
        return default
    block = {"name": given} if isinstance(given, str) else given
    if not isinstance(block, dict) or not isinstance(block.get("name"), str):
        raise ConfigError(
            f"{path}: {owner}: launcher is a name (local, slurm, ...) or a mapping with name:"
        )
    options = {str(k): v for k, v in block.items() if k != "name"}
    try:
        make_launcher(block["name"], options)
    except ConfigError as err:
        raise ConfigError(f"{path}: {owner}: {err}") from err
    return block["name"], options


def _step(path: Path, name: str, spec: Any, default: tuple[str, dict[str, Any]]) -> Step:
    if not re.fullmatch(r"[A-Za-z_][\w-]*", name):
        raise ConfigError(f"{path}: step name {name!r}: start with a letter; letters, digits, _ -")
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: step {name!r} is not a mapping of its fields")
    kind = str(spec.get("kind") or "cmd")
    if kind not in KINDS:
        raise ConfigError(f"{path}: step {name!r} has kind {kind!r}; kinds: {', '.join(KINDS)}")
    unknown = sorted(set(spec) - _FIELDS[kind])
    if unknown:
        raise ConfigError(
            f"{path}: step {name!r} ({kind}) has no field {unknown[0]!r}; its fields: "
            f"{', '.join(sorted(_FIELDS[kind] - {'kind'}))}"
        )
    if not spec.get(_REQUIRED[kind]):
        raise ConfigError(f"{path}: step {name!r} ({kind}) needs '{_REQUIRED[kind]}'")
    if spec.get("cache", "auto") not in ("auto", "never"):
        raise ConfigError(f"{path}: step {name!r}: cache is auto or never")
    for key in ("inputs", "code", "overrides", "after", "seeds"):
        if not isinstance(spec.get(key, []), list):
            raise ConfigError(f"{path}: step {name!r}: '{key}' is a list")
    for key in ("outputs", "options"):
        if not isinstance(spec.get(key, {}), dict):
            raise ConfigError(f"{path}: step {name!r}: '{key}' is a mapping")
    needs = [str(a) for a in spec.get("after", [])]
    needs += [m.group(1) for m in REFERENCE.finditer(_text(spec))]
    if kind in ("package", "backtest"):
        needs.append(str(spec["run"]))
    if kind == "gate":
        needs += re.findall(r"\bsteps\.([A-Za-z_][\w-]*)", str(spec["when"]))
    where = _launcher(path, f"step {name!r}", spec.get("launcher"), default)
    if kind == "cmd" and where[0] not in ("local", "slurm", "htcondor"):
        raise ConfigError(
            f"{path}: step {name!r}: a cmd step runs on local, slurm or htcondor, not {where[0]}"
        )
    if kind not in ("cmd", *TRAINS):  # gates, backtests and packages run here
        where = ("local", {})
    kept = sorted(set(needs) - {name}) if name not in needs else needs
    return Step(name, kind, spec, kept, where)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return str(value)
