"""The live handle of a run: what a program calls to record (config, steps, epochs, events,
checkpoints, the final status). The directory's files at start and end are written by
:mod:`runlab.tracking.rundir`, the heartbeat by :mod:`runlab.tracking.heartbeat`, signals are
met by :mod:`runlab.tracking.signals`; listeners (the mirrors) attach from above."""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from runlab import _io
from runlab._secrets import redact
from runlab._yaml import to_plain
from runlab.errors import ConfigError
from runlab.tracking import rundir
from runlab.tracking._stdout import StdoutCapture
from runlab.tracking.heartbeat import STOP_FILE, Heartbeat, interval_of
from runlab.tracking.rates import TokenRates
from runlab.tracking.roots import default_root
from runlab.tracking.rundir import utc_now_iso
from runlab.tracking.signals import END_CODES, Preempted, Signals
from runlab.tracking.state import Pruned, RunState
from runlab.tracking.summary import Summary
from runlab.tracking.system import SystemMonitor, system_interval_of

if TYPE_CHECKING:
    from runlab.tracking.records import Listener

__all__ = ["STOP_FILE", "Preempted", "Pruned", "Run", "start_run", "utc_now_iso"]
STEP_FLUSH_S = 1.0  # a kill -9 loses at most about this much of steps.jsonl


def _safe_relative(name: str, what: str) -> str:
    path = Path(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"{what} {name!r} must be a relative path inside the run directory")
    return name


class RunFiles:
    """Where a run's files go in its directory (``dir``): checkpoints, artifacts, figures."""

    dir: Path

    def checkpoint_path(self, name: str | int = "last") -> Path:
        """``checkpoints/<name>.pt``; an int gives ``epoch_NNNN.pt``."""
        fname = f"epoch_{name:04d}.pt" if isinstance(name, int) else _safe_relative(name, "name")
        return self._sub("checkpoints", fname if Path(fname).suffix else f"{fname}.pt")

    def artifact_path(self, name: str) -> Path:
        return self._sub("artifacts", _safe_relative(name, "artifact name"))

    def figure_path(self, name: str) -> Path:
        name = _safe_relative(name, "figure name")
        return self._sub("figures", name if Path(name).suffix else f"{name}.png")

    def _sub(self, folder: str, name: str) -> Path:
        path = self.dir / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


