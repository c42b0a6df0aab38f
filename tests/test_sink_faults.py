"""Sinks that fail in the ways a sink can: its constructor raises, its mirror process dies,
it raises everywhere during `runlab sync`. Each is one warning (or one failed row), the run
goes on, and mirrors.json claims nothing that did not happen."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import runlab
from runlab.sinks.mirror import read_mirrors
from runlab.tracking.record import RunRecord


def _warnings(run_dir: Path) -> list[dict[str, Any]]:
    return RunRecord(run_dir).events("on_warning")


def test_a_sink_whose_constructor_raises_is_one_warning(root: Path) -> None:
    """Old code: start_run raised RuntimeError; no run at all."""
    sinks = ["tests.sink_helpers:BrokenSink", "tests.sink_helpers:QuietSink"]
    with runlab.start_run({}, root=root, sinks=sinks) as run:
        run.log_epoch(0, {"val": {"loss": 1.0}})
    assert RunRecord(run.dir).state.value == "finished"
    (warning,) = _warnings(run.dir)
    assert warning["sink"] == "tests.sink_helpers:BrokenSink"
    assert "could not be created: RuntimeError: cannot build this sink" in warning["message"]
    assert [e["sink"] for e in read_mirrors(run.dir)] == ["quiet"]  # the other one mirrored
    assert list(RunRecord(run.dir).info["sinks"]) == ["tests.sink_helpers:QuietSink"]


def test_a_mirror_process_that_dies_is_one_warning_and_no_claim(root: Path) -> None:
    """Old code: nothing said the mirrors had stopped."""
    with runlab.start_run({}, root=root, sinks=["tests.sink_helpers:QuietSink"]) as run:
        run.log_epoch(0, {"val": {"loss": 1.0}})
        assert run._listeners and run._listeners[0]._proc is not None
        os.kill(run._listeners[0]._proc.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while not _warnings(run.dir):
            assert time.monotonic() < deadline, "no warning"
            run.log_epoch(1, {"val": {"loss": 0.5}})
            time.sleep(0.1)
    assert RunRecord(run.dir).state.value == "finished"
    (warning,) = _warnings(run.dir)
    assert "the mirror process died (killed by signal 9)" in warning["message"]
    assert f"runlab sync {run.id}" in warning["message"]
    assert read_mirrors(run.dir) == []  # nothing claimed complete


def test_sync_goes_on_past_sinks_that_raise_everywhere(cli: Callable[..., Any], root: Path) -> None:
    """Old code: the first run's hostile sink ended `runlab sync` with a traceback."""
    for _ in range(2):
        with runlab.start_run({}, root=root) as run:
            run.log_epoch(0, {"val": {"loss": 1.0}})
    sinks = ["tests.sink_helpers:BrokenSink", "tests.sink_helpers:HostileSink"]
    sinks += ["tests.sink_helpers:QuietSink"]
    code, out, err = cli("sync", root, *[a for s in sinks for a in ("--sink", s)], "-f", "json")
    assert code == 1, err
    rows = json.loads(out)
    assert len(rows) == 6
    outcomes = {(r["sink"], r["outcome"]) for r in rows}
    assert outcomes == {
        ("tests.sink_helpers:BrokenSink", "failed"),
        ("hostile", "failed"),
        ("quiet", "synced"),
    }
    details = {r["sink"]: r["detail"] for r in rows}
    assert details["hostile"] == "ValueError: no target for you"
    assert "Traceback" not in err
