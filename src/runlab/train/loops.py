"""Training loops by name: ``loop: supervised`` (the default), ``loop: episodic``, a plugin's
name (entry-point group ``runlab.loops``), or an import path ``pkg.mod:fn``.

A loop is a :class:`Loop` subclass (it may also preflight a config and be resumable) or a plain
function ``fn(cfg, run)`` that trains and records through ``run``. Both are called by
:func:`runlab.train.session.train_config`, the one place that trains a config.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar

from runlab.errors import ConfigError
from runlab.registry import Registry
from runlab.tracking.expr import get_path
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
    # runlab's options the loop does not honour, each with what to do instead: a config that
    # sets one to anything but its default is refused before any run (exit 2)
    refuses: ClassVar[dict[str, str]] = {}
    needs_data: ClassVar[bool] = True  # data.source is required (a loop may load its own)

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        raise NotImplementedError

    @classmethod
    def check_options(cls, cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        """Before any run: ConfigError when ``cfg`` sets an option this loop does not honour
        (by default, one of :attr:`refuses` away from its value in ``defaults``), or lacks the
        data.source it needs."""
        if cls.needs_data and not cfg["data"]["source"]:
            from runlab.config.validate import MISSING_SOURCE

            raise ConfigError(MISSING_SOURCE)
        for key, why in cls.refuses.items():
            value, default = get_path(cfg, key.split(".")), get_path(defaults, key.split("."))
            if value != default:
                shown = str(value).lower() if isinstance(value, bool) else str(value)
                raise ConfigError(
                    f"{key}={shown} has no effect with loop: {cls.name} ({why}); remove it"
                )

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
    resumable = True
    refuses: ClassVar[dict[str, str]] = {
        "task": "its targets are next-period returns; leave task at regression",
        "trainer.loss": "it maximises episodic.reward; set that instead",
        "trainer.accumulate": "each step already averages episodic.batch_episodes episodes; "
        "raise that instead",
        "trainer.data_on_device": "the panel is always on the device",
        "trainer.limit_val_batches": "validation allocates the whole period in one pass",
        "evaluate": "it backtests its allocations (runlab backtest RUN for the test split)",
    }

    @classmethod
    def check_options(cls, cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
        super().check_options(cfg, defaults)
        batch = cfg["trainer"]["batch_size"]
        if batch != defaults["trainer"]["batch_size"] and not cfg["episodic"]["warm_start_epochs"]:
            raise ConfigError(
                f"trainer.batch_size={batch} has no effect with loop: episodic without a warm "
                "start (it sizes the warm start's batches); set episodic.batch_episodes instead"
            )

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        from runlab.train.episodic import train_episodic

        train_episodic(cfg, run, ctx)

    def preflight(self, cfg: dict[str, Any], ctx: LoopContext, report: dict[str, Any]) -> Any:
        from runlab.train.preflight import preflight_episodic

        return preflight_episodic(cfg, ctx, report)

    def check_resume(self, cfg: dict[str, Any], last: Any, ctx: LoopContext) -> Any:
        from runlab.train.episodic import EpisodicEpochs, EpisodicTrainer
        from runlab.train.preflight import check_restore

        data = ctx.dataset(cfg)
        check_restore(
            last, lambda: EpisodicEpochs(cfg, EpisodicTrainer(cfg, data, ctx.device, ctx.seed))
        )
        return data


class FunctionLoop(Loop):
    """A plain function ``fn(cfg, run)`` as a loop."""

    def __init__(self, fn: Any, name: str) -> None:
        self.fn, self.label = fn, name

    needs_data = False

    def train(self, cfg: dict[str, Any], run: Any, ctx: LoopContext) -> None:
        result = self.fn(cfg, run)
        if isinstance(result, Mapping):  # what the function returns is its summary
            run.summary.update({str(k): v for k, v in result.items()})

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
LOOPS.add("ppo", "runlab.rl.loop:PPOLoop", help="PPO on runlab.rl.PortfolioEnv (extra rl)")


def get_loop(name: str) -> Loop:
    """The loop registered as ``name`` (or at the import path ``name``), ready to call."""
    obj = LOOPS.load(name, "loop")
    if isinstance(obj, type):
        loop: Loop = obj()
        return loop
    return FunctionLoop(obj, name)
