"""One small registry per pluggable role (sinks, launchers, loops, models, ...).

A role's registry maps short names to implementations. Built-ins are registered by import path
(``"runlab.sinks.wandb:WandbSink"``), so that listing the names imports nothing heavy; an
implementation is imported the first time it is used. Three ways in, in this order:

- the built-ins and anything registered in-process with :meth:`Registry.register`;
- installed packages, through the role's entry-point group (``[project.entry-points."runlab.sinks"]
  my_sink = "my_pkg.sinks:MySink"``), read once, the first time a name is not found;
- an import path ``pkg.mod:Name`` (or ``pkg.mod.Name``), always accepted as is.

An unknown name is a :class:`~runlab.errors.ConfigError` listing the valid ones, with a
did-you-mean. An implementation declares its options as a dataclass, given at registration or
as its ``Options`` attribute; config blocks and command-line choices are derived from it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from runlab._imports import did_you_mean, import_object
from runlab.errors import ConfigError

T = TypeVar("T")


@dataclass
class Entry:
    """One registered implementation: ``target`` is the object or its import path."""

    name: str
    target: Any
    options: type | None = None  # a dataclass; None: the target's ``Options``, if any
    help: str = ""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # what a role needs to know
    _loaded: Any = dataclasses.field(default=None, repr=False)

    def load(self, what: str) -> Any:
        if self._loaded is None:
            target = self.target
            self._loaded = import_object(target, what) if isinstance(target, str) else target
        return self._loaded

    def options_class(self, what: str) -> type | None:
        if self.options is not None:
            return self.options
        declared = getattr(self.load(what), "Options", None)
        return (
            declared if isinstance(declared, type) and dataclasses.is_dataclass(declared) else None
        )


class Registry:
    """Names of one role (``role``: how errors name it, ``group``: its entry-point group)."""

    def __init__(self, role: str, group: str, check: Callable[[Any], str | None] | None = None):
        self.role = role
        self.group = group
        self._check = check  # the loaded object -> a problem, or None when it fits the role
        self._entries: dict[str, Entry] = {}
        self._plugins_read = False

    def add(
        self,
        name: str,
        target: Any,
        options: type | None = None,
        help: str = "",
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Register ``target`` (an object or an import path string) under ``name``; ``meta``
        is what the role must know without importing it (an evaluator's metric directions)."""
        if not name or self.is_path(name) or name in self._entries:
            raise ValueError(f"{self.role} name {name!r} is empty, a path, or taken")
        self._entries[name] = Entry(name, target, options, help, dict(meta or {}))

    def register(
        self, name: str, *, options: type | None = None, help: str = ""
    ) -> Callable[[T], T]:
        """Decorator form of :meth:`add`: ``@LOOPS.register("my_loop")``."""

        def decorate(obj: T) -> T:
            self.add(name, obj, options, help)
            return obj

        return decorate

    def _read_plugins(self) -> None:
        if self._plugins_read:
            return
        self._plugins_read = True
        from importlib.metadata import entry_points

        for point in entry_points(group=self.group):
            if point.name not in self._entries and not self.is_path(point.name):
                self._entries[point.name] = Entry(point.name, point.value)

    def names(self) -> list[str]:
        """Every registered name: built-ins first, then plugins (entry points)."""
        self._read_plugins()
        return list(self._entries)

    def entries(self) -> list[Entry]:
        """Every entry (plugins included), for what a role reads from their ``meta``."""
        self._read_plugins()
        return list(self._entries.values())

    def builtin(self) -> list[str]:
        """The names registered in-process, without reading entry points (fast, for --help)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (
            name in self._entries or self.is_path(name) or name in self.names()
        )

    @staticmethod
    def is_path(name: str) -> bool:
        """``pkg.mod:Name`` or ``pkg.mod.Name``: an import path, never a registered name."""
        return ":" in name or "." in name

    def entry(self, name: str, where: str | None = None) -> Entry:
        """The entry for ``name`` (an import path makes one); unknown names raise ConfigError."""
        where = where or self.role
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where} must be a name or an import path, got {name!r}")
        if name in self._entries:
            return self._entries[name]
        if self.is_path(name):
            return Entry(name, name)
        self._read_plugins()
        if name in self._entries:
            return self._entries[name]
        raise ConfigError(self.unknown(name, where))

    def unknown(self, name: str, where: str | None = None) -> str:
        valid = ", ".join(self.names())
        return (
            f"{where or self.role}: unknown {self.role} {name!r}{did_you_mean(name, self.names())}"
            f"; use one of {valid} or an import path 'pkg.mod:Name'"
        )

    def load(self, name: str, where: str | None = None) -> Any:
        """The implementation registered as ``name`` (imported now), checked against the role."""
        where = where or self.role
        obj = self.entry(name, where).load(where if self.is_path(name) else f"{where} {name!r}")
        problem = self._check(obj) if self._check is not None else None
        if problem:
            raise ConfigError(f"{where} {name!r} {problem}")
        return obj

    def options_class(self, name: str, where: str | None = None) -> type | None:
        """The options dataclass of ``name`` (check a block against it with
        ``runlab.config.validate.check_block``), or None."""
        return self.entry(name, where).options_class(where or self.role)
