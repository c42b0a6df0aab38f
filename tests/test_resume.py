"""SIGTERM saves last.pt and ends `preempted`; --resume continues to the same weights as an
uninterrupted run with the same seed (CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import runlab
from runlab._io import read_jsonl

REPO = Path(__file__).resolve().parents[1]
# dropout and a cosine schedule exercise the RNG and scheduler state; 3 epochs of ~560 batches,
# long enough (about a second each) for a SIGTERM to land mid-epoch
ARGS = [
    str(REPO / "examples" / "quickstart.yaml"),
    "trainer.epochs=3",
    "trainer.batch_size=64",
    "data.n_samples=60000",
    "model.hidden=[256,256]",
    "model.dropout=0.2",
    "schedule.name=cosine",
    "schedule.warmup_steps=5",
    "trainer.log_every=1",
    "--no-preflight",
    "-f",
    "json",
]
# the episodic loop: dropout, a cosine schedule, and the episode sampler's generator
EPISODIC = [
    str(REPO / "examples" / "allocation.yaml"),
    "trainer.epochs=3",
    "episodic.episodes_per_epoch=2048",
    "model.dropout=0.2",
    "schedule.name=cosine",
    "trainer.log_every=1",
    "--no-preflight",
    "-f",
    "json",
]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def runlab_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runlab", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def weights(run_dir: Path, which: str) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / f"{which}.pt", weights_only=True)["model"]


# the episodic case (about 30 s) with the slow tests, to keep make test within CI's budget
@pytest.mark.parametrize(
    "args", [ARGS, pytest.param(EPISODIC, marks=pytest.mark.slow)], ids=["supervised", "episodic"]
)
def test_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path: Path, args: list[str]) -> None:
    root = tmp_path / "runs"
    straight = runlab_cli(*args, "-o", str(root), "--run-name", "straight")
    out, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err
    straight_dir = Path(json.loads(out)["run_dir"])

    proc = runlab_cli(*args, "-o", str(root), "--run-name", "interrupted")
    run_dir = None
    deadline = time.time() + 120
    while time.time() < deadline:  # wait for the end of epoch 1, then preempt it in epoch 2
        dirs = [d for d in root.iterdir() if "interrupted" in d.name] if root.exists() else []
        if dirs:
            run_dir = dirs[0]
            events = read_jsonl(run_dir / "events.jsonl")
            if any(e["event"] == "on_epoch_end" for e in events):
                break
        time.sleep(0.01)
    assert run_dir is not None
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.PREEMPTED
    saved = record.events("on_checkpoint")[-1]
    assert saved["reason"] == "preempted" and saved["epoch"] == 2  # at a step boundary of epoch 2

    resumed = runlab_cli("--resume", run_dir.name, "-o", str(root), "--no-preflight", "-f", "json")
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads(out)["run_dir"] == str(run_dir)
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.FINISHED
    assert [r["epoch"] for r in record.scalars() if r["split"] == "train"] == [1, 2, 3]
    assert "on_resume" in [e["event"] for e in record.events()]
    for which in ("last", "best"):
        a, b = weights(straight_dir, which), weights(run_dir, which)
        for name in a:
            assert torch.equal(a[name], b[name]), (which, name)
    straight_m, resumed_m = runlab.RunRecord(straight_dir).metrics, record.metrics
    assert resumed_m["val_loss"] == straight_m["val_loss"]
    assert resumed_m["test"] == straight_m["test"]
    assert resumed_m["best"] == straight_m["best"]


def test_a_reopened_run_cleans_what_a_kill_left(tmp_path: Path) -> None:
    """A kill between writing a temporary file and renaming it leaves .NAME.XXXX.tmp behind;
    the next open of the run removes them, and only them."""
    with runlab.start_run({}, root=tmp_path / "runs", capture_stdout=False) as run:
        pass
    (run.dir / "checkpoints").mkdir(exist_ok=True)
    stale = [run.dir / ".metrics.json.a1b2.tmp", run.dir / "checkpoints" / ".last.pt.tmp"]
    kept = [run.dir / "notes.tmp", run.dir / "checkpoints" / "best.pt"]
    for path in stale + kept:
        path.write_text("x")
    with runlab.Run.reopen(run.dir, capture_stdout=False):
        pass
    assert [p.exists() for p in stale] == [False, False]
    assert [p.exists() for p in kept] == [True, True]
