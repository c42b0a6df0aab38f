"""A sweep's combinations have one owner: ``--resume`` of a sweep that still runs is refused
with who runs it; after its owner was ``kill -9``ed, the runs it left behind are adopted (the
running one is not started again, the ended one is recorded), never run twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from runlab.tracking.record import RunRecord
from runlab.tracking.state import RunState

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")


def _sweep_json(root: Path, timeout: float = 60) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(root.glob("sweeps/*/sweep.json"))
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError("the sweep never wrote sweep.json")


def _runs(root: Path) -> list[RunRecord]:
    return [RunRecord(p.parent) for p in root.glob("*/run.json")]


def _wait(condition, timeout: float = 120, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_one_owner_per_sweep_and_a_dead_owners_runs_are_adopted(cli, root: Path) -> None:
    # #0 runs long enough to outlive its owner; #1 is quick
    sweep = subprocess.Popen(
        [sys.executable, "-m", "runlab", "sweep", QUICK, "trainer.epochs=40,1", "-o", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its runs are not killed with it, as after a lost ssh
    )
    try:
        sweep_id = _sweep_json(root).parent.name
        _wait(lambda: any(r.state is RunState.RUNNING for r in _runs(root)), what="no run")

        # a second owner is refused while the first lives: one line, exit 2, nothing started
        code, _, err = cli("sweep", "--resume", sweep_id, "-o", root)
        assert code == 2, err
        assert err.count("\n") == 1 and f"is being run by pid {sweep.pid}" in err, err
        assert len(_runs(root)) == 1

        sweep.send_signal(signal.SIGKILL)  # the owner dies; its run #0 goes on
        sweep.wait()
        (orphan,) = _runs(root)
        assert orphan.state is RunState.RUNNING

        code, out, err = cli("sweep", "--resume", sweep_id, "-o", root, "-f", "json")
        assert code == 0, err
        assert f"combination #0 still runs as {orphan.id}: not started again" in err
        rows = {r["index"]: r for r in json.loads(out)["runs"]}
        assert rows[0]["run_id"] == orphan.id and rows[0]["status"] == "running"
        assert rows[1]["status"] == "finished"

        _wait(lambda: RunRecord(orphan.path).state.is_final, what="the orphan never ended")
        code, out, err = cli("sweep", "--resume", sweep_id, "-o", root, "-f", "json")
        assert code == 0, err
        assert {r["index"]: r["status"] for r in json.loads(out)["runs"]} == {
            0: "finished",
            1: "finished",
        }
        trials = Counter(str(r.info.get("trial")) for r in _runs(root))
        assert trials == {"0": 1, "1": 1}  # old code: #0 ran twice
        assert not (root / "sweeps" / sweep_id / "lease.json").exists()
    finally:
        if sweep.poll() is None:
            sweep.kill()
        for run in _runs(root):  # an orphan left by a failed assertion
            pid = run.info.get("pid")
            if run.state is RunState.RUNNING and isinstance(pid, int):
                os.kill(pid, signal.SIGKILL)