class Run(RunFiles):
    """A run being recorded. Create it with :func:`runlab.start_run` and use it as a context
    manager; leaving the block sets the final status (finished, failed, stopped, preempted)."""

    id: str
    dir: Path
    info: dict[str, Any]
    _events: _io.JsonlAppender
    _scalars: Any

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        name: str | None = None,
        config: Any = None,
        tags: Mapping[str, Any] | None = None,
        *,
        parent: str | None = None,
        trial: int | None = None,
        seed: int | None = None,
        device: str | None = None,
        overrides: list[str] | None = None,
        heartbeat_interval: float | None = None,
        system_interval: float | None = None,
        capture_stdout: bool = True,
        handle_signals: bool = True,
        index: bool = True,
        listeners: Sequence[Listener] = (),
        _existing: Path | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.name = name or "run"
        self._use_config(to_plain(config))
        self.tags = redact({str(k): v for k, v in (tags or {}).items()}, self._secrets)
        self.summary = Summary()
        self.heartbeat_interval = interval_of(heartbeat_interval)
        self.preempt_requested = False
        self.stop_requested = False  # `runlab stop`, or a failed gate: end `stopped`
        self.stop_reason: str | None = None
        self.cooperative_signals = False  # a trainer that polls preempt/stop_requested sets this
        self._end_hooks: list[Callable[[RunState], None]] = []
        self._preempt_hooks: list[Callable[[], None]] = []
        self._capture_stdout, self._use_index = capture_stdout, index
        self._status = RunState.CREATED
        self._t0 = time.time()
        self._prior_seconds = 0.0  # a reopened run's time in its earlier sessions
        self._heartbeat = Heartbeat(self, self.heartbeat_interval)
        self._system = SystemMonitor(self, system_interval_of(system_interval), device)
        self._rates = TokenRates()
        self._signals = Signals(self, handle_signals)
        self._stdout: StdoutCapture | None = None
        self._steps: _io.JsonlAppender | None = None
        self._ended = self._finishing = False
        self.end_problems: list[str] = []  # what the end could not write (a full disk)
        # built (and checked) before the run directory exists: a bad sink makes none
        self._listeners = list(listeners)
        listened: dict[str, Any] = {}
        for listener in self._listeners:
            listener.attach(functools.partial(rundir.listener_warning, self))
            listened.update(listener.run_info())
        # A SIGTERM from here on is noted, and acted on once the directory is whole.
        self._signals.install()
        try:
            if _existing is not None:
                rundir.reopen(self, _existing)
                if listened.get("sinks"):
                    listened["sinks"] = {**(self.info.get("sinks") or {}), **listened["sinks"]}
                if listened:
                    self.info.update(listened)
                    self._write_info()
            else:
                fields = {"device": device, "seed": seed, "tags": self.tags, "parent": parent}
                fields.update(trial=trial, heartbeat_interval=self.heartbeat_interval)
                rundir.create(self, overrides, **fields, **listened)
        except BaseException:
            self._signals.restore()
            raise
        self._signals.become_ready()

    @classmethod
    def reopen(cls, path: str | os.PathLike[str], **options: Any) -> Run:
        """Continue a run in its own directory (``--resume``): same id, files appended to.
        Call :meth:`start` (or use ``with``) to mark it running again."""
        path = Path(path)
        return cls(root=path.parent, _existing=path, **options)

    def truncate_epochs(self, first_dropped: int) -> None:
        """Forget scalars.csv rows of epochs >= ``first_dropped`` (a resume redoes them)."""
        self._scalars.drop_from(first_dropped)

    def write_log(self, text: str) -> None:
        """Append ``text`` to stdout.log only (what a terminal shows some other way)."""
        if self._stdout is not None:
            self._stdout.write_log(text)

    # ------------------------------------------------------------------ identity and files
    @property
    def status(self) -> RunState:
        return self._status

    def _use_config(self, config: Any) -> None:
        """The config, and what of it may be written: secrets and their copies redacted."""
        from runlab._secrets import secret_values

        self.config = config
        self._secrets = secret_values(config)
        self.safe_config = redact(config, self._secrets)

    def set_config(self, config: Any) -> None:
        """Replace the run's config (an integration that learns it after start): config.yaml
        is rewritten, redacted, and the index updated."""
        from runlab.tracking import config_file

        self._use_config(to_plain(config))
        config_file.write(self.dir, self.safe_config)
        rundir.update_index(self)

    def _safe_summary(self) -> dict[str, Any]:
        """The summary as written: JSON-safe (a tuple key, a cycle, any object) and redacted."""
        summary: dict[str, Any] = redact(_io.json_safe(self.summary.snapshot()), self._secrets)
        return summary

    def update_info(self, **fields: Any) -> None:
        """Record facts known only after start (device, seed, ...) in run.json."""
        self.info.update(redact(fields, self._secrets))
        self._write_info()

    def _write_info(self) -> None:
        _io.atomic_write_json(self.dir / "run.json", self.info)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Run:
        """Mark the run running. A SIGTERM meanwhile ends it ``preempted`` once it has started;
        any failure in here ends it ``failed``, never leaves it ``running``."""
        self._signals.ready = False
        try:
            rundir.start(self)
            self._signals.become_ready()
        except BaseException as err:
            self.finish(exc=err)
            raise
        return self

    def __enter__(self) -> Run:
        if self._status is RunState.CREATED:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish(exc=exc)

    def on_preempt(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (save a checkpoint, say) before the run is marked ``preempted``."""
        self._preempt_hooks.append(hook)

    def on_end(self, hook: Callable[[RunState], None]) -> None:
        """Call ``hook(final_status)`` just before the final status is written (alerts use it);
        a failing hook is an ``on_warning`` event, never a lost status."""
        self._end_hooks.append(hook)

    def request_stop(self, reason: str, by: str = "runlab") -> None:
        """Ask the run to end ``stopped`` at the next step or epoch boundary (a trainer that
        polls :attr:`stop_requested`), or at once by KeyboardInterrupt in a loop that does not."""
        if self.stop_requested or self._finishing or self._ended:
            return
        self.stop_requested, self.stop_reason = True, reason
        self.event("on_stop_request", reason=reason, by=by)
        if (
            not self.cooperative_signals
            and threading.current_thread() is not threading.main_thread()
        ):
            self._signals.interrupt_main()

    def read_stop_file(self) -> None:
        """``runlab stop`` wrote stop.json: a stop request, by whom it says."""
        try:
            request = _io.read_json(self.dir / STOP_FILE)
        except (OSError, ValueError):
            request = {}
        by = f"{request.get('user', '?')}@{request.get('host', '?')}"
        self.request_stop(str(request.get("reason") or "runlab stop"), by=by)

    def finish(
        self, status: RunState | str | None = None, exc: BaseException | None = None
    ) -> None:
        """End the run. Without ``status``, it is derived from ``exc`` (None: finished).

        Whatever happens on the way (a hook that raises SystemExit or KeyboardInterrupt, a
        second Ctrl-C, an exception whose message cannot be printed, a summary JSON cannot
        hold, a full disk), the final status is written; an interrupt that came meanwhile is
        raised again once it is."""
        rundir.finish(self, status, exc)

    # ------------------------------------------------------------------ logging
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Per-step scalars, appended to steps.jsonl (buffered; on disk within ~1 s)."""
        if step is None:
            step = 0 if self._heartbeat.step is None else self._heartbeat.step + 1
        self._heartbeat.step = step
        record = {"step": step, "time": time.time()}
        record.update(metrics)
        rates = self._rates.update(step, record["time"], metrics)
        if rates:
            record.update(rates)
            self.summary.update(self._rates.summary())
        steps = self._steps
        if steps is None:
            steps = self._steps = _io.JsonlAppender(self.dir / "steps.jsonl", STEP_FLUSH_S)
        steps.write(record)
        if self._listeners:
            from runlab.tracking.records import StepRecord, numeric

            self._emit(StepRecord(step, record["time"], numeric({**metrics, **rates})))

    def flush(self) -> None:
        """The buffered step scalars to disk now (a reader of steps.jsonl in this process)."""
        if self._steps is not None:
            self._steps.flush()

    def log_epoch(
        self,
        epoch: int,
        metrics: Mapping[str, Mapping[str, Any]],
        summarize: bool = True,
        **extra: Any,
    ) -> None:
        """End-of-epoch scalars per split (``{"train": {"loss": ..}, "val": {...}}``): one row
        per split in scalars.csv, an ``on_epoch_end`` event, and the summary's last values.
        ``extra`` (lr, epoch_time_s, samples_per_s, max_memory_mib, ...) goes on every row.
        ``summarize=False`` leaves the summary alone (a trainer that writes its own)."""
        rows = []
        for split, values in metrics.items():
            rows.append({"epoch": epoch, "split": split, **values, **extra})
            if summarize:
                for key, value in values.items():
                    self.summary.set_default_value(f"{split}_{key}", value)
        self._scalars.add(rows)
        self._heartbeat.epoch, self._heartbeat.epochs_done = epoch, epoch + 1
        if summarize:
            self.summary.set_default_value("last_epoch", epoch)
        self.event("on_epoch_end", epoch=epoch, metrics=metrics, **extra)
        if self._listeners:
            from runlab.tracking.records import EpochRecord, numeric

            per_split = {split: numeric(values) for split, values in metrics.items()}
            self._emit(EpochRecord(epoch, time.time(), per_split, numeric(extra)))
        _io.atomic_write_json(self.dir / "metrics.json", self._safe_summary())
        if self._status is RunState.RUNNING:
            self._beat()  # status and watch see the epoch now, not at the next heartbeat

    def _emit(self, record: Any) -> None:
        for listener in self._listeners:
            listener.on_record(record)

    def event(self, event: str, /, **fields: Any) -> None:
        """Append one event (``on_warning``, ``on_checkpoint``, ...) to events.jsonl, flushed
        before returning, so a ``kill -9`` cannot lose it."""
        record = {"event": event, "time": time.time()}
        record.update(redact(fields, self._secrets))  # an error message may quote a secret
        self._events.write(record, flush=True)

    def progress(
        self,
        epoch: int | None = None,
        total_epochs: int | None = None,
        step: int | None = None,
        total_steps: int | None = None,
        fraction: float | None = None,
    ) -> None:
        """Feed the heartbeat: the epoch being trained, totals, or a progress fraction."""
        self._heartbeat.update(
            epoch=epoch,
            total_epochs=total_epochs,
            step=step,
            total_steps=total_steps,
            fraction=fraction,
        )

    def heartbeat(self) -> dict[str, Any]:
        """What heartbeat.json says now."""
        return self._heartbeat.snapshot()

    def _beat(self) -> None:
        self._heartbeat.write()


END_CODES.update({Run.__exit__.__code__, Run.finish.__code__})


def start_run(
    config: Any = None,
    root: str | os.PathLike[str] | None = None,
    name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    **options: Any,
) -> Run:
    """Create and start a run; use it as ``with runlab.start_run(...) as run:``.

    ``root`` is the runs root (default ``./runs`` or ``$RUNLAB_ROOT``); the run's files go to
    ``<root>/<run_id>/``. Options: ``parent``, ``trial``, ``seed``, ``device``, ``overrides``,
    ``heartbeat_interval`` (seconds, default 5 or ``$RUNLAB_HEARTBEAT_S``), ``capture_stdout``
    (copy prints into stdout.log), ``handle_signals`` (SIGTERM -> ``preempted``), ``index``,
    ``listeners`` (:class:`runlab.tracking.records.Listener`; ``runlab.start_run`` also takes
    ``sinks``).
    """
    return Run(root=root, name=name, config=config, tags=tags, **options).start()
