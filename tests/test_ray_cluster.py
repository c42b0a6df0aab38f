"""runlab sweep and tune on a Ray cluster started elsewhere (`ray start --head` in another
folder, as on a real cluster), reached with --launcher-opt address=auto: results land under the
submitter's runs root, relative paths and the environment reach the trials, failures reach the
exit code."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import runlab

REPO = Path(__file__).resolve().parents[1]
pytest.importorskip("ray")


RAY_WORKER_PORTS = range(10000, 20000)  # ray start's own defaults (10002-19999) and neighbours


def _free_port() -> int:
    """A free port for the head that is never another cluster's nor inside the range Ray hands
    its workers (where the kernel's ephemeral range starts at 1024, bind(0) can return one of
    those: `ray start` then refuses, 'worker_ports ... used by other components')."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RAY_WORKER_PORTS:
            return port


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A real head node, started from its own folder and stopped afterwards."""
    ray = str(Path(sys.executable).parent / "ray")
    if not Path(ray).exists():
        ray = shutil.which("ray") or "ray"
    where = tmp_path_factory.mktemp("ray-head")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    port = _free_port()
    start = [ray, "start", "--head", "--port", str(port), "--num-cpus", "2"]
    start.append("--include-dashboard=false")
    done = subprocess.run(start, cwd=where, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    try:
        yield where
    finally:
        subprocess.run([ray, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_sweep_and_tune_on_a_started_cluster(
    cli, ray_cluster: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "project"
    work.mkdir()
    (work / "c.yaml").write_text(
        "data: {source: synthetic.regression, n_samples: 256}\nmodel: {hidden: [8]}\n"
        "trainer: {epochs: 1}\nloop: tests.helpers:env_loop\n"
    )
    monkeypatch.chdir(work)  # relative config and runs root, as a user types them
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # where tests.helpers is, for the trials
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{work}/mlflow.db")
    ray_args = ["--launcher", "ray", "--launcher-opt", "address=auto", "--jobs", "2", "-f", "json"]
    code, out, err = cli("sweep", "c.yaml", "+mark=1,2", *ray_args)
    assert code == 0, err
    runs = json.loads(out)["runs"]
    assert [r["status"] for r in runs] == ["finished", "finished"]
    for r in runs:  # under the submitter's ./runs, not where `ray start` ran
        record = runlab.RunRecord(work / "runs" / r["run_id"])
        assert record.metrics["cwd"] == str(work)
        assert record.metrics["env"]["MLFLOW_TRACKING_URI"] == f"sqlite:///{work}/mlflow.db"
    assert not (ray_cluster / "runs").exists()
    assert [r.id for r in runlab.load_runs("runs")] != []
    # a study whose every trial fails is exit 1, each trial FAIL with its reason
    pytest.importorskip("optuna")
    code, out, err = cli(
        "tune",
        "c.yaml",
        "+mark=choice(1,2)",
        "loop=tests.helpers:no_loop",
        "--trials",
        "2",
        *ray_args,
    )
    summary = json.loads(out)
    assert [t["state"] for t in summary["trials"]] == ["FAIL", "FAIL"]
    assert code == 1 and "2 of 2 trials failed" in err and "no_loop" in err, err
    code, out, err = cli("tune", "c.yaml", "+mark=choice(1,2)", "--trials", "2", *ray_args)
    assert code == 0, err
    assert {t["state"] for t in json.loads(out)["trials"][2:]} == {"COMPLETE"}
