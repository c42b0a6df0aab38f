"""A config as a run needs it: runlab's blocks checked and filled (:mod:`runlab.config`), then
what only the layers above config can check: every gate's expression parses and says when it
is due, every sink exists and takes its options. The CLI, sweeps and studies load configs
through :func:`load_checked`, so that nothing starts from a config one of them would refuse."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from runlab.config import load_config
from runlab.monitor.gates import gates_from_config
from runlab.sinks.base import check_sink_names


def check_names(cfg: Mapping[str, Any]) -> None:
    """Every name a config gives a pluggable role is registered (or an import path): the
    loop, the model, optimizer and schedule, the evaluators, the data source."""
    from runlab.evaluators import EVALUATORS
    from runlab.train.loops import LOOPS
    from runlab.train.plugins import DATA_SOURCES, MODELS, OPTIMIZERS, SCHEDULES

    LOOPS.entry(cfg["loop"], "loop")
    for block, registry in (("model", MODELS), ("optim", OPTIMIZERS), ("schedule", SCHEDULES)):
        if "_target_" not in cfg[block]:
            registry.entry(cfg[block]["name"], f"{block}.name")
    for name in cfg["evaluate"] or []:
        EVALUATORS.entry(name, "evaluate")
    loss = cfg["trainer"]["loss"]
    if isinstance(loss, Mapping):
        from runlab.train.plugins import LOSS_TERMS

        for name in loss:
            LOSS_TERMS.entry(str(name), "trainer.loss")
    source = str(cfg["data"]["source"])
    if source.startswith("synthetic."):
        DATA_SOURCES.entry(source, "data.source")


def check_loop_options(cfg: Mapping[str, Any]) -> None:
    """The options the config's loop does not honour (``Loop.refuses``) are at their
    defaults: ConfigError naming the first that is not, and what to do instead."""
    from runlab.registry import Registry
    from runlab.train.loops import LOOPS, Loop

    name = str(cfg["loop"])
    if Registry.is_path(name):  # an import path's module is imported when the run starts
        return
    loop = LOOPS.load(name, "loop")
    if isinstance(loop, type) and issubclass(loop, Loop):
        loop.check_options(cfg, schema_defaults())


@functools.cache
def schema_defaults() -> dict[str, Any]:
    """Every runlab key at its default, as plain data (made once: a sweep checks a thousand
    configs). Shared: read it, never change it."""
    import dataclasses

    from runlab.config.schema import RunlabConfig

    return dataclasses.asdict(RunlabConfig())


def check_listeners(cfg: Mapping[str, Any]) -> None:
    """Gates and sinks of a resolved config: ConfigError naming the first that is wrong."""
    from runlab.sinks.mirror import build_sink

    gates_from_config(cfg)  # expressions parse and each gate says when it is due
    check_sink_names(cfg["sinks"])
    for name in cfg["sinks"]:  # an import path imports, options check, before any run exists
        build_sink(name, cfg.get(name) if isinstance(cfg.get(name), Mapping) else None)


def load_checked(
    path: str | os.PathLike[str], overrides: list[str] | None = None
) -> dict[str, Any]:
    """:func:`runlab.config.load_config`, and its gates and sinks checked."""
    return checked(load_config(path, overrides))


def load_grid(path: str | os.PathLike[str], combinations: list[list[str]]) -> list[dict[str, Any]]:
    """:func:`load_checked` of every combination of a grid (composed together, which is
    faster: :func:`runlab.config.compose.compose_grid`)."""
    from runlab.config.compose import compose_grid
    from runlab.config.validate import resolve

    composed = compose_grid(path, combinations)
    first = resolve(composed[0])
    like = (composed[0], first)  # a block as the first combination's is not checked again
    return [checked(first), *(checked(resolve(c, like)) for c in composed[1:])]


class ConfigSeries:
    """:func:`load_checked` of ``path`` with ``common`` plus one ``extra`` after another (a
    study's trials in one process): Hydra composes the shared part once
    (:class:`runlab.config.compose.Composer`) and each config's blocks that equal the first
    one's are not checked again. The first is loaded the whole way (every check of the file)."""

    def __init__(self, path: str | os.PathLike[str], common: list[str]) -> None:
        from runlab.config.compose import Composer

        self.path, self.common = path, list(common)
        self.composer = Composer(path, common)
        self.like: tuple[dict[str, Any], dict[str, Any]] | None = None

    def load(self, extra: list[str]) -> dict[str, Any]:
        from runlab.config.compose import compose
        from runlab.config.validate import resolve

        if self.like is None or not self.composer.applies(extra):
            composed = compose(self.path, self.common + extra)
            resolved = resolve(composed)
            if self.like is None:
                self.like = (composed, resolved)
            return checked(resolved)
        return checked(resolve(self.composer.compose(extra), self.like))


def checked(cfg: dict[str, Any]) -> dict[str, Any]:
    """A resolved config with its names, loop options, gates and sinks checked."""
    check_names(cfg)
    check_loop_options(cfg)
    check_listeners(cfg)
    return cfg
