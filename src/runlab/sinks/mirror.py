"""Mirrors of a live run: a child process (:class:`MirrorProcess`, measured: sink threads in
the training process cost 13-18% of its throughput through the GIL), and in it one thread and
one bounded queue per sink (:class:`Mirror`).

The training thread only ever calls ``queue.put_nowait``: it never waits on a sink, whatever the
sink does (an import that takes seconds, a server that does not answer, an exception). A sink
that fails to start or fails later is switched off for the run with one ``on_warning`` event
naming the sink and the cause. When the run ends, each sink gets its own deadline (``timeout``)
to catch up and close; one that misses it is left behind with a warning, so that a run's end is
never held for longer than the slowest sink's timeout (10 s at most for a preempted run, whose
grace period is short). ``mirrors.json`` in the run directory records each complete mirror, so
that ``runlab sync`` knows what not to repeat.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runlab import _io
from runlab._threads import helper_thread
from runlab.errors import ConfigError, MissingDependencyError
from runlab.sinks.base import SINKS, Final, Record, RunMeta, Sink
from runlab.tracking.records import Listener

MIRRORS_FILE = "mirrors.json"
QUEUE_SIZE = 100_000  # records; a sink this far behind drops step records and says so
BATCH = 50_000  # records per write at most
PREEMPTED_WAIT_S = 10.0

Warn = Callable[[str, str], None]  # (sink name, message)


def sink_options(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    block = config.get(name)
    return dict(block) if isinstance(block, Mapping) else {}


def _print_warning(sink: str, message: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(f"runlab: warning: {message}\n")


def mirror_for(
    sinks: Sequence[str] | None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    config: Any = None,
) -> MirrorProcess | None:
    """The mirrors of a run as its listener, or None without sinks. ``options`` per sink
    name; by default each sink's block of ``config`` (``wandb:``, ``mlflow:``, ...)."""
    if not sinks:
        return None
    if options is None:
        plain = config if isinstance(config, Mapping) else {}
        options = {name: sink_options(plain, name) for name in sinks}
    return MirrorProcess.build(list(sinks), options)


def with_mirrors(run_options: Mapping[str, Any], config: Any = None) -> dict[str, Any]:
    """Run options with ``sinks`` / ``sink_options`` turned into the mirror listener: what
    ``runlab.start_run(..., sinks=[...])`` and the Lightning logger accept."""
    from runlab._yaml import to_plain

    options = dict(run_options)
    mirror = mirror_for(
        options.pop("sinks", None), options.pop("sink_options", None), to_plain(config)
    )
    if mirror is not None:
        options["listeners"] = [*options.get("listeners", ()), mirror]
    return options


def build_sink(name: str, options: Mapping[str, Any] | None = None) -> Sink:
    """A sink by registered name (``tensorboard``, ``wandb``, ``mlflow``, a plugin's) or import
    path (``pkg.mod:MySink``, a :class:`Sink` subclass); options checked against its options
    dataclass (its ``Options``), when it declares one."""
    from runlab.config.validate import check_block

    cls = SINKS.load(name, "sink")
    declared = SINKS.options_class(name, "sink")
    given = dict(options or {})
    checked = check_block(declared, given, name) if declared is not None else given
    sink: Sink = cls(checked)
    return sink


def describe_error(err: BaseException) -> str:
    if isinstance(err, MissingDependencyError):
        return str(err)
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Worker:
    def __init__(self, sink: Sink, meta: RunMeta, warn: Warn) -> None:
        self.sink, self.meta, self._warn = sink, meta, warn
        self.queue: queue.Queue[Record] = queue.Queue(QUEUE_SIZE)
        self.failed = False
        self.dropped = 0
        self.entry: dict[str, Any] | None = None
        self._final: Final | None = None
        self._ended = threading.Event()
        self._thread = helper_thread(self._main, f"runlab-sink-{sink.name}")

    def start(self) -> None:
        self._thread.start()

    def put(self, record: Record) -> None:
        if self.failed:
            return
        try:
            self.queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def end(self, final: Final) -> None:
        self._final = final
        self._ended.set()

    def join(self, deadline: float) -> bool:
        self._thread.join(max(0.0, deadline - time.monotonic()))
        return not self._thread.is_alive()

    def _fail(self, stage: str, err: BaseException) -> None:
        self.failed = True
        with contextlib.suppress(Exception):
            self.sink.abort()
        self._warn(
            self.sink.name,
            f"sink {self.sink.name} off for this run: {stage}: {describe_error(err)} "
            f"(the run goes on; `runlab sync {self.meta.id} --sink {self.sink.name}` "
            "mirrors it later)",
        )

    def _main(self) -> None:
        try:
            self.sink.open(self.meta)
        except BaseException as err:  # a sink must never take the run down
            self._fail("could not start", err)
            return
        while True:
            # One write a second at most: a store that pays per call (MLflow's SQL) gets few,
            # large batches, and its thread takes the GIL from the training loop rarely.
            ended = self._ended.wait(self.sink.flush_every)
            batch: list[Record] = []
            with contextlib.suppress(queue.Empty):
                while len(batch) < BATCH:
                    batch.append(self.queue.get_nowait())
            if batch:
                try:
                    self.sink.write(batch)
                except BaseException as err:
                    self._fail("failed mid-run", err)
                    return
            if ended and self.queue.empty():
                break
        try:
            assert self._final is not None
            self.entry = self.sink.close(self._final)
        except BaseException as err:
            self._fail("failed at the end", err)


