"""Check runlab's blocks of a composed config against the schema and fill in the defaults."""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

from runlab._imports import did_you_mean, import_object
from runlab.config.schema import TARGET_BLOCKS, RunlabConfig
from runlab.errors import ConfigError


def resolve(
    config: Mapping[str, Any], like: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """The config with runlab's blocks checked and their defaults filled in; other keys as
    given. Raises ConfigError naming the key, what is wrong, and the fix. ``like``: another
    config and its resolved form, whose blocks are taken (copied) where this config's are the
    same (a grid's combinations differ in a few keys)."""
    out = dict(config)
    known = None
    if like is not None:
        given, done = like
        known = {
            f.name: done[f.name]
            for f in dataclasses.fields(RunlabConfig)
            if config.get(f.name, _ABSENT) == given.get(f.name, _ABSENT)
        }
    out.update(_check_dataclass(RunlabConfig, config, path="", known=known))
    _check_across(out)
    webhook = out["alerts"]["webhook"]
    if webhook and not str(webhook).startswith(("http://", "https://")):
        raise ConfigError(f"alerts.webhook {webhook!r} must be an http:// or https:// URL")
    return out


MISSING_SOURCE = (
    "data.source is missing: give a .npz file, an import path 'pkg.mod:fn', a CSV or "
    "Parquet panel, or synthetic.regression|synthetic.classification|synthetic.panel"
)


def _check_across(cfg: Mapping[str, Any]) -> None:
    """Bounds that involve two keys."""
    data, portfolio = cfg["data"], cfg["portfolio"]
    if data["val_fraction"] + data["test_fraction"] >= 1:
        raise ConfigError(
            f"data.val_fraction + data.test_fraction must leave rows to train on, got "
            f"{data['val_fraction']:g} + {data['test_fraction']:g}"
        )
    if portfolio["method"] == "long_short" and portfolio["quantile"] > 0.5:
        raise ConfigError(
            f"portfolio.quantile {portfolio['quantile']:g} makes the long and short legs "
            "overlap; use at most 0.5 with method long_short"
        )


def check_block(cls: type, given: Any, path: str) -> dict[str, Any]:
    """One block (``given``) checked against the dataclass ``cls``, defaults filled in."""
    result: dict[str, Any] = _check_value(path, given, cls)
    return result


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A block's field types (evaluated once per class: a grid's thousand configs would
    evaluate them a thousand times)."""
    return typing.get_type_hints(cls)


_ABSENT = object()


def _check_dataclass(
    cls: type, given: Mapping[str, Any], path: str, known: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    top = path == ""
    given = _string_keys(given, fields, path)
    out: dict[str, Any] = {}
    for key in given:
        if top and key not in fields:
            continue  # the user's own top-level keys
        if key not in fields:
            raise ConfigError(
                f"unknown key {path}{key}{did_you_mean(key, fields)}; "
                f"valid keys in {path.rstrip('.')}: {', '.join(fields)}"
            )
    for name, f in fields.items():
        key = f"{path}{name}"
        if known is not None and name in known:  # checked already, in a config like this one
            out[name] = copy.deepcopy(known[name])
            continue
        if name in given:
            value = given[name]
            if name in TARGET_BLOCKS and top and isinstance(value, Mapping) and "_target_" in value:
                out[name] = _check_target(key, value)
                continue
            out[name] = _check_value(key, value, hints[name])
            _check_bounds(key, out[name], f.metadata)
        else:
            default = (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            )
            out[name] = _to_plain(default)
    return out


def _string_keys(given: Mapping[Any, Any], fields: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Keys of a runlab block are names. YAML 1.1 reads an unquoted ``on`` as true (the
    ``alerts: {on: [...]}`` block), which is taken back to ``on``; any other key that is not a
    string (``1:``, ``no:``) is an error that says to quote it."""
    out: dict[str, Any] = {}
    for key, value in given.items():
        if key is True and "on" in fields:
            key = "on"
        elif not isinstance(key, str):
            where = f" in {path.rstrip('.')}" if path else ""
            raise ConfigError(
                f"key {key!r}{where} is not a name (YAML reads unquoted on/off/yes/no as "
                "true/false, and digits as numbers); quote it"
            )
        out[key] = value
    return out


_BOUNDS: dict[str, tuple[str, typing.Callable[[float, float], bool]]] = {
    "ge": (">=", lambda v, b: v >= b),
    "gt": (">", lambda v, b: v > b),
    "le": ("<=", lambda v, b: v <= b),
    "lt": ("<", lambda v, b: v < b),
}


def _check_bounds(key: str, value: Any, bounds: Mapping[str, float]) -> None:
    """The schema's ``limits(..., ge=1)``: every number (each item of a list) within them."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        for name, bound in bounds.items():
            symbol, holds = _BOUNDS[name]
            if not holds(item, bound):
                raise ConfigError(f"{key} must be {symbol} {bound:g}, got {item!r}")


def _to_plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _to_plain(v) for k, v in dataclasses.asdict(value).items()}
    return value


def _check_target(key: str, block: Mapping[str, Any]) -> dict[str, Any]:
    target = block["_target_"]
    if not isinstance(target, str) or not target:
        raise ConfigError(f"{key}._target_ must be an import path like 'mypkg.models.Net'")
    import_object(target, f"{key}._target_")
    return dict(block)


def _not_bool(kinds: type | tuple[type, ...]) -> typing.Callable[[Any], bool]:
    return lambda v: isinstance(v, kinds) and not isinstance(v, bool)


# schema type -> (how an error names it, what it accepts); YAML's true is not an integer
_SCALARS: dict[Any, tuple[str, typing.Callable[[Any], bool]]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", _not_bool(int)),
    float: ("a finite number", lambda v: _not_bool((int, float))(v) and math.isfinite(v)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _check_value(key: str, value: Any, hint: Any) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping of settings, got {_describe(value)}")
        return _check_dataclass(hint, value, f"{key}.")  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _check_value(key, value, option)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[-1]
            if len(errors) == 1
            else f"{key}: {_describe(value)} is not {' or '.join(_name(o) for o in options)}"
        )
    if origin is Literal:
        choices = get_args(hint)
        if any(value == c and type(value) is type(c) for c in choices):
            return value
        shown = ", ".join(repr(c) for c in choices)
        hint_text = (
            did_you_mean(value, [c for c in choices if isinstance(c, str)])
            if isinstance(value, str)
            else ""
        )
        raise ConfigError(f"{key} must be one of {shown}, got {value!r}{hint_text}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {_describe(value)}")
        (item,) = get_args(hint)
        return [_check_value(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a mapping, got {_describe(value)}")
        return dict(value)
    if hint in _SCALARS:
        what, accepts = _SCALARS[hint]
        if not accepts(value):
            raise ConfigError(f"{key} must be {what}, got {_describe(value)}")
        return float(value) if hint is float else value
    if hint is Any:
        return value
    raise TypeError(f"schema type {hint!r} of {key} is not handled")  # a bug in the schema


def _name(hint: Any) -> str:
    if hint is type(None):
        return "null"
    if get_origin(hint) is Literal:
        return " or ".join(repr(c) for c in get_args(hint))
    if get_origin(hint) is list:
        return "a list"
    return _SCALARS[hint][0] if hint in _SCALARS else str(hint)
