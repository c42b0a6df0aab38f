"""Recipes: what the dashboard may launch. A recipe is a runlab config (or a flow) in the
recipes folder with a ``launch:`` block declaring the keys a form may set and how, in the
sweep grammar; nothing else can be launched, no free-form command, no path outside the folder.

::

    # recipes/quickstart.yaml: a config, plus
    launch:
      kind: run                       # run | sweep | tune | flow
      title: Quickstart MLP
      fields:
        optim.lr: tag(log, interval(1e-5, 1e-1))
        model.hidden: choice([8], [32, 32])
        trainer.epochs: range(1, 51)   # 1 to 50
        trainer.amp: choice(true, false)
      launchers: {local: {}, slurm: {partition: debug}}   # default: local only
      trials: 50                      # tune: at most this many trials a launch
      flow: nightly.flow.yaml         # kind flow: the flow file, in the folder

A run form sets each field to one value; a sweep form may give several (a grid, at most 64
combinations); a tune form searches the fields' ranges (trials, seed); a flow form has no
fields. Each value is checked against its field before anything is queued (a
:class:`FieldError` names the field)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError

KINDS = ("run", "sweep", "tune", "flow")
GRID_MAX = 64
_FUNC = re.compile(r"^\s*(choice|interval|range)\((.*)\)\s*$")
_LOG = re.compile(r"^\s*tag\(\s*log\s*,(.*)\)\s*$")
_NAME = re.compile(r"[A-Za-z0-9_][\w.-]{0,63}")


class FieldError(ConfigError):
    """A form value that its recipe does not allow; ``field`` names the field (or None)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Field:
    key: str
    kind: str  # choice, float, int
    choices: list[Any] = field(default_factory=list)
    low: float = 0.0
    high: float = 0.0
    log: bool = False

    def check(self, value: Any) -> Any:
        """``value`` as this field allows it, or a FieldError."""
        if self.kind == "choice":
            for choice in self.choices:
                if value == choice or (isinstance(choice, (int, float)) and _same(value, choice)):
                    return choice
            shown = ", ".join(_text(c) for c in self.choices)
            raise FieldError(f"{self.key}: {_text(value)} is not one of {shown}", self.key)
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise FieldError(f"{self.key}: give a number", self.key)
        try:
            number = float(value)
        except ValueError:
            raise FieldError(f"{self.key}: {value!r} is not a number", self.key) from None
        if not math.isfinite(number) or not self.low <= number <= self.high:
            raise FieldError(
                f"{self.key}: {_text(value)} is outside {_text(self.low)} to {_text(self.high)}",
                self.key,
            )
        if self.kind == "int":
            if number != int(number):
                raise FieldError(f"{self.key}: {_text(value)} is not a whole number", self.key)
            return int(number)
        return number

    def space(self) -> str:
        """The field as a search space in ``runlab tune``'s grammar."""
        if self.kind == "choice":
            return f"choice({','.join(_text(c) for c in self.choices)})"
        if self.kind == "int":
            return f"range({int(self.low)},{int(self.high) + 1})"
        inner = f"interval({self.low!r},{self.high!r})"
        return f"tag(log, {inner})" if self.log else inner

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "kind": self.kind}
        if self.kind == "choice":
            out["choices"] = self.choices
        else:
            out.update(low=self.low, high=self.high, log=self.log)
        return out


@dataclass
class Recipe:
    name: str
    path: Path
    kind: str
    title: str
    fields: dict[str, Field]
    launchers: dict[str, dict[str, Any]]
    trials: int = 20
    flow: Path | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "title": self.title,
            "fields": [f.describe() for f in self.fields.values()],
            "launchers": list(self.launchers),
            "trials": self.trials,
        }


def load_recipes(folder: Path) -> tuple[dict[str, Recipe], list[str]]:
    """Every recipe of ``folder`` (``*.yaml`` with a ``launch:`` block), and a line for each
    file that is not a good one (shown on the launch page, never launchable)."""
    from runlab._yaml import load_yaml

    recipes: dict[str, Recipe] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            doc = load_yaml(path.read_text(encoding="utf-8"))
        except Exception as err:
            problems.append(f"{path.name}: not YAML ({' '.join(str(err).split())[:120]})")
            continue
        if not isinstance(doc, dict) or "launch" not in doc:
            continue  # a config the recipes use, not a recipe
        try:
            recipes[path.stem] = _recipe(folder, path, doc["launch"])
        except ConfigError as err:
            problems.append(f"{path.name}: {err}")
    return recipes, problems


