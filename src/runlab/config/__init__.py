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


__all__ = ["compose", "import_object", "load_config", "resolve"]
