"""Optional imports that fail late, naming the extra to install (Optuna's try_import idea)."""

from __future__ import annotations

import importlib
from types import ModuleType

from runlab.errors import MissingDependencyError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` or raise a one-line error saying which runlab extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{feature} needs the '{module}' package: pip install 'runlab[{extra}]'"
        ) from exc
