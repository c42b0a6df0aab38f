"""Fault injection: a run killed (SIGKILL) just before each durable write of an epoch, then
resumed, ends with the same epochs, numbers and weights as a run never killed. Before the
epoch's row was written ahead of last.pt, a kill between the two lost the epoch for good."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import runlab

REPO = Path(__file__).resolve().parents[1]
ARGS = [
    str(REPO / "examples" / "quickstart.yaml"),
    "trainer.epochs=3",
    "data.n_samples=1200",
    "model.hidden=[16]",
    "--no-preflight",
    "-f",
    "json",
]
ENV = {**os.environ, "PYTHONPATH": str(REPO), "RUNLAB_HEARTBEAT_S": "1000"}
WRITES = ["scalars row", "on_epoch_end", "metrics.json", "last.pt", "best.pt", "on_checkpoint"]


def _run(root: Path, *args: str, kill_at: int | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "tests" / "fault_run.py"), "run", *args, "-o", str(root)]
    env = {**ENV, "RUNLAB_KILL_AT": str(kill_at or 0)}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def _result(run_dir: Path) -> tuple[list[tuple[int, str, float]], dict[str, torch.Tensor]]:
    rows = [(r["epoch"], r["split"], r["loss"]) for r in runlab.RunRecord(run_dir).scalars()]
    last = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["model"]
    return rows, last


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[list, dict]:
    done = _run(tmp_path_factory.mktemp("straight"), *ARGS)
    assert done.returncode == 0, done.stderr[-2000:]
    return _result(Path(json.loads(done.stdout)["run_dir"]))


# two boundaries in the default suite (each failed before the reorder), every one with -m slow
CASES = [
    pytest.param(
        k, id=name, marks=() if name in ("scalars row", "on_checkpoint") else pytest.mark.slow
    )
    for k, name in enumerate([*WRITES, "epoch 3"], start=1)
]


@pytest.mark.parametrize("kill_at", CASES)
def test_killed_at_each_write_of_an_epoch_then_resumed(
    tmp_path: Path, straight: tuple[list, dict], kill_at: int
) -> None:
    root = tmp_path / "runs"
    killed = _run(root, *ARGS, kill_at=kill_at)
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = [p for p in root.iterdir() if (p / "run.json").exists()]
    assert runlab.RunRecord(run_dir).state is runlab.RunState.CRASHED
    # right after the kill, metrics.json holds the last epoch whose summary was written
    # (epoch 2's once its metrics.json write, the 3rd, happened), never a trailing one
    summary = json.loads((run_dir / "metrics.json").read_text())
    epoch = 2 if kill_at > 3 else 1
    assert summary["last_epoch"] == epoch
    val = [loss for e, split, loss in straight[0] if split == "val" and e == epoch]
    assert summary["val_loss"] == pytest.approx(val[0], rel=1e-6)
    resumed = _run(root, "--resume", run_dir.name, "--no-preflight", "-f", "json")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows, last = _result(run_dir)
    assert rows == straight[0]  # every epoch, once, with the uninterrupted run's numbers
    for name, tensor in straight[1].items():
        assert torch.equal(last[name], tensor), name
    record = runlab.RunRecord(run_dir)
    assert record.state is runlab.RunState.FINISHED and record.metrics["last_epoch"] == 3
    assert not list(run_dir.rglob(".*.tmp"))
