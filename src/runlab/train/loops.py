"""Training loops by name: ``loop: supervised`` (the default), ``loop: episodic``, a plugin's
name (entry-point group ``runlab.loops``), or an import path ``pkg.mod:fn``.

A loop is a :class:`Loop` subclass (it may also preflight a config and be resumable) or a plain
function ``fn(cfg, run)`` that trains and records through ``run``. Both are called by
:func:`runlab.train.session.train_config`, the one place that trains a config.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

from runlab.errors import ConfigError
from runlab.registry import Registry
from runlab.train.context import LoopContext

__all__ = [
    "LOOPS",
    "EpisodicLoop",
    "FunctionLoop",
    "Loop",
    "LoopContext",
    "SupervisedLoop",
    "get_loop",
]


class Loop:
    """A training loop. Subclasses implement :meth:`train`; :meth:`preflight` checks the whole
    path of a run in seconds (the default only checks that the loop can be called)."""

    name: ClassVar[str] = "loop"
    resumable: ClassVar[bool] = False  # `runlab run --resume` continues its runs

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        raise NotImplementedError

    def preflight(self, cfg: dict[str, Any], ctx: LoopContext, report: dict[str, Any]) -> Any:
        """Fill ``report`` (stages, data, model, validate) and return the dataset loaded, if
        any, for the run to reuse."""
        return None

    def check_resume(self, cfg: dict[str, Any], last: Any, ctx: LoopContext) -> Any:
        """Before ``--resume`` touches the run: does ``last`` (checkpoints/last.pt) fit this
        config? Raise ConfigError if not; return the dataset, if loaded."""
        return ctx.data


class SupervisedLoop(Loop):
    """Minibatch gradient descent on (features, target) splits: runlab.train.fit."""

    name = "supervised"
    resumable = True

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        from runlab.train.fit import train_supervised

        train_supervised(cfg, run, ctx)

    def preflight(self, cfg: dict[str, Any], ctx: LoopContext, report: dict[str, Any]) -> Any:
        from runlab.train.preflight import preflight_supervised

        return preflight_supervised(cfg, ctx, report)

    def check_resume(self, cfg: dict[str, Any], last: Any, ctx: LoopContext) -> Any:
        from runlab.train.preflight import check_resume

        return check_resume(cfg, last, ctx.device, ctx.seed, ctx.data)


class EpisodicLoop(Loop):
    """Allocations trained on sampled episodes by reward ascent: runlab.train.episodic."""

    name = "episodic"

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        from runlab.train.episodic import train_episodic

        train_episodic(cfg, run, ctx)

    def preflight(self, cfg: dict[str, Any], ctx: LoopContext, report: dict[str, Any]) -> Any:
        from runlab.train.preflight import preflight_episodic

        return preflight_episodic(cfg, ctx, report)


class FunctionLoop(Loop):
    """A plain function ``fn(cfg, run)`` as a loop."""

    def __init__(self, fn: Any, name: str) -> None:
        self.fn, self.label = fn, name

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        self.fn(cfg, run)

    def preflight(self, cfg: dict[str, Any], ctx: LoopContext, report: dict[str, Any]) -> Any:
        from runlab.train.preflight import stage

        stage(report, "loop", self._check_signature)
        return None

    def _check_signature(self) -> None:
        try:
            inspect.signature(self.fn).bind({}, None)
        except TypeError as err:
            raise ConfigError(
                f"loop {self.label!r} must be callable as fn(cfg, run): {err}"
            ) from err
        except ValueError:  # a builtin without a signature: it is called and we shall see
            pass


def _is_loop(obj: Any) -> str | None:
    if isinstance(obj, type):
        return None if issubclass(obj, Loop) else "is a class but not a runlab Loop subclass"
    if callable(obj):
        return None
    return f"is not a function (it is {type(obj).__name__})"


LOOPS = Registry("loop", "runlab.loops", check=_is_loop)
LOOPS.add("supervised", SupervisedLoop, help=SupervisedLoop.__doc__ or "")
LOOPS.add("episodic", EpisodicLoop, help=EpisodicLoop.__doc__ or "")


def get_loop(name: str) -> Loop:
    """The loop registered as ``name`` (or at the import path ``name``), ready to call."""
    obj = LOOPS.load(name, "loop")
    if isinstance(obj, type):
        loop: Loop = obj()
        return loop
    return FunctionLoop(obj, name)
