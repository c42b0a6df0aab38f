"""--launcher htcondor against a real HTCondor pool (Debian 13's minicondor in its own tree,
started by the ``htcondor`` fixture; jobs run as the pool's user ``runlab`` on the shared
filesystem): submit and return, runlab jobs, a failing job's log, --resume after a cancel, a
vacated job resumed from last.pt, a study on worker jobs. Bad input without a pool runs
everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runlab._io import read_jsonl
from tests.cluster_helpers import REPO, jobs, picky, runlab, runs_of, wait_for

QUICK = str(REPO / "examples" / "quickstart.yaml")
LONG = ["trainer.epochs=3", "data.n_samples=30000", "trainer.batch_size=64", "model.hidden=[128]"]


def folder(work: Path, name: str) -> Path:
    path = work / name
    path.mkdir(mode=0o777)
    path.chmod(0o777)
    return path


@pytest.mark.htcondor
def test_a_sweep_is_submitted_and_returns_a_failing_job_shows_its_log(htcondor: Path) -> None:
    work = folder(htcondor, "submit")
    root = work / "runs"
    out = runlab("sweep", picky(work), "+mark=1,fail", "--launcher", "htcondor", "-o", root,
                 "-f", "json", cwd=work, shared=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert not [r for r in runs_of(root) if r["status"] == "finished"]  # returned at once
    assert info["scheduler"] == "htcondor" and info["submitted"] == 2
    cluster = info["job_ids"][0]
    sub = (Path(info["path"]).parent / "jobs" / "submit-0.sub").read_text()
    assert "queue 2" in sub and "kill_sig = SIGTERM" in sub

    code, view, err = jobs(info["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 1
    rows = {r["index"]: r for r in view["jobs"]}
    assert rows[0]["state"] == "finished" and rows[0]["job"] == f"{cluster}.0"
    assert rows[1]["state"] == "failed" and "planted failure" in rows[1]["log"]
    assert "1 of 2 jobs failed (#1: " in err
    run = json.loads((root / rows[0]["run_id"] / "run.json").read_text())
    assert run["scheduler"]["name"] == "htcondor"
    assert run["scheduler"]["job_id"] == f"{cluster}.0" and run["scheduler"]["array_index"] == 0
    assert run["user"] == "runlab"  # it ran as the pool's user, not as the submitter (root)


@pytest.mark.htcondor
def test_resume_after_cancelling_half_and_a_vacated_job_resumes_from_last_pt(
    htcondor: Path,
) -> None:
    work = folder(htcondor, "vacate")
    root = work / "runs"
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.003", *LONG, "--launcher", "htcondor",
                 "-o", root, "-f", "json", cwd=work, shared=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    cluster = info["job_ids"][0]

    def epoch_one_done(trial: int) -> bool:
        for run in runs_of(root):
            if run["trial"] == trial:
                events = read_jsonl(root / run["id"] / "events.jsonl")
                return any(e["event"] == "on_epoch_end" for e in events)
        return False

    wait_for(lambda: epoch_one_done(0), what="combination 0 past its first epoch")
    subprocess.run(["condor_vacate_job", f"{cluster}.0"], check=True, capture_output=True)
    subprocess.run(["condor_rm", f"{cluster}.1"], check=True, capture_output=True)  # cancel half
    wait_for(lambda: jobs(info["sweep_id"], root)[1]["jobs"][1]["state"] != "running",
             what="the cancel")  # fmt: skip
    resumed = runlab("sweep", "--resume", info["sweep_id"], "-o", root, "-f", "json",
                     cwd=work, shared=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    again = json.loads(resumed.stdout)
    # the vacated job is back in the queue (it resumes by itself): only #1 is resubmitted
    assert again["submitted"] == 1
    assert (Path(info["path"]).parent / "jobs" / "tasks-1.txt").read_text() == "1\n"
    code, _, err = jobs(info["sweep_id"], root, "--wait", "--poll", "0.5")
    assert code == 0, err
    finished = [r for r in runs_of(root) if r["status"] == "finished"]
    assert sorted(r["trial"] for r in finished) == [0, 1]
    vacated = next(r for r in finished if r["trial"] == 0)
    events = read_jsonl(root / vacated["id"] / "events.jsonl")
    assert "on_signal" in [e["event"] for e in events] and "on_resume" in [
        e["event"] for e in events
    ]
    assert [e["epoch"] for e in events if e["event"] == "on_epoch_end"] == [1, 2, 3]
    assert len([r for r in runs_of(root) if r["trial"] == 0]) == 1  # the same run directory


@pytest.mark.htcondor
def test_a_study_runs_on_two_htcondor_workers_against_the_journal(htcondor: Path) -> None:
    work = folder(htcondor, "study")
    root = work / "runs"
    out = runlab("tune", picky(work), "+mark=interval(1.0, 4.0)", "--trials", "4",
                 "--launcher", "htcondor", "--workers", "2", "--seed", "5", "-o", root,
                 "-f", "json", cwd=work, shared=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["storage"].startswith("journal:") and info["workers"] == 2
    code, view, err = jobs("picky", root, "--wait", "--poll", "0.5")
    assert code == 0, err
    assert [r["job"] for r in view["jobs"]] == [
        f"{info['job_ids'][0]}.0",
        f"{info['job_ids'][0]}.1",
    ]
    trials = [json.loads(line) for line in (root / "studies" / "picky" / "trials.jsonl").open()]
    assert sorted(t["state"] for t in trials) == ["COMPLETE"] * 4
    assert len({t["params"]["+mark"] for t in trials}) == 4  # two workers, no trial asked twice


def test_dry_run_prints_the_submit_description_and_bad_input_is_exit_2(tmp_path: Path) -> None:
    """No pool needed: --dry-run still asks the pool to answer first, so here the tools are
    stand-ins that answer; a missing condor_submit is one line and exit 2."""
    root = tmp_path / "runs"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("condor_submit", "condor_q", "condor_rm"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.path.dirname(sys.executable)}"}
    out = runlab("sweep", QUICK, "optim.lr=0.01,0.1,0.2", "--launcher", "htcondor",
                 "--launcher-opt", "request_gpus=1", "--launcher-opt", "request_memory=4GB",
                 "--launcher-opt", 'requirements=(CUDACapability >= 8.0)', "--pack", "2",
                 "--dry-run", "-o", root, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    for expected in ("queue 2", "request_gpus = 1", "request_memory = 4GB",
                     "requirements = (CUDACapability >= 8.0)", "universe = vanilla"):  # fmt: skip
        assert expected in lines, expected
    assert f"executable = {sys.executable}" in lines
    assert not root.exists()
    (bin_dir / "condor_q").write_text(  # a schedd that does not answer, in condor_q's words
        "#!/bin/sh\necho '-- Failed to fetch ads from: <127.0.0.1:9618> : vm' >&2\n"
        "echo 'CEDAR:6001:Failed to connect to <127.0.0.1:9618>' >&2\nexit 1\n"
    )
    refused = [  # exit 2, this one line, nothing written
        "runlab: error: --launcher htcondor: condor_q said: -- Failed to fetch ads from: "
        "<127.0.0.1:9618> : vm",
        "runlab: error: --launcher htcondor: condor_submit is not on PATH; run on a htcondor "
        "submit host (or install its client tools)",
    ]
    for path, line in zip([env["PATH"], os.path.dirname(sys.executable)], refused, strict=True):
        out = runlab("sweep", QUICK, "optim.lr=0.01,0.1", "--launcher", "htcondor", "-o", root,
                     env={**env, "PATH": path})  # fmt: skip
        assert out.returncode == 2 and out.stderr.strip().splitlines() == [line]
        assert not root.exists()