def _recipe(folder: Path, path: Path, block: Any) -> Recipe:
    if not isinstance(block, dict):
        raise ConfigError("launch: is a mapping (kind, fields, launchers, ...)")
    unknown = sorted(set(block) - {"kind", "title", "fields", "launchers", "trials", "flow"})
    if unknown:
        raise ConfigError(f"launch: has no field {unknown[0]!r}")
    kind = str(block.get("kind") or "run")
    if kind not in KINDS:
        raise ConfigError(f"launch.kind {kind!r}: one of {', '.join(KINDS)}")
    fields = block.get("fields") or {}
    if not isinstance(fields, dict):
        raise ConfigError("launch.fields: a mapping of config key to its values")
    launchers = block.get("launchers") or {"local": {}}
    if isinstance(launchers, list):
        launchers = {str(n): {} for n in launchers}
    if not isinstance(launchers, dict) or not all(isinstance(v, dict) for v in launchers.values()):
        raise ConfigError("launch.launchers: a mapping of launcher name to its options")
    flow = None
    if kind == "flow":
        flow = (folder / str(block.get("flow") or "")).resolve()
        if not flow.is_file() or flow.parent != folder.resolve():
            raise ConfigError("launch.flow: a flow file in the recipes folder")
    return Recipe(
        name=path.stem,
        path=path.resolve(),
        kind=kind,
        title=str(block.get("title") or path.stem),
        fields={str(k): parse_field(str(k), v) for k, v in fields.items()},
        launchers={str(k): dict(v) for k, v in launchers.items()},
        trials=int(block.get("trials") or 20),
        flow=flow,
    )


def parse_field(key: str, text: Any) -> Field:
    """``choice(a, b)``, ``interval(lo, hi)``, ``tag(log, interval(lo, hi))``, ``range(lo, hi)``
    (integers lo to hi - 1, as Python's range)."""
    from runlab._yaml import load_yaml

    if not _NAME.fullmatch(key):
        raise ConfigError(f"launch.fields: {key!r} is not a config key")
    from runlab._secrets import is_secret_path

    if is_secret_path(key.split(".")):  # its value would be in the queue, the audit, argv
        raise ConfigError(f"launch.fields: {key!r} is a secret; give it through the environment")
    tagged = _LOG.match(str(text))
    found = _FUNC.match(tagged.group(1) if tagged else str(text))
    if not found:
        raise ConfigError(
            f"launch.fields.{key}: write choice(...), interval(lo, hi) or range(lo, hi)"
        )
    log, func, inner = bool(tagged), found.group(1), found.group(2)
    if func == "choice":
        try:
            values = load_yaml(f"[{inner}]")
        except Exception as err:
            raise ConfigError(f"launch.fields.{key}: {inner!r} is not a list of values") from err
        if not values:
            raise ConfigError(f"launch.fields.{key}: choice() of nothing")
        return Field(key, "choice", choices=list(values))
    try:  # numbers as Python reads them (YAML 1.1 reads 1e-4 as text)
        values = [float(v) for v in inner.split(",")]
    except ValueError:
        values = []
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or values[0] >= values[1]:
        raise ConfigError(f"launch.fields.{key}: {func}(lo, hi) with numbers, lo < hi")
    if func == "range" and not all(v == int(v) for v in values):
        raise ConfigError(f"launch.fields.{key}: range(lo, hi) of whole numbers")
    if func == "range":
        return Field(key, "int", low=float(values[0]), high=float(values[1]) - 1)
    if log and values[0] <= 0:
        raise ConfigError(f"launch.fields.{key}: a log interval starts above 0")
    return Field(key, "float", low=float(values[0]), high=float(values[1]), log=log)


def _same(value: Any, choice: Any) -> bool:
    try:
        return not isinstance(value, bool) and float(value) == float(choice)
    except (TypeError, ValueError):
        return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value == int(value) and abs(value) < 1e15:
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    return str(value)
