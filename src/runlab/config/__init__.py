"""Configs: load YAML/JSON, compose with Hydra, validate runlab's blocks, fill defaults."""

from __future__ import annotations

import os
from typing import Any

from runlab._imports import import_object
from runlab.config.compose import compose
from runlab.config.validate import resolve


def load_config(path: str | os.PathLike[str], overrides: list[str] | None = None) -> dict[str, Any]:
    """Compose ``path`` with ``overrides``, check runlab's blocks, and fill their defaults."""
    return resolve(compose(path, overrides))


def config_runs_root(
    path: str | os.PathLike[str] | None, overrides: list[str] | None = None
) -> str | None:
    """The ``runs_root`` a config sets, composed with the overrides that are plain values (a
    sweep's ``a,b`` or ``choice(...)`` and a study's ranges are left out); None if it sets
    none or there is no config (``--resume``)."""
    if path is None:
        return None
    plain = [
        o
        for o in overrides or []
        if "=" in o and not any(c in o.partition("=")[2] for c in ",()[]")
    ]
    root = compose(path, plain).get("runs_root")
    return str(root) if root else None


__all__ = ["compose", "config_runs_root", "import_object", "load_config", "resolve"]
