"""Load a config file and compose it with Hydra's compose API.

The working directory never changes and Hydra writes no output folders: only its composition
is used (``defaults:`` lists with config groups in folders beside the file, group choices like
``model=resmlp``, dotted overrides, ``+new.key=1``, ``~key``, interpolation).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from runlab._imports import did_you_mean
from runlab.config.schema import RunlabConfig
from runlab.errors import ConfigError

SUFFIXES = (".yaml", ".yml", ".json")


@functools.lru_cache(maxsize=1)
def known_keys() -> frozenset[str]:
    """Dotted keys runlab defines (``trainer.epochs``, ``task``, ...)."""
    import dataclasses
    import typing

    def walk(cls: type, prefix: str) -> set[str]:
        out: set[str] = set()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{prefix}{f.name}"
            out.add(key)
            if dataclasses.is_dataclass(hints[f.name]):
                out |= walk(hints[f.name], f"{key}.")
        return out

    return frozenset(walk(RunlabConfig, ""))


MAX_VALUES = 1_000_000  # a config with more values, aliases expanded, is refused


def _count_values(data: Any, budget: int) -> int:
    """Values in ``data`` with YAML aliases expanded, counting stops past ``budget`` (an alias
    bomb holds a few lines and expands to billions: it must not be walked)."""
    count, stack = 0, [data]
    while stack and count <= budget:
        item = stack.pop()
        count += 1
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return count


def _check_yaml(path: Path) -> None:
    """A YAML (or JSON) syntax error as one line with its position; a config that expands to
    more than MAX_VALUES values (an alias bomb) is refused before Hydra expands it."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: YAML syntax error: {err.problem or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML syntax error: {err}") from err
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not a text file ({err})") from err
    if _count_values(data, MAX_VALUES) > MAX_VALUES:
        raise ConfigError(
            f"{path} expands to more than {MAX_VALUES:,} values (YAML aliases that refer to "
            "aliases?); a config this large is refused"
        )


def _absolute_refs(path: Path) -> list[str]:
    """What the ``defaults:`` list names from the config root (``- /config``, ``- override
    /trainer: fast``): paths relative to that root, a file (``config.yaml``) or a group's
    folder (``trainer``)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    defaults = raw.get("defaults") if isinstance(raw, dict) else None
    refs = []
    for item in defaults if isinstance(defaults, list) else []:
        if isinstance(item, str) and item.startswith("/"):
            refs.append(item.lstrip("/").split("@")[0] + ".yaml")
        for key in item if isinstance(item, dict) else []:
            name = str(key).split()[-1]
            if name.startswith("/"):
                refs.append(name.lstrip("/").split("@")[0])
    return refs


def config_root(path: Path) -> tuple[Path, str]:
    """(config dir, config name) of ``path``: its own folder and stem, or, for an experiment
    config in a sub-folder whose defaults name configs from the root (``- /config``), the
    nearest folder above where they all exist, and the config's path from there
    (``phase1/experiment/compare``), as Hydra's ``--config-name`` takes it."""
    refs = _absolute_refs(path)
    if refs:
        for folder in path.parents:
            if all((folder / ref).exists() for ref in refs):
                return folder, path.relative_to(folder).with_suffix("").as_posix()
            if folder == Path(folder.anchor):
                break
    return path.parent, path.stem


@contextlib.contextmanager
def _hydra_dir(path: Path) -> Iterator[tuple[Path, str]]:
    """(config dir, config name) for Hydra, which reads ``<name>.yaml`` only: a .yml or .json
    file is linked under that name in a temporary folder beside links to its siblings."""
    if path.suffix == ".yaml":
        yield config_root(path)
        return
    with tempfile.TemporaryDirectory(prefix="runlab-config-") as tmp:
        for entry in path.parent.iterdir():
            if entry != path and not (Path(tmp) / entry.name).exists():
                os.symlink(entry, Path(tmp) / entry.name)
        os.symlink(path, Path(tmp) / f"{path.stem}.yaml")
        yield Path(tmp), path.stem


