"""--launcher slurm against a real Slurm (slurmctld + slurmd + munge, started by the ``slurm``
fixture): submit and return, runlab jobs, a failing job's log, --resume after a cancel,
requeue and time-limit warnings that resume from last.pt, a study run by worker jobs alone.
The bad-input cases that need no cluster run everywhere."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from runlab._io import read_jsonl
from tests.cluster_helpers import jobs, picky, runlab, runs_of, wait_for

REPO = Path(__file__).resolve().parents[1]
QUICK = str(REPO / "examples" / "quickstart.yaml")
SMALL = ["trainer.epochs=1", "data.n_samples=256", "model.hidden=[8]"]
# about a second an epoch: long enough to be preempted in the middle (as tests/test_resume.py)
LONG = ["trainer.epochs=3", "data.n_samples=30000", "trainer.batch_size=64", "model.hidden=[128]"]


@pytest.mark.slurm
def test_a_sweep_is_submitted_and_returns_then_jobs_wait_follows_it(
    slurm: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.001", *SMALL, "--launcher", "slurm",
                 "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    # returned before any run ended (a run takes seconds; sbatch milliseconds)
    assert not [r for r in runs_of(root) if r["status"] == "finished"]
    assert info["scheduler"] == "slurm" and info["submitted"] == 2 and len(info["job_ids"]) == 1
    job = info["job_ids"][0]
    folder = Path(info["path"]).parent
    manifest = (folder / "jobs" / "manifest.txt").read_text().splitlines()
    assert [shlex.split(line)[:3] for line in manifest] == [
        ["run", QUICK, "optim.lr=0.01"],
        ["run", QUICK, "optim.lr=0.001"],
    ]
    assert (folder / "jobs" / "tasks-0.txt").read_text() == "0\n1\n"
    assert "#SBATCH --array=0-1" in (folder / "jobs" / "submit-0.sh").read_text()

    code, view, err = jobs(info["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 0, err
    assert [(r["index"], r["job"], r["state"]) for r in view["jobs"]] == [
        (0, f"{job}_0", "finished"),
        (1, f"{job}_1", "finished"),
    ]
    assert view["objective"] == "val.loss"  # each row's objective, as metrics.json has it
    for row in view["jobs"]:
        metrics = json.loads((root / row["run_id"] / "metrics.json").read_text())
        assert row["objective"] == metrics["val_loss"]
    for row in view["jobs"]:  # each run knows its job, array index and node
        run = json.loads((root / row["run_id"] / "run.json").read_text())
        assert run["scheduler"] == {
            "name": "slurm",
            "job_id": f"{job}_{row['index']}",
            "array_index": row["index"],
            "node": socket.gethostname().split(".")[0],
        }
    sweep = json.loads(Path(info["path"]).read_text())  # runlab jobs recorded how each ended
    assert [c["status"] for c in sweep["combinations"]] == ["finished", "finished"]
    status = runlab("status", root, "-f", "json")  # runlab status names the job and node
    jobs_shown = sorted(row["job"] for row in json.loads(status.stdout))
    node = socket.gethostname().split(".")[0]
    assert jobs_shown == [f"slurm {job}_0 on {node}", f"slurm {job}_1 on {node}"]


@pytest.mark.slurm
def test_a_failing_job_shows_its_log_tail_and_jobs_wait_exits_1(
    slurm: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    out = runlab("sweep", picky(tmp_path), "+mark=1,fail", "--launcher", "slurm", "--pack", "2",
                 "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    sweep, job = json.loads(out.stdout)["sweep_id"], json.loads(out.stdout)["job_ids"][0]
    code, view, err = jobs(sweep, root, "--wait", "--poll", "0.5")
    assert code == 1
    states = {r["index"]: r for r in view["jobs"]}
    assert states[0]["state"] == "finished" and states[1]["state"] == "failed"
    assert states[0]["job"] == states[1]["job"] == f"{job}_0"  # --pack 2: one task ran both
    assert "planted failure for the scheduler tests" in states[1]["log"]
    assert "1 of 2 jobs failed (#1: " in err and "planted failure" in err
    table = runlab("jobs", sweep, "-o", root)
    assert table.returncode == 1 and "#1 failed, last lines of its log:" in table.stdout


@pytest.mark.slurm
def test_resume_after_cancelling_half_resubmits_only_what_did_not_finish(
    slurm: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    out = runlab("sweep", picky(tmp_path), "+mark=1,2,3", "+nap=1", "--launcher", "slurm",
                 "--launcher-opt", "parallelism=1", "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    folder = Path(info["path"]).parent
    wait_for(lambda: any(r["status"] == "finished" for r in runs_of(root)), what="a first run")
    cancel = runlab("jobs", info["sweep_id"], "--cancel", "-o", root)
    assert "cancelled slurm job(s)" in cancel.stderr
    finished_first = {r["trial"] for r in runs_of(root) if r["status"] == "finished"}
    wait_for(lambda: jobs(info["sweep_id"], root)[1]["jobs"][-1]["scheduler"] not in
             ("PENDING", "RUNNING"), what="the cancel")  # fmt: skip
    code, view, _ = jobs(info["sweep_id"], root)
    assert code == 1 and view["jobs"][-1]["state"] == "lost"  # cancelled before it ran

    resumed = runlab("sweep", "--resume", info["sweep_id"], "-o", root, "-f", "json")
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    assert again["submitted"] == 3 - len(finished_first) and len(again["job_ids"]) == 1
    resubmitted = {int(i) for i in (folder / "jobs" / "tasks-1.txt").read_text().split()}
    assert resubmitted == {0, 1, 2} - finished_first  # each keeps its manifest line
    code, view, err = jobs(info["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 0, err
    assert {r["state"] for r in view["jobs"]} == {"finished"}
    finished = [r for r in runs_of(root) if r["status"] == "finished"]
    assert sorted(r["trial"] for r in finished) == [0, 1, 2]  # one finished run each
    # nothing is left to resubmit: a second --resume submits nothing
    idle = runlab("sweep", "--resume", info["sweep_id"], "-o", root, "-f", "json")
    assert json.loads(idle.stdout)["submitted"] == 0


@pytest.mark.slurm
def test_requeue_and_a_time_limit_warning_resume_the_run_from_last_pt(
    slurm: Path, tmp_path: Path
) -> None:
    """scontrol requeue (SIGTERM to the job) and the time-limit warning (SIGUSR1 to the
    batch shell, sent here with scancel --signal=USR1 --batch rather than waiting minutes for
    a real limit): the run saves last.pt, ends preempted, the job goes back in the queue and
    its next start resumes the same run directory, which finishes with every epoch once."""
    root = tmp_path / "runs"
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.003", *LONG, "--launcher", "slurm",
                 "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    job = info["job_ids"][0]

    def mid_epoch() -> bool:
        runs = list(root.glob("*/events.jsonl"))
        return len(runs) == 2 and all(
            any(e["event"] == "on_epoch_end" for e in read_jsonl(p)) for p in runs
        )

    wait_for(mid_epoch, what="both runs past their first epoch")
    subprocess.run(["scontrol", "requeue", f"{job}_0"], check=True)
    subprocess.run(["scancel", "--signal=USR1", "--batch", f"{job}_1"], check=True)
    code, _, err = jobs(info["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 0, err
    runs = runs_of(root)
    assert len(runs) == 2 and {r["status"] for r in runs} == {"finished"}  # the same two runs
    for run in runs:
        events = read_jsonl(root / run["id"] / "events.jsonl")
        names = [e["event"] for e in events]
        assert "on_signal" in names and "on_resume" in names, (run["trial"], names)
        # resumed from last.pt (saved at the signal, or at the epoch end it arrived just after)
        assert "on_resume_checkpoint" in names, (run["trial"], names)
        epochs = [e["epoch"] for e in events if e["event"] == "on_epoch_end"]
        assert epochs == [1, 2, 3], (run["trial"], epochs)
        assert run["scheduler"]["job_id"] == f"{job}_{run['trial']}"
    logs = Path(info["path"]).parent / "logs"
    for index in (0, 1):  # two starts of each task, in the log's headers
        assert (logs / f"{index}.err").read_text().count(f"job {job}_{index}\n") == 2


@pytest.mark.slurm
def test_a_study_runs_on_worker_jobs_alone_and_retries_a_dead_workers_trial(
    slurm: Path, tmp_path: Path
) -> None:
    optuna = pytest.importorskip("optuna")
    root = tmp_path / "runs"
    name = "picky"
    journal = tmp_path / "study.log"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.create_study(study_name=name, storage=storage)
    dead = study.ask({"+mark": optuna.distributions.FloatDistribution(1.0, 4.0)})
    # the run its worker left: status running, its process gone (a killed node)
    run_dir = root / f"20260101-000000-{name}-dead"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "id": run_dir.name, "name": name, "status": "running", "created": "2026-01-01T00:00:00",
        "host": socket.gethostname(), "pid": 2**22 + 7, "parent": f"study:{name}",
        "trial": dead.number,
    }))  # fmt: skip
    out = runlab("tune", picky(tmp_path), "+mark=interval(1.0, 4.0)", "--study-name", name,
                 "--storage", f"journal:{journal}", "--trials", "4", "--launcher", "slurm",
                 "--workers", "2", "--seed", "3", "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["workers"] == 2 and info["trials_per_worker"] == 2
    assert not (root / "studies" / "optuna.db").exists()  # nothing runs on the login node
    code, view, err = jobs(name, root, "--wait", "--poll", "0.5")
    assert code == 0, err
    assert [r["state"] for r in view["jobs"]] == ["finished", "finished"]
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    failed = trials[dead.number]
    assert failed.state.name == "FAIL" and "worker died" in failed.user_attrs["fail_reason"]
    retry = [t for t in trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].params == dead.params
    assert retry[0].state.name == "COMPLETE"
    assert sum(t.state.name == "COMPLETE" for t in trials) == 4
    logs = root / "studies" / name / "jobs" / "logs"  # the workers'; logs/ has the trials'
    assert {p.name for p in logs.glob("?.*")} == {"0.out", "0.err", "0.exit", "1.out", "1.err",
                                                  "1.exit"}  # fmt: skip


@pytest.mark.slurm
def test_a_study_on_worker_jobs_against_postgresql(
    slurm: Path, postgres: str, tmp_path: Path
) -> None:
    """Two worker jobs on a real PostgreSQL storage (the RDB for many workers): every trial
    told, none asked twice, the study readable by Optuna's own client."""
    optuna = pytest.importorskip("optuna")
    root, name = tmp_path / "runs", f"pg{os.getpid()}"
    out = runlab("tune", picky(tmp_path), "+mark=interval(1.0, 4.0)", "--study-name", name,
                 "--storage", postgres, "--trials", "2", "--launcher", "slurm", "--workers", "2",
                 "-o", root, "-f", "json")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["storage"] == postgres
    code, _, err = jobs(name, root, "--wait", "--poll", "0.5")
    assert code == 0, err
    trials = optuna.load_study(study_name=name, storage=postgres).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 2
    assert len({t.params["+mark"] for t in trials}) == 2
    assert {t.user_attrs["run_id"] for t in trials} == {
        r["id"] for r in runs_of(root) if r["parent"] == f"study:{name}"
    }


