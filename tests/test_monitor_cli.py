"""status, watch, logs and stop against real runs in other processes (as from another
terminal): everything is read from the run directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import runlab
from runlab._io import read_jsonl

from .conftest import python_script

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "RUNLAB_HEARTBEAT_S": "0.5"}
Cli = Callable[..., tuple[int, str, str]]
LONG = [
    str(REPO / "examples" / "quickstart.yaml"),
    "trainer.epochs=200",
    "trainer.batch_size=32",
    "data.n_samples=8000",
    "model.hidden=[32]",
    "--no-preflight",
    "-f",
    "json",
]


def runlab_proc(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runlab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def wait_for_epoch(root: Path, name: str, epochs: int = 1, timeout: float = 60) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        dirs = [d for d in root.glob(f"*-{name}-*") if (d / "events.jsonl").exists()]
        if dirs:
            done = [e for e in read_jsonl(dirs[0] / "events.jsonl") if e["event"] == "on_epoch_end"]
            if len(done) >= epochs:
                return dirs[0]
        time.sleep(0.05)
    raise AssertionError(f"run {name} did not reach epoch {epochs}")


def test_status_watch_stop_then_resume(cli: Cli, root: Path) -> None:
    gate = '+gates=[{name: sane, every_epoch: true, require: "train.loss < 1e6", on_fail: warn}]'
    proc = runlab_proc("run", *LONG, gate, "-o", str(root), "-n", "long")
    try:
        run_dir = wait_for_epoch(root, "long", epochs=2)
        code, out, err = cli("status", root, "-f", "json")
        assert code == 0, err
        (row,) = json.loads(out)
        assert row["status"] == "running" and row["total_epochs"] == 200
        assert row["epoch"] >= 2 and 0 < row["progress"] < 1 and row["eta_seconds"] > 0
        assert row["monitor"] == "val.loss" and row["latest"] is not None
        assert row["best"] <= row["latest"] and row["failed_gates"] == []
        code, out, _ = cli("watch", "long", "--root", root, "--once")
        assert code == 0 and "running" in out and "epoch" in out
        assert "✓ sane every epoch: train.loss < 1e6  passed" in out
        assert "val.loss" in out and any(ch in out for ch in "▁▂▃▄▅▆▇█")

        code, out, err = cli("stop", "long", "--root", root, "--wait")
        assert code == 0, err
        assert out.splitlines()[-1].endswith(" stopped")
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err  # a requested stop is a clean end
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.STOPPED
    assert record.metrics["stop_reason"] == "runlab stop"
    # noticed mid-epoch (last.pt saved there) or during validation (the epoch's last.pt stands)
    saved = record.events("on_checkpoint")[-1]
    assert saved.get("reason", "stopped") == "stopped"
    assert (run_dir / "checkpoints" / "last.pt").exists()
    assert any(e["event"] == "on_stop_request" for e in record.events())
    code, out, _ = cli("status", root, "-f", "json")
    assert json.loads(out)[0]["status"] == "stopped"

    # the stop request does not outlive the session it ended: --resume runs to the end
    epochs = f"trainer.epochs={saved['epoch']}"
    resumed = runlab_proc(
        "run", "--resume", run_dir.name, epochs, "-o", str(root), "-f", "json", "--no-preflight"
    )
    out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert runlab.RunRecord(run_dir).state is runlab.RunState.FINISHED
    code, _, err = cli("stop", run_dir.name, "--root", root)
    assert code == 2 and "is finished, not running" in err


def test_stop_now_sends_sigterm_and_ends_stopped(cli: Cli, root: Path) -> None:
    proc = runlab_proc("run", *LONG, "-o", str(root), "-n", "now")
    try:
        run_dir = wait_for_epoch(root, "now")
        code, out, err = cli("stop", "now", "--root", root, "--now", "--wait")
        assert code == 0 and "SIGTERM sent" in out, err
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.STOPPED
    assert [e["signal"] for e in record.events("on_signal")] == ["SIGTERM"]


@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_stop_reaches_a_custom_loop_that_does_not_poll(
    tmp_path: Path, root: Path, cli: Cli, sigint: str
) -> None:
    """``ignored``: how a shell starts ``cmd &`` or ``nohup cmd &`` (SIGINT set to SIG_IGN,
    so Python delivers no KeyboardInterrupt). Old code: the stop never arrived."""
    script = python_script(
        tmp_path,
        f"""
        import time, runlab
        with runlab.start_run(root={str(root)!r}, name="loop") as run:
            print("started", flush=True)
            step = 0
            while True:
                run.log({{"x": step}}); step += 1
                time.sleep(0.01)
        """,
    )
    ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if sigint == "ignored" else None
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        stderr=subprocess.PIPE,
        env=ENV,
        preexec_fn=ignore,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        code, _, err = cli("stop", "loop", "--root", root)
        assert code == 0, err
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    (run_dir,) = [d for d in root.iterdir() if d.is_dir()]
    assert runlab.RunRecord(run_dir).state is runlab.RunState.STOPPED
    codes = [e.get("code") for e in read_jsonl(run_dir / "events.jsonl")]
    assert ("sigint_ignored" in codes) is (sigint == "ignored")


def test_watch_and_logs_follow_a_run_until_it_ends(root: Path) -> None:
    proc = runlab_proc("run", *LONG, "trainer.epochs=4", "-o", str(root), "-n", "short")
    try:
        wait_for_epoch(root, "short")
        watch = runlab_proc("watch", "short", "--root", str(root), "--interval", "0.2")
        logs = runlab_proc("logs", "short", "--root", str(root), "-f")
        w_out, w_err = watch.communicate(timeout=120)
        l_out, l_err = logs.communicate(timeout=120)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert watch.returncode == 0, w_err
    assert "finished" in w_out and "epoch 4/4" in w_out
    assert logs.returncode == 0, l_err
    assert "epoch 1/4" in l_out and "epoch 4/4" in l_out  # the whole log, then what followed


def test_status_shows_a_killed_run_as_crashed(tmp_path: Path, root: Path, cli: Cli) -> None:
    script = python_script(
        tmp_path,
        f"""
        import time, runlab
        run = runlab.start_run(root={str(root)!r}, name="doomed")
        print("started", flush=True)
        time.sleep(60)
        """,
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    code, out, _ = cli("status", root, "-f", "json")
    assert code == 0 and [r["status"] for r in json.loads(out)] == ["crashed"]


def test_usage_errors(cli: Cli, root: Path) -> None:
    root.mkdir()
    code, _, err = cli("watch", "--root", root)
    assert code == 2 and "give runs to watch" in err
    code, _, err = cli("watch", "--study", "nope", "--root", root)
    assert code == 2 and "no study 'nope'" in err
    code, _, err = cli("logs", "nope", "--root", root)
    assert code == 2 and "no run 'nope'" in err
