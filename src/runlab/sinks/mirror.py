"""Mirrors of a live run: one thread and one bounded queue per sink.

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
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, MissingDependencyError
from runlab.sinks.base import SINK_NAMES, Final, Record, RunMeta, Sink
from runlab.tracking import _io

MIRRORS_FILE = "mirrors.json"
QUEUE_SIZE = 100_000  # records; a sink this far behind drops step records and says so
BATCH = 5_000
PREEMPTED_WAIT_S = 10.0

Warn = Callable[[str, str], None]  # (sink name, message)


def sink_options(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    block = config.get(name)
    return dict(block) if isinstance(block, Mapping) else {}


def build_sink(name: str, options: Mapping[str, Any] | None = None) -> Sink:
    """A sink by name (``tensorboard``, ``wandb``, ``mlflow``) or import path
    (``pkg.mod:MySink``, a :class:`Sink` subclass); options checked against the schema."""
    from runlab.config.validate import check_block, check_sink_names

    check_sink_names([name], "sink")
    if name in SINK_NAMES:
        from runlab.config.schema import SINK_CONFIGS

        checked = check_block(SINK_CONFIGS[name], dict(options or {}), name)
        if name == "tensorboard":
            from runlab.sinks.tensorboard import TensorBoardSink

            return TensorBoardSink(checked)
        if name == "wandb":
            from runlab.sinks.wandb import WandbSink

            return WandbSink(checked)
        from runlab.sinks.mlflow import MlflowSink

        return MlflowSink(checked)
    from runlab.config.validate import import_object

    cls = import_object(name, "sink")
    if not (isinstance(cls, type) and issubclass(cls, Sink)):
        raise ConfigError(f"sink {name!r} is not a subclass of runlab.sinks.base.Sink")
    return cls(options)


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
        self._thread = threading.Thread(
            target=self._main, name=f"runlab-sink-{sink.name}", daemon=True
        )

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
            try:
                batch = [self.queue.get(timeout=0.05)]
            except queue.Empty:
                if self._final is not None and self.queue.empty():
                    break
                continue
            with contextlib.suppress(queue.Empty):
                while len(batch) < BATCH:
                    batch.append(self.queue.get_nowait())
            try:
                self.sink.write(batch)
            except BaseException as err:
                self._fail("failed mid-run", err)
                return
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

    @classmethod
    def build(
        cls, names: Sequence[str], options: Mapping[str, Mapping[str, Any]], warn: Warn
    ) -> Mirror:
        return cls([build_sink(n, options.get(n)) for n in names], warn)

    def start(self, meta: RunMeta) -> None:
        self._meta = meta
        self._workers = [_Worker(sink, meta, self._warn) for sink in self.sinks]
        for worker in self._workers:
            worker.start()

    def put(self, record: Record) -> None:
        for worker in self._workers:
            worker.put(record)

    def finish(self, final: Final) -> None:
        """Hand the end to every sink and wait for each at most its own timeout."""
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
            if worker.dropped:
                self._warn(
                    name,
                    f"sink {name} fell behind and dropped {worker.dropped} records; its mirror is "
                    f"incomplete (`runlab sync {self._meta.id} --sink {name}` redoes it)",
                )
            if worker.entry is not None:
                entries.append(
                    entry(worker.sink, self._meta, worker.entry, not worker.dropped, "live")
                )
        if entries:
            record_mirrors(self._meta.dir, entries)


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