@pytest.mark.slurm
def test_a_rejected_partition_shows_slurms_message_and_leaves_nothing(
    slurm: Path, tmp_path: Path
) -> None:
    root = tmp_path / "runs"
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.1", "--launcher", "slurm",
                 "--launcher-opt", "partition=nope", "-o", root)  # fmt: skip
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "runlab: error: sbatch: sbatch said: sbatch: error: invalid partition specified: nope"
    ]
    assert not list((root / "sweeps").iterdir()) if (root / "sweeps").exists() else True


@pytest.mark.slurm
def test_dry_run_prints_the_batch_script_and_writes_nothing(slurm: Path, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.1,0.2", "--launcher", "slurm", "--pack", "2",
                 "--launcher-opt", "time=1:30:00", "--launcher-opt", "extra=[--constraint=a100]",
                 "--launcher-opt", "cpus=2", "--dry-run", "-o", root)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "#!/bin/bash"
    for expected in ("#SBATCH --array=0-1", "#SBATCH --time=1:30:00", "#SBATCH --cpus-per-task=2",
                     "#SBATCH --constraint=a100", "#SBATCH --signal=B:USR1@120",
                     "#SBATCH --requeue"):  # fmt: skip
        assert expected in lines, expected
    assert lines[-1].startswith(f"exec {sys.executable} -m runlab.sweep.task ")
    assert not root.exists()
    # arrays are split at the scheduler's maximum array size
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.1,0.2", "--launcher", "slurm",
                 "--launcher-opt", "max_array=2", "--dry-run", "-o", root)  # fmt: skip
    arrays = [line for line in out.stdout.splitlines() if line.startswith("#SBATCH --array")]
    assert arrays == ["#SBATCH --array=0-1", "#SBATCH --array=0-0"]
    assert "tasks-0.txt" in out.stdout and "tasks-1.txt" in out.stdout


