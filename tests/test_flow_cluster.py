"""Flow steps on a scheduler, against the real Slurm and HTCondor of tests/clusters: cmd, run
(over seeds), sweep and tune steps submitted as jobs and waited for, their results the same as
the runs the jobs made; all cached the second time (nothing submitted); a flow killed while it
waits finds its jobs again instead of submitting twice; a failed job stops the flow with its
log's last line. Without a cluster: where a step runs is not part of its key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.cluster_helpers import REPO, runlab, wait_for

QUICK = REPO / "examples" / "quickstart.yaml"
SMALL = '[trainer.epochs=1, data.n_samples=256, "model.hidden=[8]"]'


def _flow(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o777)  # HTCondor's jobs run as the pool's own user
    path = folder / "flow.yaml"
    path.write_text(text)
    return path


def _state(root: Path, name: str) -> dict:
    return json.loads((root / "flows" / name / "state.json").read_text())["steps"]


def _metric(root: Path, run: str, key: str = "val_loss") -> float:
    return float(json.loads((root / run / "metrics.json").read_text())[key])


def _jobs_submitted(root: Path) -> int:
    """Every submission recorded under the root (sweeps, studies, flows' own jobs)."""
    return sum(len(json.loads(p.read_text())["submissions"]) for p in root.rglob("jobs/batch.json"))


def test_where_a_step_runs_is_not_part_of_its_key(tmp_path: Path) -> None:
    """A step cached here stays cached when the flow moves it to a cluster (no scheduler is
    asked: a cached step is never submitted)."""
    work = tmp_path / "w"
    flow = _flow(work, "steps:\n  a: {cmd: 'echo a > a.out', outputs: {out: a.out}}\n")
    root = tmp_path / "runs"
    assert runlab("flow", flow, "-r", root).returncode == 0
    flow.write_text(
        "launcher: {name: slurm, partition: nowhere}\n"
        "steps:\n  a: {cmd: 'echo a > a.out', outputs: {out: a.out}}\n"
    )
    again = runlab("flow", flow, "-r", root)
    assert again.returncode == 0 and "a: cached" in again.stderr, again.stderr


@pytest.mark.slurm
def test_cmd_run_sweep_and_tune_steps_on_slurm_then_all_cached(slurm: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    flow = _flow(
        work,
        f"""
name: onslurm
launcher: slurm
steps:
  data:
    cmd: echo "job $SLURM_JOB_ID" > data.txt
    outputs: {{table: data.txt}}
  here:
    cmd: echo "job ${{SLURM_JOB_ID:-none}}" > here.txt
    launcher: local
    outputs: {{out: here.txt}}
    after: [data]
  train:
    kind: run
    config: {QUICK}
    overrides: {SMALL}
    seeds: [1, 2]
    after: [data]
  grid:
    kind: sweep
    config: {QUICK}
    overrides: [trainer.epochs=1, data.n_samples=256, "optim.lr=0.001,0.05"]
  study:
    kind: tune
    config: {QUICK}
    overrides: [trainer.epochs=1, data.n_samples=256, "optim.lr=interval(0.001,0.05)"]
    trials: 2
    workers: 2
    seed: 3
  ok:
    kind: gate
    when: steps.train.metrics.val_loss < 100 and steps.grid.metrics.val_loss < 100
""",
    )
    root = tmp_path / "runs"
    first = runlab("flow", flow, "-r", root, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    state = _state(root, "onslurm")
    assert (work / "data.txt").read_text().split()[1].isdigit()  # ran in a Slurm job
    assert (work / "here.txt").read_text() == "job none\n"  # launcher: local kept it here
    train = state["train"]["result"]
    losses = []
    for run, seed in zip(train["runs"], [1, 2], strict=True):
        info = json.loads((root / run / "run.json").read_text())
        assert info["seed"] == seed and info["scheduler"]["name"] == "slurm"
        assert info["tags"]["flow"] == "onslurm" and info["tags"]["flow_step"] == "train"
        losses.append(_metric(root, run))
    assert train["metrics"]["val_loss"] == pytest.approx(np.mean(losses))
    assert train["metrics"]["val_loss_std"] == pytest.approx(np.std(losses, ddof=1))
    grid = state["grid"]["result"]
    assert len(grid["runs"]) == 2
    assert grid["run"] == min(grid["runs"], key=lambda r: _metric(root, r))  # the best
    study = state["study"]["result"]
    assert len(study["runs"]) == 2 and study["run"] in study["runs"]
    assert study["run"] == min(study["runs"], key=lambda r: _metric(root, r))
    for run in study["runs"]:
        assert json.loads((root / run / "run.json").read_text())["scheduler"]["name"] == "slurm"
    submitted = _jobs_submitted(root)
    assert submitted == 4  # data, train, grid, study (two workers in one array)

    again = runlab("flow", flow, "-r", root, timeout=120)
    assert again.returncode == 0 and again.stderr.count("cached") == 5, again.stderr
    assert _jobs_submitted(root) == submitted  # nothing submitted the second time


WAITING = """
name: waiting
launcher: {name: slurm}
steps:
  slow:
    cmd: >-
      touch started; for i in $(seq 600); do [ -f go ] && break; sleep 0.2; done;
      echo once >> ran.log; echo done > slow.out
    outputs: {out: slow.out}
  after:
    cmd: echo after > after.out
    launcher: local
    outputs: {out: after.out}
    after: [slow]
"""


@pytest.mark.slurm
def test_a_flow_killed_while_its_job_runs_finds_the_job_again(slurm: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    flow = _flow(work, WAITING)
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-m", "runlab", "flow", str(flow), "-r", str(root)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env,
    )  # fmt: skip
    wait_for(lambda: (work / "started").exists(), 120, "the job to start")
    os.killpg(child.pid, signal.SIGKILL)  # the flow dies; its Slurm job does not
    child.wait()
    assert _state(root, "waiting")["slow"]["status"] == "submitted"
    status = runlab("flow", "status", flow, "-r", root, "--explain")
    assert "slow             submitted, not finished: a rerun waits for" in status.stdout
    (work / "go").touch()
    t0 = time.monotonic()
    done = runlab("flow", flow, "-r", root, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "slow: submitted" not in done.stderr  # found again, not submitted twice
    assert _jobs_submitted(root) == 1
    assert (work / "ran.log").read_text() == "once\n"
    assert (work / "after.out").read_text() == "after\n"
    assert time.monotonic() - t0 < 120


@pytest.mark.slurm
def test_a_failed_job_stops_the_flow_with_its_logs_last_line(slurm: Path, tmp_path: Path) -> None:
    flow = _flow(
        tmp_path / "w",
        "launcher: slurm\nsteps:\n  bad:\n    cmd: echo 'no such table' >&2; exit 3\n"
        "  next: {cmd: 'touch next.out', after: [bad], launcher: local}\n",
    )
    root = tmp_path / "runs"
    done = runlab("flow", flow, "-r", root, timeout=300)
    assert done.returncode == 1
    line = done.stderr.strip().splitlines()[-1]
    assert "step bad: 1 of 1 jobs on slurm ended failed (#0: no such table)" in line, line
    assert not (tmp_path / "w" / "next.out").exists()
    assert _state(root, "flow")["bad"]["status"] == "failed"


@pytest.mark.htcondor
def test_cmd_and_run_steps_on_htcondor(htcondor: Path) -> None:
    work = htcondor / "flowwork"
    flow = _flow(
        work,
        f"""
name: oncondor
launcher: htcondor
steps:
  data:
    cmd: echo "user $(id -un)" > data.txt
    outputs: {{table: data.txt}}
  train:
    kind: run
    config: {QUICK}
    overrides: {SMALL}
    after: [data]
""",
    )
    root = work / "runs"
    first = runlab("flow", flow, "-r", root, cwd=work, shared=True, timeout=600)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / "data.txt").read_text() == "user runlab\n"  # the pool's user ran it
    train = _state(root, "oncondor")["train"]["result"]
    info = json.loads((root / train["run"] / "run.json").read_text())
    assert info["scheduler"]["name"] == "htcondor" and info["user"] == "runlab"
    assert train["metrics"]["val_loss"] == _metric(root, train["run"])
    again = runlab("flow", flow, "-r", root, cwd=work, shared=True)
    assert again.returncode == 0 and again.stderr.count("cached") == 2