def declared_groups(path: Path) -> set[str]:
    """The config groups that the config's ``defaults:`` list names (``- model: mlp``,
    ``- override optim: sgd``, ``- /data@train: x``): only these are groups. A folder beside
    the config that the defaults do not name (``wandb/`` that W&B creates, a ``data/`` of
    datasets) is just a folder."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return set()
    defaults = raw.get("defaults") if isinstance(raw, dict) else None
    groups: set[str] = set()
    for item in defaults if isinstance(defaults, list) else []:
        for key in item if isinstance(item, dict) else []:
            name = str(key).split()[-1]  # "override model", "optional model"
            groups.add(name.lstrip("/").split("@")[0].split("/")[0])
    return groups


def _promote(
    overrides: list[str], path: Path, config_dir: Path, groups: set[str] | None = None
) -> list[str]:
    """``trainer.epochs=20`` works even when the file has no ``trainer`` block: runlab's own
    keys exist in every config (their defaults), so such overrides become ``++key=value``.
    A plain ``model=resmlp`` stays a group choice where ``model`` is a declared group (or an
    option file ``model/resmlp.yaml`` exists, for Hydra to say how to add the group)."""
    keys = known_keys()
    groups = declared_groups(path) if groups is None else groups
    out = []
    for item in overrides:
        key, eq, value = item.partition("=")
        group_choice = "." not in key and (
            key in groups or (config_dir / key / f"{value}.yaml").is_file()
        )
        if eq and re.fullmatch(r"[A-Za-z_][\w.]*", key) and key in keys and not group_choice:
            out.append(f"++{key}={value}")
        else:
            out.append(item)
    return out


@contextlib.contextmanager
def hydra_context(path: str | os.PathLike[str]) -> Iterator[tuple[Any, str]]:
    """Hydra initialised on the config's folder, as ``runlab sweep`` needs it for Hydra's own
    sweep grammar (``glob(*)`` lists a group's options): (its ConfigLoader, the config name)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    path = Path(path).resolve()
    with (
        _hydra_dir(path) as (config_dir, name),
        initialize_config_dir(config_dir=str(config_dir), version_base=None),
    ):
        yield GlobalHydra.instance().config_loader(), name


def sweeper_params(path: str | os.PathLike[str], name: str) -> dict[str, str]:
    """``hydra.sweeper.params`` of the config (inside :func:`hydra_context`): the sweep that
    Hydra's ``--multirun`` would run, key -> sweep expression."""
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    try:
        cfg = hydra_compose(config_name=name, return_hydra_config=True)
        params = OmegaConf.select(cfg, "hydra.sweeper.params", default=None)
        plain = OmegaConf.to_container(params, resolve=True) if params is not None else {}
    except Exception as err:
        raise _explain(err, Path(path), Path(path).parent) from err
    if not isinstance(plain, dict):
        raise ConfigError(f"{Path(path).name}: hydra.sweeper.params must map keys to sweeps")
    return {str(k): _sweep_text(v) for k, v in plain.items()}


def _sweep_text(value: Any) -> str:
    if isinstance(value, list):  # YAML [a, b] as Hydra's a,b
        return ",".join(str(v) for v in value)
    return str(value)


def compose(path: str | os.PathLike[str], overrides: list[str] | None = None) -> dict[str, Any]:
    """The composed config as plain data (interpolations resolved)."""
    path = Path(path)
    if not path.is_file():
        hint = " (it is a directory)" if path.is_dir() else ""
        raise ConfigError(f"config file {str(path)!r} not found{hint}")
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"config file {str(path)!r} must be .yaml, .yml or .json")
    path = path.resolve()
    _check_yaml(path)
    overrides = list(overrides or [])
    for item in overrides:
        if "=" not in item and not item.startswith("~"):
            raise ConfigError(f"override {item!r} is not key=value (e.g. trainer.epochs=20)")

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    with _hydra_dir(path) as (config_dir, name):
        promoted = _promote(overrides, path, config_dir)
        try:
            with initialize_config_dir(config_dir=str(config_dir), version_base=None):
                cfg = hydra_compose(config_name=name, overrides=promoted)
            data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except Exception as err:
            raise _explain(err, path, config_dir) from err
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping at the top level")
    return {str(k): v for k, v in data.items()}


def compose_grid(
    path: str | os.PathLike[str], combinations: list[list[str]]
) -> list[dict[str, Any]]:
    """``[compose(path, c) for c in combinations]``, without a Hydra composition for each when
    the grid varies runlab's own keys of a config without a ``defaults:`` list: Hydra composes
    the part every combination shares once, and each combination's values are applied to a
    copy as Hydra applies value overrides (``ConfigLoaderImpl._apply_overrides_to_config``),
    then resolved. Anything else (group choices, keys of the user's own, a defaults list)
    takes Hydra's whole way for each. A 1,000-point grid: about 100 s -> a few seconds."""
    if len(combinations) < 2:
        return [compose(path, c) for c in combinations]
    common = [o for o in combinations[0] if all(o in c for c in combinations[1:])]
    composer = Composer(path, common)
    rest = [[o for o in c if o not in common] for c in combinations]
    if not all(composer.applies(extra) for extra in rest):
        return [compose(path, c) for c in combinations]
    first = compose(path, combinations[0])  # and every check of the file itself
    return [first, *composer.many(rest[1:])]