# no cluster needed ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--launcher-opt", "partitio=gpu"], {}, "partitio"),
        ([], {"PATH": "/nonexistent"}, "sbatch is not on PATH"),
        ([], {"SLURM_CONF": "DOWN"}, "scontrol said"),
        (["--pack", "0"], {}, "--pack must be at least 1"),
        (["--launcher-opt", "parallelism=0"], {}, "launcher.parallelism must be at least 1"),
    ],
    ids=["unknown-option", "no-sbatch", "controller-down", "pack-0", "parallelism-0"],
)
def test_bad_slurm_input_is_one_line_exit_2_and_nothing_written(
    tmp_path: Path, extra: list[str], env: dict[str, str], message: str
) -> None:
    if env.get("SLURM_CONF") and shutil.which("scontrol") is None:
        pytest.skip("no Slurm client tools here: the no-sbatch case covers this machine")
    root = tmp_path / "runs"
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    if env.get("SLURM_CONF") == "DOWN":  # a controller nobody runs
        conf = tmp_path / "slurm.conf"
        conf.write_text(
            "ClusterName=x\nSlurmctldHost=localhost\nSlurmctldPort=6999\n"
            "NodeName=localhost CPUs=1\nPartitionName=p Nodes=ALL Default=YES\n"
        )
        environ["SLURM_CONF"] = str(conf)
    if env.get("PATH") == "/nonexistent":
        environ["PATH"] = os.path.dirname(sys.executable)
    out = runlab("sweep", QUICK, "optim.lr=0.1,0.2", "--launcher", "slurm", *extra, "-o", root,
                 env=environ)  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runlab: error: ") and message in lines[0]
    assert not root.exists() or not any(root.rglob("*.json"))


