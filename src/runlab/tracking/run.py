"""The live handle of a run: it creates the run directory and writes every file in it."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from runlab import _io
from runlab._ids import make_run_id
from runlab._provenance import provenance
from runlab._secrets import redact, redact_args
from runlab._yaml import to_plain, to_yaml
from runlab.errors import ConfigError, exception_text
from runlab.tracking._stdout import StdoutCapture
from runlab.tracking.scalars import ScalarsCsv
from runlab.tracking.state import RunState
from runlab.tracking.summary import Summary

if TYPE_CHECKING:
    from runlab.tracking.records import Listener, RunMeta

DEFAULT_ROOT = "runs"
DEFAULT_HEARTBEAT_S = 5.0
STEP_FLUSH_S = 1.0  # a kill -9 loses at most about this much of steps.jsonl
STOP_FILE = "stop.json"  # `runlab stop` writes it; the run notices within half a second


class Preempted(SystemExit):
    """Raised in the main thread on SIGTERM: the run ends ``preempted`` and the process exits
    with status 143 (128 + SIGTERM) unless the program catches it."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


class Pruned(Exception):
    """Raised by a trainer when a study's pruner stops the trial: the run ends ``pruned``."""


def default_root() -> Path:
    return Path(os.environ.get("RUNLAB_ROOT") or DEFAULT_ROOT)


