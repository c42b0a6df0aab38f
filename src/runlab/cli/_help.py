"""Typer's rich help without loading what runlab's help never shows.

``typer.rich_utils`` imports ``rich.markdown`` (markdown-it) and ``rich.traceback`` (rich.syntax,
rich.pretty) at its top: a third of ``runlab --help``'s time. runlab's help text is Rich markup,
never Markdown, and Typer's pretty tracebacks are off. So while ``typer.rich_utils`` is
imported, those two modules are stand-ins whose classes load the real ones the first time they
are used; right after, the stand-ins leave ``sys.modules``, and any later ``import
rich.markdown`` (a user's model, a loop) gets the real module."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


def _stand_in(module: str, name: str) -> type:
    """A class that builds, and answers attributes from, ``module.name`` once it is used."""

    def real() -> Any:
        return getattr(importlib.import_module(module), name)

    class Deferred(type):
        def __getattr__(cls, attr: str) -> Any:  # Traceback.from_exception(...)
            return getattr(real(), attr)

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        return real()(*args, **kwargs)

    return Deferred(name, (), {"__new__": new, "__module__": module})


def load_typer_help() -> None:
    """Import ``typer.rich_utils`` (Typer imports it to print help) with the stand-ins."""
    if "typer.rich_utils" in sys.modules:
        return
    placed = {}
    for module, name in _DEFERRED.items():
        if module not in sys.modules:
            stub = types.ModuleType(module)
            setattr(stub, name, _stand_in(module, name))
            placed[module] = sys.modules[module] = stub
    try:
        importlib.import_module("typer.rich_utils")
    finally:
        for module, stub in placed.items():
            if sys.modules.get(module) is stub:
                del sys.modules[module]