def test_runlab_jobs_of_nothing_is_one_line_exit_2(tmp_path: Path) -> None:
    out = runlab("jobs", "nope", "-o", tmp_path / "runs")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"runlab: error: no sweep or study 'nope' under {tmp_path / 'runs'}"
    ]


@pytest.mark.slurm
def test_a_secret_reaches_the_job_through_the_environment_and_no_file(
    slurm: Path, tmp_path: Path
) -> None:
    planted = "planted-Secret-4f9c1e"
    config = tmp_path / "secret.yaml"
    config.write_text(
        picky(tmp_path).read_text() + "db: {password: '${oc.env:RUNLAB_PLANTED_SECRET}'}\n"
    )
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RUNLAB_PLANTED_SECRET": planted}
    out = runlab("sweep", config, "+mark=1,2", "--launcher", "slurm", "-o", root, "-f", "json",
                 env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    code, view, err = jobs(json.loads(out.stdout)["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 0, err
    assert {r["state"] for r in view["jobs"]} == {"finished"}  # the jobs had the secret
    for path in [p for p in tmp_path.rglob("*") if p.is_file()]:
        assert planted.encode() not in path.read_bytes(), path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sweep", QUICK, "+db.password=hunter2-long", "optim.lr=0.1,0.2", "--launcher",
          "slurm"], "a secret on the command line (+db.password=***) would be written"),
        (["tune", QUICK, "optim.lr=tag(log, interval(1e-4, 1e-1))", "--storage",
          "postgresql://u:hunter2-long@h/db", "--launcher", "slurm", "--workers", "2"],
         "a secret on the command line (postgresql://u:***@h/db) would be written"),
        (["tune", QUICK, "optim.lr=tag(log, interval(1e-4, 1e-1))", "--launcher", "slurm",
          "--workers", "0"], "--workers must be at least 1, got 0"),
        (["tune", QUICK, "optim.lr=tag(log, interval(1e-4, 1e-1))", "--workers", "2"],
         "--workers and --dry-run are for a scheduler"),
        (["sweep", QUICK, "optim.lr=0.1,0.2", "--pack", "2"],
         "--pack and --dry-run are for a scheduler"),
    ],
    ids=["sweep-secret", "storage-password", "workers-0", "workers-local", "pack-local"],
)  # fmt: skip
def test_bad_cluster_arguments_are_one_line_exit_2_and_nothing_written(
    tmp_path: Path, args: list[str], message: str
) -> None:
    root = tmp_path / "runs"
    out = runlab(*args, "-o", root)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], lines
    assert "hunter2-long" not in out.stderr
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_a_damaged_batch_json_is_one_line_exit_2(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    jobs_dir = root / "studies" / "s" / "jobs"
    jobs_dir.mkdir(parents=True)
    for damage in (b'{"kind": "study", "jobs": 2', b"\xff\xfe", b"[]"):
        (jobs_dir / "batch.json").write_bytes(damage)
        out = runlab("jobs", "s", "-o", root)
        assert out.returncode == 2, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and "batch.json is damaged" in lines[0], lines
