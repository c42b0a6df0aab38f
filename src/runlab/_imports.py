"""Imports by name: optional packages that fail late naming the extra to install (Optuna's
try_import idea), and objects by import path with a did-you-mean."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable
from types import ModuleType
from typing import Any

from runlab.errors import ConfigError, MissingDependencyError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise a one-line error saying which runlab extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package: pip install 'runlab[{extra}]'"
        ) from exc


def lazy_attribute(namespace: dict[str, Any], table: dict[str, str], name: str, owner: str) -> Any:
    """A module's PEP 562 ``__getattr__``: ``name`` from the module ``table`` maps it to,
    imported on first use and kept in the module's ``namespace``."""
    if name not in table:
        raise AttributeError(f"module {owner!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(table[name]), name)
    namespace[name] = value
    return value


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or nothing."""
    close = difflib.get_close_matches(word, [c for c in choices if c != word], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def import_object(path: str, what: str) -> Any:
    """``pkg.mod.Attr`` or ``pkg.mod:attr`` -> the object, or a ConfigError naming the part that
    cannot be found."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        # the documented form: Hydra's dotted _target_, pkg.mod:name everywhere else
        form, other = (
            ("package.module.Class", "package.module:Class")
            if what.endswith("_target_")
            else ("pkg.mod:name", "pkg.mod.name")
        )
        raise ConfigError(
            f"{what} {path!r} is not an import path: use {form!r} ({other!r} works too)"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ConfigError(
            f"{what} {path!r}: module {module_name!r} cannot be imported ({err})"
        ) from err
    except Exception as err:
        raise ConfigError(f"{what} {path!r}: importing {module_name!r} failed: {err!r}") from err
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise ConfigError(
                f"{what} {path!r}: module {module_name!r} has no attribute {part!r}"
                f"{did_you_mean(part, names)}"
            )
        obj = getattr(obj, part)
    return obj