class Mirror:
    """The sinks of one live run. ``warn`` receives each sink's one-line warning."""

    def __init__(self, sinks: Sequence[Sink], warn: Warn) -> None:
        self.sinks = list(sinks)
        self._warn = warn
        self._workers: list[_Worker] = []

    def start(self, meta: RunMeta) -> None:
        self._meta = meta
        self._workers = [_Worker(sink, meta, self._warn) for sink in self.sinks]
        for worker in self._workers:
            worker.start()

    def put(self, record: Record) -> None:
        for worker in self._workers:
            worker.put(record)

    def finish(self, final: Final, lost: int = 0) -> None:
        """Hand the end to every sink and wait for each at most its own timeout. ``lost``:
        records that never reached this process (its input was full)."""
        start = time.monotonic()
        for worker in self._workers:
            worker.end(final)
        entries = []
        for worker in self._workers:
            wait = worker.sink.timeout
            if final.status == "preempted":
                wait = min(wait, PREEMPTED_WAIT_S)
            name = worker.sink.name
            if not worker.join(start + wait):
                worker.failed = True
                self._warn(
                    name,
                    f"sink {name} did not finish within {wait:g} s; its mirror is incomplete "
                    f"(`runlab sync {self._meta.id} --sink {name}` redoes it)",
                )
                continue
            dropped = worker.dropped + lost
            if dropped:
                self._warn(
                    name,
                    f"sink {name} fell behind and dropped {dropped} records; its mirror is "
                    f"incomplete (`runlab sync {self._meta.id} --sink {name}` redoes it)",
                )
            if worker.entry is not None:
                entries.append(entry(worker.sink, self._meta, worker.entry, not dropped, "live"))
        if entries:
            record_mirrors(self._meta.dir, entries)


