"""Warm processes (runlab.sweep.warm): a sweep's or study's runs are forked from a server that
imported torch once, each still in a process of its own. A run that segfaults, runs out of
memory or is killed fails alone; where the server cannot be used, runs start fresh and say so;
Ctrl-C stops every child and leaves every run with a status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import runlab
from runlab.sweep.warm import RunStarter

REPO = Path(__file__).resolve().parents[1]


def crash_config(tmp_path: Path) -> Path:
    path = tmp_path / "crash.yaml"
    path.write_text(
        "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
        "trainer: {epochs: 1}\nloop: tests.helpers:crash_loop\nfigures: {preset: none}\n"
    )
    return path


def process_events(run_dir: Path) -> list[dict[str, Any]]:
    return runlab.RunRecord(run_dir).events("on_process")


def test_a_run_that_segfaults_or_runs_out_of_memory_fails_alone(cli, root, tmp_path) -> None:
    config = crash_config(tmp_path)
    code, out, err = cli(
        "sweep", config, "+how=segv,oom,killed,ok", "+x=1,2", "--jobs", "2",
        "-o", root, "-f", "json",
    )  # fmt: skip
    assert code == 1, err
    rows = json.loads(out)["runs"]
    by_how: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_how.setdefault(row["+how"] if "+how" in row else row["how"], []).append(row)
    assert [r["status"] for r in by_how["ok"]] == ["finished", "finished"]
    for how in ("segv", "oom", "killed"):
        assert {r["status"] for r in by_how[how]} == {"failed"}, (how, by_how[how])
    runs = {p.name: runlab.RunRecord(p) for p in root.glob("2*") if (p / "run.json").exists()}
    assert len(runs) == 8  # every combination got as far as its run directory
    # every run ends with a status: the two killed by a signal read as crashed (their process
    # is gone), the out-of-memory one failed with torch's error, the rest finished
    states = sorted(r.state.value for r in runs.values())
    assert states == ["crashed"] * 4 + ["failed"] * 2 + ["finished"] * 2
    oom = [r for r in runs.values() if r.state.value == "failed"]
    assert {r.metrics["error"]["type"] for r in oom} == {"OutOfMemoryError"}, oom[0].metrics
    # each run in a process of its own, forked warm, none of them this one
    pids = {r.info["pid"] for r in runs.values()}
    assert len(pids) == 8 and os.getpid() not in pids
    assert all(process_events(r.path) == [_warm()] for r in runs.values())


def _warm() -> dict[str, Any]:
    return {"event": "on_process", "process": "warm", "time": pytest.approx(time.time(), abs=600)}


def test_a_study_goes_on_after_a_trial_segfaults(cli, root, tmp_path) -> None:
    config = crash_config(tmp_path)
    code, out, err = cli(
        "tune", config, "+how=choice(segv,ok)", "--sampler", "grid", "--trials", "2",
        "--objective", "val.loss", "-o", root, "-f", "json",
    )  # fmt: skip
    assert code == 1 and "(#1 killed by SIGSEGV (exit code -11))" in err, err
    trials = json.loads(out)["trials"]  # the grid's two points, the study went on after #1
    assert sorted(t["state"] for t in trials) == ["COMPLETE", "FAIL"], trials
    assert {t["params"]["+how"] for t in trials if t["state"] == "COMPLETE"} == {"ok"}


def test_runs_start_fresh_where_the_server_cannot_be_used(cli, root, tmp_path, monkeypatch):
    config = crash_config(tmp_path)
    monkeypatch.setenv("RUNLAB_WARM", "0")  # asked for
    code, out, err = cli("sweep", config, "+x=1", "-o", root / "a", "-f", "json")
    assert code == 0, err
    (run,) = json.loads(out)["runs"]
    events = process_events(root / "a" / run["run_id"])
    assert [(e["process"], e["reason"]) for e in events] == [("fresh", "RUNLAB_WARM=0")]
    monkeypatch.delenv("RUNLAB_WARM")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("fork server socket refused")

    monkeypatch.setattr(RunStarter, "_fork", broken)  # the server cannot start
    code, out, err = cli("sweep", config, "+x=1,2", "-o", root / "b", "-f", "json")
    assert code == 0, err
    line = "runlab: runs start as fresh processes: the warm server did not start (OSError"
    assert err.count(line) == 1, err  # said once, not per run
    for row in json.loads(out)["runs"]:
        (event,) = process_events(root / "b" / row["run_id"])
        assert event["process"] == "fresh" and "fork server socket refused" in event["reason"]
        assert row["status"] == "finished"


def _children_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_ctrl_c_stops_every_child_and_every_run_ends_with_a_status(root, tmp_path) -> None:
    config = crash_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlab", "sweep", str(config), "+how=nap", "+nap=120",
         "+x=1,2,3", "--jobs", "2", "-o", str(root)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        live = [p for p in root.glob("2*/metrics.json")]  # written with the first epoch
        if len(live) == 2:
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    else:
        raise AssertionError("the two runs did not start")
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C: the whole foreground group
    _, err = proc.communicate(timeout=90)
    assert proc.returncode != 0
    deadline = time.time() + 30
    while not _children_gone(proc.pid) and time.time() < deadline:
        time.sleep(0.2)
    assert _children_gone(proc.pid), "a run or the warm server outlived Ctrl-C"
    runs = [runlab.RunRecord(p) for p in root.glob("2*") if (p / "run.json").exists()]
    assert len(runs) == 2, err  # the third never started
    assert {r.state.value for r in runs} <= {"preempted", "stopped"}, [r.state for r in runs]


def test_a_script_without_a_main_guard_runs_once(root, tmp_path) -> None:
    """multiprocessing re-imports the submitter's __main__ in its children: a script calling
    runlab with no `if __name__ == "__main__":` would run again in every run's process."""
    config = crash_config(tmp_path)
    script = tmp_path / "sweep_script.py"
    script.write_text(
        "import sys\n"
        "print('script ran', flush=True)\n"
        "from runlab.cli.main import main\n"
        f"main(['sweep', {str(config)!r}, '+x=1,2', '-o', {str(root)!r}])\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("script ran") == 1
    logs = " ".join(p.read_text() for p in root.glob("sweeps/*/logs/*"))
    assert "script ran" not in logs
    assert len([p for p in root.glob("2*") if (p / "run.json").exists()]) == 2
