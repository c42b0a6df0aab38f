"""Submitting a 1,000-combination sweep to a real Slurm, and `runlab jobs` over its 1,000 jobs,
beside submitit (what Hydra's submitit launcher submits with) doing the same submission.

    python benchmarks/bench_cluster.py [--combinations 1000] [--repeats 3]

Starts its own one-node Slurm (tests/clusters/slurm.sh; needs root and Debian's slurmctld slurmd
slurm-client munge). Jobs are submitted held (--hold) so that none runs and the scheduler
holds all 1,000; they are cancelled after. `runlab sweep` and `runlab jobs` are timed as whole
commands, process start included. `runlab jobs` is timed twice: over held jobs (no run
directories) and with a finished run directory for each job (1,000 run.json read).
submitit is timed submitting 1,000 trivial calls as one array (`executor.map_array`), the way
the Hydra submitit launcher submits a multirun, which then blocks until they end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"


def runlab(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "runlab", *args], check=True, capture_output=True)
    return time.perf_counter() - start


def fake_runs(root: Path, sweep: str, name: str, count: int) -> None:
    """A finished run directory per job, as the jobs would have left them."""
    for i in range(count):
        run = root / f"20260101-000000-{name}-{i:04x}"
        run.mkdir(parents=True)
        info = {"id": run.name, "name": name, "status": "finished", "parent": sweep, "trial": i,
                "created": "2026-01-01T00:00:00+00:00"}  # fmt: skip
        (run / "run.json").write_text(json.dumps(info))


def submitit_time(folder: Path, count: int) -> float | None:
    try:
        import submitit
    except ImportError:
        return None
    executor = submitit.AutoExecutor(folder=str(folder / "submitit"), cluster="slurm")
    executor.update_parameters(slurm_additional_parameters={"hold": True}, timeout_min=10)
    start = time.perf_counter()
    jobs = executor.map_array(abs, list(range(count)))
    elapsed = time.perf_counter() - start
    subprocess.run(["scancel", jobs[0].job_id.split("_")[0]], check=False)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--combinations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.combinations
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cluster = work / "slurm"
        up = subprocess.run(["bash", str(REPO / "tests/clusters/slurm.sh"), "up", str(cluster)],
                            capture_output=True, text=True)  # fmt: skip
        if up.returncode != 0:
            sys.exit(f"no Slurm cluster: {up.stdout.strip()}")
        os.environ["SLURM_CONF"] = str(cluster / "slurm.conf")
        try:
            found = subprocess.run(["sbatch", "--version"], capture_output=True, text=True)
            version = found.stdout.strip() or "slurm ?"
            (work / "c.yaml").write_text(CONFIG)
            submit, jobs_empty, jobs_full, theirs, start = [], [], [], [], []
            for r in range(args.repeats):
                start.append(runlab("--version"))  # the process start alone, as a noise gauge
                root = work / f"runs{r}"
                submit.append(runlab("sweep", str(work / "c.yaml"), f"optim.lr=range(1,{n + 1})",
                                     "--launcher", "slurm", "--launcher-opt", "extra=[--hold]",
                                     "-o", str(root)))  # fmt: skip
                sweep = next((root / "sweeps").iterdir()).name
                jobs_empty.append(runlab("jobs", sweep, "-o", str(root), "-f", "json"))
                fake_runs(root, sweep, "c", n)
                jobs_full.append(runlab("jobs", sweep, "-o", str(root), "-f", "json"))
                subprocess.run(["scancel", "--name=runlab-c"], check=False)
                mine = submitit_time(work / f"theirs{r}", n)
                if mine is not None:
                    theirs.append(mine)
        finally:
            subprocess.run(["bash", str(REPO / "tests/clusters/slurm.sh"), "down", str(cluster)])
    print(
        f"{platform.node()}, {os.cpu_count()} cores, {version.strip()}, medians of {args.repeats}"
    )
    print(f"runlab --version (process start): {statistics.median(start):.2f} s")
    print(f"runlab sweep, {n} combinations, one array, whole command: "
          f"{statistics.median(submit):.2f} s")  # fmt: skip
    print(f"runlab jobs over {n} held jobs: {statistics.median(jobs_empty):.2f} s")
    print(f"runlab jobs over {n} jobs with finished runs: {statistics.median(jobs_full):.2f} s")
    if theirs:
        print(f"submitit map_array of {n} calls (in process, no validation): "
              f"{statistics.median(theirs):.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()