def plain_name(name: str, what: str) -> str:
    """A study or sweep name becomes a folder under the runs root: a name, never a path."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]{0,99}", name) or ".." in name:
        raise ConfigError(
            f"{what} {name!r} must be a name (letters, digits, _ . -, at most 100), not a path"
        )
    return name


def check_root(root: Path) -> Path:
    """A runs root that runs can be written under: not a file (``-o`` pointing at one)."""
    if root.exists() and not root.is_dir():
        raise ConfigError(f"runs root {str(root)!r} is a file; give a folder (--output-dir)")
    return root


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def _safe_relative(name: str, what: str) -> str:
    path = Path(name)
    if not name or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"{what} {name!r} must be a relative path inside the run directory")
    return name


class Run:
    """A run being recorded. Create it with :func:`runlab.start_run` and use it as a context
    manager; leaving the block sets the final status (finished, failed, stopped, preempted)."""

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
        self.heartbeat_interval = float(
            heartbeat_interval or os.environ.get("RUNLAB_HEARTBEAT_S") or DEFAULT_HEARTBEAT_S
        )
        self.preempt_requested = False
        self.stop_requested = False  # `runlab stop`, or a failed gate: end `stopped`
        self.stop_reason: str | None = None
        self.cooperative_signals = False  # a trainer that polls preempt/stop_requested sets this
        self._end_hooks: list[Callable[[RunState], None]] = []
        self._capture_stdout = capture_stdout
        self._handle_signals = handle_signals
        self._use_index = index
        self._status = RunState.CREATED
        self._step: int | None = None
        self._epoch: int | None = None
        self._epochs_done = 0
        self._progress: dict[str, Any] = {}
        self._t0 = time.time()
        self._prior_seconds = 0.0  # a reopened run's time in its earlier sessions
        self._preempt_hooks: list[Callable[[], None]] = []
        self._thread: threading.Thread | None = None
        self._stop_beat = threading.Event()
        self._prev_sigterm: Any = None
        self._stdout: StdoutCapture | None = None
        self._steps: _io.JsonlAppender | None = None
        self._ended = False
        self._finishing = False
        self.end_problems: list[str] = []  # what the end could not write (a full disk)
        # built (and checked) before the run directory exists: a bad sink makes none
        self._listeners = list(listeners)
        listened: dict[str, Any] = {}
        for listener in self._listeners:
            listener.attach(self._listener_warning)
            listened.update(listener.run_info())

        # A SIGTERM from here on is noted, and acted on once the directory is whole.
        self._ready = False
        self._install_signal_handler()
        try:
            if _existing is not None:
                self._reopen(_existing)
                if listened.get("sinks"):
                    listened["sinks"] = {**(self.info.get("sinks") or {}), **listened["sinks"]}
                if listened:
                    self.info.update(listened)
                    self._write_info()
            else:
                self._create(device, seed, parent, trial, overrides, listened)
        except BaseException:
            self._restore_signal_handler()
            raise
        self._become_ready()

    def _create(
        self,
        device: str | None,
        seed: int | None,
        parent: str | None,
        trial: Any,
        overrides: Sequence[str] | None,
        listened: dict[str, Any],
    ) -> None:
        self.id, self.dir = self._make_dir()
        self.info: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "status": self._status.value,
            "created": utc_now_iso(),
            "started": None,
            "ended": None,
            "duration_seconds": None,
            **self._redacted_provenance(provenance()),
            "device": device,
            "seed": seed,
            "tags": self.tags,
            "parent": parent,
            "trial": trial,
            "heartbeat_interval": self.heartbeat_interval,
        }
        self.info.update(listened)
        _io.atomic_write_text(self.dir / "config.yaml", to_yaml(self.safe_config))
        safe_overrides = redact_args(overrides or [], self._secrets)
        _io.atomic_write_text(self.dir / "overrides.yaml", to_yaml(safe_overrides))
        self._events = _io.JsonlAppender(self.dir / "events.jsonl")
        self._scalars = ScalarsCsv(self.dir / "scalars.csv")
        _io.keep_reserve(self.dir)
        self._write_info()

    @classmethod
    def reopen(cls, path: str | os.PathLike[str], **options: Any) -> Run:
        """Continue a run in its own directory (``--resume``): same id, files appended to.
        Call :meth:`start` (or use ``with``) to mark it running again."""
        path = Path(path)
        return cls(root=path.parent, _existing=path, **options)

    def _reopen(self, path: Path) -> None:
        from runlab._yaml import load_yaml

        self.dir, self.root = path, path.parent
        self.info = _io.read_json(path / "run.json")
        self.id, self.name = self.info["id"], self.info.get("name") or "run"
        self.tags = dict(self.info.get("tags") or {})
        self._use_config(load_yaml((path / "config.yaml").read_text(encoding="utf-8")) or {})
        try:
            for key, value in _io.read_json(path / "metrics.json").items():
                if key != "error":
                    self.summary.set_default_value(key, value)
        except (OSError, ValueError):
            pass
        prior = self.info.get("duration_seconds")
        self._prior_seconds = float(prior) if isinstance(prior, (int, float)) else 0.0
        self.info.update(self._redacted_provenance(provenance_of_resume()))
        with contextlib.suppress(FileNotFoundError):
            (path / STOP_FILE).unlink()  # a stop request ended the last session, not this one
        _io.remove_stale_tmp(path, ("checkpoints", "artifacts", "figures"))  # a kill's leftovers
        self._events = _io.JsonlAppender(path / "events.jsonl")
        self._scalars = ScalarsCsv(path / "scalars.csv")
        self._scalars.load()
        _io.keep_reserve(path)
        self._write_info()

    def truncate_epochs(self, first_dropped: int) -> None:
        """Forget scalars.csv rows of epochs >= ``first_dropped`` (a resume redoes them)."""
        self._scalars.drop_from(first_dropped)

    def write_log(self, text: str) -> None:
        """Append ``text`` to stdout.log only (what a terminal shows some other way)."""
        if self._stdout is not None:
            self._stdout.write_log(text)

    # ------------------------------------------------------------------ identity and files
    def _make_dir(self) -> tuple[str, Path]:
        check_root(self.root).mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            run_id = make_run_id(self.name)
            path = self.root / run_id
            try:
                path.mkdir()
            except FileExistsError:
                continue
            return run_id, path
        raise RuntimeError(f"could not create a unique run directory under {self.root}")

    @property
    def status(self) -> RunState:
        return self._status

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

    def _use_config(self, config: Any) -> None:
        """The config, and what of it may be written: secrets and their copies redacted."""
        from runlab._secrets import secret_values

        self.config = config
        self._secrets = secret_values(config)
        self.safe_config = redact(config, self._secrets)

    def _redacted_provenance(self, info: dict[str, Any]) -> dict[str, Any]:
        """The command lines of run.json without the secrets typed on them."""
        for key in ("command", "resume_command"):
            if isinstance(info.get(key), list):
                info[key] = redact_args(info[key], self._secrets)
        return info

    def set_config(self, config: Any) -> None:
        """Replace the run's config (an integration that learns it after start): config.yaml
        is rewritten, redacted, and the index updated."""
        self._use_config(to_plain(config))
        _io.atomic_write_text(self.dir / "config.yaml", to_yaml(self.safe_config))
        self._update_index()

    def _meta(self, resumed: bool) -> RunMeta:
        from runlab.tracking.records import RunMeta, provenance_fields

        config = self.safe_config
        return RunMeta(
            id=self.id,
            name=self.name,
            dir=self.dir.resolve(),
            config=config if isinstance(config, dict) else {"config": config},
            tags=dict(self.tags),
            parent=self.info.get("parent"),
            created=self.info.get("created"),
            resumed=resumed,
            **provenance_fields(self.info),
        )

    def _listener_warning(self, sink: str, message: str) -> None:
        """A listener's warning (a sink's, from its own thread): an event and a line on stderr."""
        with contextlib.suppress(Exception):  # after the run's files are closed: nothing to do
            self.event("on_warning", code="sink_failed", sink=sink, message=message)
        with contextlib.suppress(Exception):
            sys.stderr.write(f"runlab: warning: {message}\n")

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
        self._ready = False
        try:
            self._start()
            self._become_ready()
        except BaseException as err:
            self.finish(exc=err)
            raise
        return self

    def _start(self) -> None:
        self._status = RunState.RUNNING
        self._t0 = time.time()
        self.info["status"] = self._status.value
        self.info.setdefault("started", None)
        self.info["started"] = self.info["started"] or utc_now_iso()
        if self._capture_stdout:
            self._stdout = StdoutCapture(str(self.dir / "stdout.log"))
            self._stdout.start()
        self._write_info()
        resumed = self.info.get("resumed") is not None and self.info.get("started") is not None
        self.event(
            "on_resume" if resumed else "on_start", run_id=self.id, name=self.name, tags=self.tags
        )
        if self._listeners:
            meta = self._meta(resumed)
            for listener in self._listeners:
                listener.on_start(meta)
        self._beat()
        self._thread = threading.Thread(
            target=self._beat_loop, name="runlab-heartbeat", daemon=True
        )
        self._thread.start()
        self._update_index()

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
            self._interrupt_main()

    def _interrupt_main(self) -> None:
        """Stop a loop that does not poll: KeyboardInterrupt in the main thread, as Ctrl-C
        would. A process started in the background (``cmd &``, nohup) ignores SIGINT, and then
        Python delivers nothing: the run's own SIGTERM handler ends it instead (``stopped``,
        since a stop was asked), and an event says so."""
        import _thread

        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _thread.interrupt_main()
        elif self._prev_sigterm is not None:  # our handler is installed
            self.event(
                "on_warning",
                code="sigint_ignored",
                message="SIGINT is ignored in this process (started in the background?); "
                "the stop goes through runlab's SIGTERM handler instead",
            )
            _thread.interrupt_main(signal.SIGTERM)
        else:
            self.event(
                "on_warning",
                code="stop_not_delivered",
                message="this loop does not poll run.stop_requested, SIGINT is ignored and "
                "runlab does not handle signals here: the run stops only when its loop "
                "checks run.stop_requested, or by `runlab stop --now` / kill",
            )

    def finish(
        self, status: RunState | str | None = None, exc: BaseException | None = None
    ) -> None:
        """End the run. Without ``status``, it is derived from ``exc`` (None: finished).

        Whatever happens on the way (a hook that raises SystemExit or KeyboardInterrupt, a
        second Ctrl-C, an exception whose message cannot be printed, a summary JSON cannot
        hold, a full disk), the final status is written; an interrupt that came meanwhile is
        raised again once it is."""
        if self._ended or self._finishing:
            return
        final = RunState(status) if status is not None else self._status_for(exc)
        self._finishing = True  # from here a SIGTERM is noted, never raised
        interrupt: BaseException | None = None
        try:
            if final is RunState.PREEMPTED or (
                final is RunState.STOPPED and self.preempt_requested
            ):
                interrupt = self._run_hooks("preempt hook", self._preempt_hooks)
            if final is RunState.PRUNED and exc is not None:
                self.event("on_pruned", message=exception_text(exc))
            if final is RunState.FAILED and exc is not None:
                error = {
                    "type": type(exc).__name__,
                    "message": exception_text(exc).partition(": ")[2],
                    "traceback": "".join(
                        traceback.format_exception(type(exc), exc, exc.__traceback__)
                    ),
                }
                self.summary["error"] = error
                self.event("on_exception", **error)
            if final is RunState.STOPPED and self.stop_reason:
                self.summary.set_default_value("stop_reason", self.stop_reason)
            if interrupt is None:
                ends = [functools.partial(hook, final) for hook in self._end_hooks]
                interrupt = self._run_hooks("end hook", ends)
        except BaseException as err:  # a Ctrl-C between the steps above, or a full disk
            interrupt = interrupt or (err if not isinstance(err, Exception) else None)
        interrupted = self._end(final)
        if interrupt is not None:
            raise interrupt
        if interrupted:
            raise KeyboardInterrupt

    def _run_hooks(self, what: str, hooks: Sequence[Callable[[], Any]]) -> BaseException | None:
        """Call each hook; one that fails is an ``on_warning`` event. SystemExit or
        KeyboardInterrupt (a second Ctrl-C while an alert runs) skips the rest and is returned,
        to be raised once the status is written."""
        for hook in hooks:
            try:
                hook()
            except Exception as err:  # an alert that fails is a warning, never a lost status
                with contextlib.suppress(Exception):
                    self.event("on_warning", message=f"{what} failed: {exception_text(err)}")
            except BaseException as err:
                with contextlib.suppress(Exception):
                    self.event(
                        "on_warning",
                        message=f"{what}s cut short by {type(err).__name__}; the run still ends",
                    )
                return err
        return None

    def _status_for(self, exc: BaseException | None) -> RunState:
        if self.stop_requested and (exc is None or isinstance(exc, (Preempted, KeyboardInterrupt))):
            return RunState.STOPPED
        if exc is None:
            return RunState.PREEMPTED if self.preempt_requested else RunState.FINISHED
        if isinstance(exc, Preempted):
            return RunState.PREEMPTED
        if isinstance(exc, Pruned):
            return RunState.PRUNED
        if isinstance(exc, KeyboardInterrupt):
            return RunState.STOPPED
        if isinstance(exc, SystemExit) and exc.code in (0, None):
            return RunState.FINISHED
        return RunState.FAILED

    def _end(self, status: RunState) -> bool:
        """Write the final status; True when a Ctrl-C came while it was written (noted, not
        raised, so that the files are complete) or cut the wait for the mirrors short."""
        self._ended = True
        self._stop_beat.set()
        with self._sigint_noted() as noted:
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=10)
            ended = time.time()
            session = ended - self._t0
            duration = self._prior_seconds + session  # every session of a resumed run counts
            self.summary.set_default_value("duration_seconds", round(duration, 6))
            with contextlib.suppress(Exception):  # a full disk: the status matters more
                self.event(
                    "on_train_end",
                    status=status.value,
                    duration_seconds=round(duration, 6),
                    session_seconds=round(session, 6),
                )
            _io.drop_reserve(self.dir)  # room for the last writes on a full disk
            problems: list[str] = []
            # metrics.json first: a reader that sees the final status also finds the summary.
            try:
                _io.atomic_write_json(self.dir / "metrics.json", self._safe_summary())
            except Exception as err:
                problems.append(f"metrics.json not written ({exception_text(err)})")
            self._status = status
            self.info.update(
                status=status.value, ended=utc_now_iso(), duration_seconds=round(duration, 6)
            )
            try:
                self._write_info()
            except Exception as err:
                problems.append(
                    f"run.json not written, status stays running ({exception_text(err)})"
                )
            self.end_problems = problems
            if problems:
                text = "; ".join(problems)
                with contextlib.suppress(Exception):
                    self.event("on_warning", code="end_not_recorded", message=text)
                with contextlib.suppress(Exception):
                    sys.stderr.write(f"runlab: warning: run {self.id}: {text}\n")
            if self._steps is not None:
                with contextlib.suppress(Exception):
                    self._steps.close()
        if self._listeners:
            from runlab.tracking.records import Final

            final = Final(status.value, self._safe_summary(), self.dir, ended)
            for listener in self._listeners:
                try:
                    listener.on_end(final)  # each sink waits at most its own timeout
                except KeyboardInterrupt:  # a Ctrl-C while the mirrors catch up: leave them
                    noted.append(signal.SIGINT)
                    listener.abandon()
        with contextlib.suppress(Exception):
            self._events.close()
        self._restore_signal_handler()
        if self._stdout is not None:
            with contextlib.suppress(Exception):
                self._stdout.stop()
        with contextlib.suppress(Exception):
            self._beat()  # a last heartbeat carrying the final status
        self._update_index()
        return bool(noted)

    @contextlib.contextmanager
    def _sigint_noted(self) -> Iterator[list[int]]:
        """Ctrl-C noted, not raised, while the end is written (main thread, signals ours)."""
        noted: list[int] = []
        previous: Any = None
        if self._handle_signals and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(ValueError):
                previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
        try:
            yield noted
        finally:
            if previous is not None:
                with contextlib.suppress(ValueError):
                    signal.signal(signal.SIGINT, previous)

    # ------------------------------------------------------------------ signals
    def _install_signal_handler(self) -> None:
        if not self._handle_signals or threading.current_thread() is not threading.main_thread():
            return
        self._prev_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)

    def _restore_signal_handler(self) -> None:
        if self._prev_sigterm is not None:
            with contextlib.suppress(ValueError):  # not in the main thread any more
                signal.signal(signal.SIGTERM, self._prev_sigterm)
            self._prev_sigterm = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.preempt_requested or self._finishing:
            return  # a second SIGTERM, or one while the run ends, must not interrupt the writes
        self.preempt_requested = True
        if self._ready:  # else noted, and acted on by _become_ready
            self._act_on_sigterm()

    def _act_on_sigterm(self) -> None:
        self.event("on_signal", signal="SIGTERM")
        if (self.dir / STOP_FILE).exists():  # `runlab stop --now`: a stop, not a preemption
            self._read_stop_file()
        if self._status is RunState.CREATED:  # before start(): the run ends here
            self.finish(RunState.PREEMPTED)
            raise Preempted()
        if not self.cooperative_signals:
            raise Preempted()

    def _become_ready(self) -> None:
        """The run directory is consistent again: a SIGTERM noted meanwhile now acts."""
        self._ready = True
        if self.preempt_requested and not self._finishing:
            self._act_on_sigterm()

    # ------------------------------------------------------------------ logging
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Per-step scalars, appended to steps.jsonl (buffered; on disk within ~1 s)."""
        if step is None:
            step = 0 if self._step is None else self._step + 1
        self._step = step
        record = {"step": step, "time": time.time()}
        record.update(metrics)
        steps = self._steps
        if steps is None:
            steps = self._steps = _io.JsonlAppender(self.dir / "steps.jsonl", STEP_FLUSH_S)
        steps.write(record)
        if self._listeners:
            from runlab.tracking.records import StepRecord, numeric

            step_record = StepRecord(step, record["time"], numeric(metrics))
            for listener in self._listeners:
                listener.on_record(step_record)

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
        self._epoch = epoch
        self._epochs_done = epoch + 1
        if summarize:
            self.summary.set_default_value("last_epoch", epoch)
        self.event("on_epoch_end", epoch=epoch, metrics=metrics, **extra)
        if self._listeners:
            from runlab.tracking.records import EpochRecord, numeric

            per_split = {split: numeric(values) for split, values in metrics.items()}
            epoch_record = EpochRecord(epoch, time.time(), per_split, numeric(extra))
            for listener in self._listeners:
                listener.on_record(epoch_record)
        _io.atomic_write_json(self.dir / "metrics.json", self._safe_summary())
        if self._status is RunState.RUNNING:
            self._beat()  # status and watch see the epoch now, not at the next heartbeat

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
        updates = {
            "epoch": epoch,
            "total_epochs": total_epochs,
            "step": step,
            "total_steps": total_steps,
            "fraction": fraction,
        }
        self._progress.update({k: v for k, v in updates.items() if v is not None})
        if epoch is not None:
            self._epoch = epoch
        if step is not None:
            self._step = step

    # ------------------------------------------------------------------ heartbeat
    def _fraction(self) -> float | None:
        p = self._progress
        if p.get("fraction") is not None:
            return float(p["fraction"])
        if p.get("total_steps") and self._step is not None:
            return min(1.0, (self._step + 1) / float(p["total_steps"]))
        if p.get("total_epochs"):
            return min(1.0, self._epochs_done / float(p["total_epochs"]))
        return None

    def heartbeat(self) -> dict[str, Any]:
        now = time.time()
        elapsed = now - self._t0
        fraction = self._fraction()
        eta = elapsed * (1 - fraction) / fraction if fraction else None
        return {
            "pid": os.getpid(),
            "host": self.info["host"],
            "time": now,
            "interval": self.heartbeat_interval,
            "status": self._status.value,
            "epoch": self._epoch,
            "total_epochs": self._progress.get("total_epochs"),
            "step": self._step,
            "total_steps": self._progress.get("total_steps"),
            "progress": None if fraction is None else round(fraction, 6),
            "elapsed_seconds": round(elapsed, 3),
            "eta_seconds": None if eta is None else round(eta, 3),
        }

    def _beat(self) -> None:
        _io.atomic_write_json_fast(self.dir / "heartbeat.json", self.heartbeat())

    def _beat_loop(self) -> None:
        last_beat = time.monotonic()
        tick = min(0.5, self.heartbeat_interval)
        while not self._stop_beat.wait(tick):
            try:
                if not self.stop_requested and (self.dir / STOP_FILE).exists():
                    self._read_stop_file()
                if self._steps is not None:
                    self._steps.flush_if_due()
                if time.monotonic() - last_beat >= self.heartbeat_interval:
                    last_beat = time.monotonic()
                    if self._ended:
                        return
                    self._beat()
                    if self.summary.dirty:
                        _io.atomic_write_json(self.dir / "metrics.json", self._safe_summary())
            except Exception:  # the heartbeat must never take the run down (disk full, ...)
                continue

    def _read_stop_file(self) -> None:
        try:
            request = _io.read_json(self.dir / STOP_FILE)
        except (OSError, ValueError):
            request = {}
        by = f"{request.get('user', '?')}@{request.get('host', '?')}"
        self.request_stop(str(request.get("reason") or "runlab stop"), by=by)

    # ------------------------------------------------------------------ index
    def _update_index(self) -> None:
        if not self._use_index:
            return
        from runlab.tracking.index import RunIndex

        try:
            RunIndex(self.root).upsert_run_dir(self.dir, info=self.info, config=self.safe_config)
        except Exception as err:  # the index is derived; a failure is a warning, not a crash
            if not self._ended:
                self.event("on_warning", message=f"run index not updated: {err}")


def provenance_of_resume() -> dict[str, Any]:
    info = provenance()
    return {
        "pid": info["pid"],
        "host": info["host"],
        "resumed": utc_now_iso(),
        "resume_command": info["command"],
        "ended": None,
        "duration_seconds": None,
    }


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