class MirrorProcess(Listener):
    """The parent's side of a run's mirrors: the sinks run in a child process
    (``python -m runlab.sinks.child``), so that neither their work nor their libraries' threads
    take the GIL from the training loop. The training thread only puts records on a bounded
    in-memory queue; a feeder thread sends them in batches over a pipe; a reader thread turns
    the child's warnings into events. A child that misses the end's deadline is killed."""

    def __init__(
        self, sinks: Sequence[Sink], warn: Warn, broken: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.sinks = list(sinks)
        self.broken = list(broken)  # (name, why): sinks whose constructor raised
        self.names = [s.name for s in self.sinks]  # as asked for (build: the import path)
        self._warn = warn
        self._queue: queue.Queue[Any] = queue.Queue(QUEUE_SIZE)
        self._lost = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._done = False  # the child said it was done
        self._stopping = False  # we stop it: its end is no surprise

    @classmethod
    def build(
        cls,
        names: Sequence[str],
        options: Mapping[str, Mapping[str, Any]],
        warn: Warn | None = None,
    ) -> MirrorProcess:
        """The sinks by name. A bad name or option is the user's input (ConfigError, no run);
        a sink whose own constructor raises is off for the run, with one warning at start."""
        sinks, built, broken = [], [], []
        for name in names:
            try:
                sinks.append(build_sink(name, options.get(name)))
            except (ConfigError, MissingDependencyError):
                raise
            except Exception as err:
                broken.append((name, describe_error(err)))
            else:
                built.append(name)
        process = cls(sinks, warn or _print_warning, broken)
        process.names = built
        return process

    # the run's listener: built (and checked) before the run directory exists, so that a bad
    # sink makes no run; it records in run.json what the mirrors were given (checked, defaults
    # filled in, secrets out), so that `runlab sync` mirrors to the same places
    def attach(self, warn: Warn) -> None:
        self._warn = warn

    def run_info(self) -> dict[str, Any]:
        from runlab._secrets import redact

        built = zip(self.names, self.sinks, strict=True)
        return {"sinks": {name: redact(sink.options) for name, sink in built}}

    def on_start(self, meta: RunMeta) -> None:
        self.start(meta)

    def on_record(self, record: Record) -> None:
        self.put(record)

    def on_end(self, final: Final) -> None:
        self.finish(final)

    def start(self, meta: RunMeta) -> None:
        self._meta = meta
        for name, why in self.broken:
            self._warn(
                name,
                f"sink {name} off for this run: could not be created: {why} "
                f"(the run goes on; `runlab sync {meta.id} --sink {name}` mirrors it later)",
            )
        if not self.sinks:
            return
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "runlab.sinks.child", str(write_fd)],
                stdin=subprocess.PIPE,
                pass_fds=(write_fd,),
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                start_new_session=True,  # Ctrl-C and SIGTERM reach the run, which ends us
            )
        finally:
            os.close(write_fd)
        self._replies = os.fdopen(read_fd, "rb")
        self._feeder = helper_thread(self._feed, "runlab-mirror-feed")
        self._reader = helper_thread(self._read, "runlab-mirror-read")
        self._queue.put_nowait(("start", self.sinks, meta))
        self._feeder.start()
        self._reader.start()

    def put(self, record: Record) -> None:
        if self._proc is None:  # no sink could be created
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._lost += 1

    def _feed(self) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        pipe = self._proc.stdin
        try:
            while True:
                item = self._queue.get()
                if isinstance(item, tuple):  # start or final
                    pickle.dump(item, pipe)
                    pipe.flush()
                    if item[0] == "final":
                        return
                    continue
                batch = [item]
                with contextlib.suppress(queue.Empty, IndexError):
                    while len(batch) < BATCH and not isinstance(self._queue.queue[0], tuple):
                        batch.append(self._queue.get_nowait())
                pickle.dump(("records", batch), pipe)
                pipe.flush()
                time.sleep(0.2)  # a few large writes rather than one per record
        except (OSError, ValueError):  # the child is gone; its warning says why
            return

    def _read(self) -> None:
        for line in self._replies:
            with contextlib.suppress(ValueError, KeyError):
                reply = json.loads(line)
                if reply["kind"] == "warn":
                    self._warn(reply["sink"], reply["message"])
                elif reply["kind"] == "done":
                    self._done = True
        # end of the replies: the child has exited; unless it said so, that is news
        if self._done or self._stopping or self._proc is None:
            return
        try:
            code = self._proc.wait(10)
        except subprocess.TimeoutExpired:
            code = None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        names = ", ".join(s.name for s in self.sinks)
        self._warn(
            "mirror",
            f"the mirror process died ({how}): mirrors {names} are incomplete for the rest of "
            f"the run (the run goes on; `runlab sync {self._meta.id}` redoes them)",
        )

    def finish(self, final: Final) -> None:
        if self._proc is None:  # the run ended before its mirrors started
            return
        if self._proc.poll() is not None:  # it died during the run: its warning said so
            self._reader.join(15)
            return
        wait = max(s.timeout for s in self.sinks)
        if final.status == "preempted":
            wait = min(wait, PREEMPTED_WAIT_S)
        item = ("final", final, self._lost)
        try:
            self._queue.put(item, timeout=wait)
        except queue.Full:
            self._lost += 1
        try:
            self._proc.wait(wait + 5)
        except subprocess.TimeoutExpired:
            self._stopping = True
            self._proc.kill()
            self._proc.wait()
            self._warn(
                "mirror",
                f"the mirror process did not finish within {wait + 5:g} s and was stopped; "
                f"mirrors may be incomplete (`runlab sync {self._meta.id}` redoes them)",
            )
        self._reader.join(5)
        with contextlib.suppress(OSError):
            self._replies.close()

    def abandon(self) -> None:
        """Stop the mirror process now (a Ctrl-C while it caught up), with one warning."""
        if self._proc is None:
            return
        self._stopping = True
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._warn(
            "mirror",
            "the mirrors were cut short by Ctrl-C and may be incomplete "
            f"(`runlab sync {self._meta.id}` redoes them)",
        )


def entry(
    sink: Sink, meta: RunMeta, details: Mapping[str, Any], complete: bool, how: str
) -> dict[str, Any]:
    return {
        "sink": sink.name,
        "target": sink.target(meta),
        "complete": complete,
        "how": how,
        "time": datetime.now(timezone.utc).isoformat(),
        **details,
    }


def read_mirrors(run_dir: Path) -> list[dict[str, Any]]:
    try:
        data = _io.read_json(run_dir / MIRRORS_FILE)
    except (OSError, ValueError):
        return []
    return [e for e in data.get("mirrors", []) if isinstance(e, dict)]


def record_mirrors(run_dir: Path, entries: Sequence[Mapping[str, Any]]) -> None:
    """Add or replace (same sink and target) entries of mirrors.json, atomically."""
    keys = {(e["sink"], e["target"]) for e in entries}
    kept = [e for e in read_mirrors(run_dir) if (e.get("sink"), e.get("target")) not in keys]
    _io.atomic_write_json(run_dir / MIRRORS_FILE, {"mirrors": [*kept, *entries]})