class Composer:
    """``compose(path, common + extra)`` for one ``extra`` after another (a study's trials, a
    grid's combinations): Hydra composes ``path`` with ``common`` once, and each ``extra`` of
    runlab's own keys is applied to a copy as Hydra applies value overrides. An ``extra`` it
    cannot apply so (a group choice, a key of the user's own, a file with a ``defaults:``
    list) is composed by Hydra whole."""

    def __init__(self, path: str | os.PathLike[str], common: list[str]) -> None:
        self.path, self.common = Path(path), list(common)
        self.fast = self.path.suffix == ".yaml" and not _has_defaults(self.path)
        self.base: Any = None
        if self.fast:
            self.config_dir, self.name = config_root(self.path.resolve())
            self.groups = declared_groups(self.path)

    def _promoted(self, extra: list[str]) -> list[str]:
        return _promote(extra, self.path, self.config_dir, self.groups)

    def applies(self, extra: list[str]) -> bool:
        return self.fast and all(item.startswith("++") for item in self._promoted(extra))

    def _base(self) -> Any:
        if self.base is None:
            from hydra import compose as hydra_compose
            from hydra import initialize_config_dir

            promoted = _promote(self.common, self.path, self.config_dir)
            with initialize_config_dir(config_dir=str(self.config_dir), version_base=None):
                self.base = hydra_compose(config_name=self.name, overrides=promoted)
        return self.base

    def compose(self, extra: list[str]) -> dict[str, Any]:
        if not self.applies(extra):
            return compose(self.path, self.common + extra)
        return self.many([extra])[0]

    def many(self, extras: list[list[str]]) -> list[dict[str, Any]]:
        """Each of ``extras`` (all applicable) composed."""
        import copy

        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from omegaconf import OmegaConf

        base = self._base()
        promoted = [self._promoted(extra) for extra in extras]
        parser, known = OverridesParser.create(), {}
        for item in dict.fromkeys(i for items in promoted for i in items):  # each parsed once
            known[item] = parser.parse_overrides([item])[0]
        parsed = [[known[item] for item in items] for items in promoted]
        # Every combination sets the same keys: when no value is a mapping (which Hydra merges
        # into what is there), each one's values replace the last one's, so one copy serves all.
        keys = {tuple(sorted(o.key_or_group for o in p)) for p in parsed}
        reuse = len(keys) == 1 and not any(isinstance(o.value(), dict) for p in parsed for o in p)
        shared = copy.deepcopy(base)
        out = []
        for overrides in parsed:
            cfg = shared if reuse else copy.deepcopy(base)
            try:
                ConfigLoaderImpl._apply_overrides_to_config(overrides, cfg)
                data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
            except Exception as err:
                raise _explain(err, self.path, self.config_dir) from err
            out.append({str(k): v for k, v in data.items()} if isinstance(data, dict) else {})
        return out


def _has_defaults(path: Path) -> bool:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return True
    return not isinstance(raw, dict) or "defaults" in raw


def _explain(err: Exception, path: Path, config_dir: Path) -> ConfigError:
    """Hydra's and OmegaConf's multi-line errors, as one line that says what to do."""
    text = str(err).strip()
    cause = str(err.__cause__ or "").strip().splitlines()
    first = text.splitlines()[0] if text else type(err).__name__
    if type(err).__name__ == "MissingMandatoryValue":  # '???', as Hydra refuses to run it
        key = getattr(err, "full_key", None) or first.rpartition(": ")[2]
        return ConfigError(
            f"{path.name}: {key} is mandatory (???) and has no value; give it one, e.g. {key}=..."
        )
    missing = re.search(r"Could not find '([^']+)/([^']+)'", text)
    if missing:
        group, option = missing.groups()
        options = (
            sorted(p.stem for p in (config_dir / group).glob("*.y*ml"))
            if (config_dir / group).is_dir()
            else []
        )
        listed = f"; options: {', '.join(options)}" if options else ""
        return ConfigError(
            f"unknown option {option!r} for config group {group!r}"
            f"{did_you_mean(option, options)}{listed}"
        )
    deleted = re.search(r"Could not delete from config\.? '?([^'\s]+)'?", text)
    if deleted:
        return ConfigError(
            f"cannot delete {deleted.group(1)!r} (~{deleted.group(1)}): the config has no such key"
        )
    bad_key = re.search(r"Could not override '?([^'\s]+)'?", text)
    if bad_key or "Key '" in " ".join(cause):
        key = bad_key.group(1) if bad_key else first
        return ConfigError(
            f"unknown override key {key!r}{did_you_mean(key, known_keys())}; "
            f"to add a new key use +{key}=..."
        )
    if type(err).__name__ == "OverrideParseException":
        return ConfigError(
            f"cannot parse override: {first}; quote a value with spaces or symbols, "
            """e.g. 'gates.0.require="val.ic > 0"'"""
        )
    if "Error parsing override" in text:
        detail = next((line.strip() for line in text.splitlines()[1:] if line.strip()), "")
        return ConfigError(f"{first.rstrip(':')}: {detail}" if detail else first)
    if "Interpolation" in type(err).__name__ or "interpolation" in text.lower():
        return ConfigError(f"{path.name}: bad interpolation: {first}")
    return ConfigError(f"{path.name}: {first}" + (f" ({cause[0]})" if cause else ""))
