"""Crash paths against real processes: exception, SIGTERM, SIGINT, kill -9, parallel writers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import runlab
from runlab._io import read_jsonl
from runlab.tracking.scalars import read_scalars
from tests.conftest import python_script, run_python

# A child that trains "forever": a step every ~4 ms, an epoch every 100 steps.
LOOP = """
import sys, time, runlab
root = sys.argv[1]
with runlab.start_run(config={"lr": 0.1}, root=root, name="child", heartbeat_interval=0.2) as run:
    run.on_preempt(lambda: run.checkpoint_path("last").write_text("saved on preempt"))
    print("RUN_DIR", run.dir, flush=True)
    step = 0
    for epoch in range(10**6):
        for _ in range(100):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
            step += 1
            time.sleep(0.004)  # slow enough that the 64 KiB buffer alone would hold >4 s
        run.log_epoch(epoch, {"train": {"loss": 1.0 / step}})
"""


def _start(tmp_path: Path, root: Path) -> tuple[subprocess.Popen[str], Path]:
    script = python_script(tmp_path, LOOP, "loop.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("RUN_DIR"), line + proc.stderr.read() if proc.stderr else ""
    return proc, Path(line.split(maxsplit=1)[1].strip())


def _wait_for_epochs(run_dir: Path, n: int, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(read_jsonl(run_dir / "events.jsonl")) >= 1 + n:
            return
        time.sleep(0.05)
    raise AssertionError(f"child did not reach {n} epochs")


def test_exception_marks_failed_and_exits_1(tmp_path: Path, root: Path) -> None:
    script = python_script(
        tmp_path,
        """
        import sys, runlab
        with runlab.start_run(root=sys.argv[1], name="boom") as run:
            print("about to fail")
            raise ValueError("bad batch at step 3")
        """,
    )
    proc = run_python(script, str(root))
    assert proc.returncode == 1
    assert "ValueError: bad batch at step 3" in proc.stderr
    (record,) = runlab.load_runs(root)
    assert record.state is runlab.RunState.FAILED
    assert record.metrics["error"]["type"] == "ValueError"
    assert "about to fail" in record.stdout()
    assert "on_exception" in [e["event"] for e in record.events()]


def test_sigterm_runs_the_hook_then_marks_preempted(tmp_path: Path, root: Path) -> None:
    proc, run_dir = _start(tmp_path, root)
    _wait_for_epochs(run_dir, 1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.PREEMPTED
    assert (run_dir / "checkpoints" / "last.pt").read_text() == "saved on preempt"
    events = [e["event"] for e in record.events()]
    assert events[-2:] == ["on_signal", "on_train_end"]
    assert record.events("on_train_end")[0]["status"] == "preempted"
    assert "error" not in record.metrics


def test_sigint_marks_stopped(tmp_path: Path, root: Path) -> None:
    proc, run_dir = _start(tmp_path, root)
    _wait_for_epochs(run_dir, 1)
    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    assert code in (-signal.SIGINT, 130, 1)  # CPython re-raises SIGINT after KeyboardInterrupt
    assert runlab.RunRecord(run_dir).state is runlab.RunState.STOPPED


def test_kill_9_is_crashed_and_loses_at_most_about_a_second(tmp_path: Path, root: Path) -> None:
    proc, run_dir = _start(tmp_path, root)
    _wait_for_epochs(run_dir, 3)
    time.sleep(0.7)  # mid-epoch, with unflushed steps in the buffer
    killed_at = time.time()
    proc.kill()
    proc.wait(timeout=10)

    record = runlab.RunRecord(run_dir)
    assert record.info["status"] == "running"  # nothing was written after the kill ...
    assert record.state is runlab.RunState.CRASHED  # ... but the dead pid is noticed
    # no epoch-level event lost: every on_epoch_end has its scalars.csv row, in order
    epochs = [e["epoch"] for e in record.events("on_epoch_end")]
    assert epochs == list(range(len(epochs))) and len(epochs) >= 3
    assert [r["epoch"] for r in read_scalars(run_dir / "scalars.csv")] == epochs
    # per-step scalars: at most about a second lost
    steps = record.steps()
    assert killed_at - steps[-1]["time"] < 1.5
    assert [s["step"] for s in steps] == list(range(len(steps)))
    # the index, which still says running, shows it crashed too
    (row,) = runlab.load_runs(root)
    assert row.state is runlab.RunState.CRASHED


WRITER = """
import sys, runlab
root, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    with runlab.start_run(root=root, name=f"w{worker}", tags={"worker": worker, "i": i},
                          capture_stdout=False) as run:
        run.log_epoch(0, {"train": {"loss": float(i)}})
"""


def test_parallel_writers_lose_no_index_rows(tmp_path: Path, root: Path) -> None:
    script = python_script(tmp_path, WRITER, "writer.py")
    workers, per_worker = 4, 12
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(root), str(w), str(per_worker)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read() if p.stderr else ""
    # read the table itself: listing would also repair missing rows from the directories
    with sqlite3.connect(root / "index.db") as con:
        rows = con.execute("SELECT status, tags FROM runs").fetchall()
    assert len(rows) == workers * per_worker
    assert {s for s, _ in rows} == {"finished"}
    pairs = {(json.loads(t)["worker"], json.loads(t)["i"]) for _, t in rows}
    assert len(pairs) == workers * per_worker
    assert len(runlab.load_runs(root)) == workers * per_worker


def test_run_on_another_host_is_crashed_when_its_heartbeat_is_stale(root: Path) -> None:
    with runlab.start_run(root=root, capture_stdout=False) as run:
        pass
    info = json.loads((run.dir / "run.json").read_text())
    info.update(status="running", host="some-other-node", ended=None)
    (run.dir / "run.json").write_text(json.dumps(info))
    beat = {"time": time.time(), "interval": 5.0}
    (run.dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runlab.RunRecord(run.dir).state is runlab.RunState.RUNNING
    beat["time"] = time.time() - 3600
    (run.dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runlab.RunRecord(run.dir).state is runlab.RunState.CRASHED


def test_live_pid_with_a_stale_heartbeat_is_crashed(root: Path) -> None:
    # a hung or SIGSTOPped process keeps its pid but stops beating
    with runlab.start_run(root=root, capture_stdout=False) as run:
        pass
    info = json.loads((run.dir / "run.json").read_text())
    info.update(status="running", ended=None)  # pid: this test process, alive
    (run.dir / "run.json").write_text(json.dumps(info))
    beat = {"time": time.time() - 5.0, "interval": 1.0}
    (run.dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runlab.RunRecord(run.dir).state is runlab.RunState.RUNNING
    beat["time"] = time.time() - 61.0  # past max(6 x 1 s, 60 s)
    (run.dir / "heartbeat.json").write_text(json.dumps(beat))
    assert runlab.RunRecord(run.dir).state is runlab.RunState.CRASHED


def test_reused_pid_is_not_taken_for_the_run() -> None:
    from runlab.tracking.liveness import pid_alive

    assert pid_alive(os.getpid(), started_at=time.time())
    # this process started long after 1970: the pid belongs to someone younger than the run
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to read process start times")
    assert not pid_alive(os.getpid(), started_at=0.0)
