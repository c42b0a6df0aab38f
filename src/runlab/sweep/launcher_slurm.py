"""``--launcher slurm``: one ``sbatch --array`` per submission, through Slurm's own tools
(``sbatch``, ``squeue``, ``scancel``, ``scontrol``), which every submit host has; no Python
bindings to match the cluster's Slurm version."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlab.config.schema import limits
from runlab.errors import ConfigError
from runlab.sweep.batch import ArraySpec, BatchLauncher, QueueEntry, run_tool
from runlab.sweep.launchers import check_jobs


@dataclass
class SlurmOptions:
    """Options of ``--launcher slurm`` (``--launcher-opt key=value`` or the ``launcher:``
    block); each becomes an ``#SBATCH`` line of the job script."""

    partition: str | None = None  # --partition
    time: str | None = None  # --time, e.g. 2:00:00 (the run is warned signal_s before)
    cpus: int = limits(1, ge=1)  # --cpus-per-task
    gpus: int = limits(0, ge=0)  # --gpus-per-task
    mem: str | None = None  # --mem, e.g. 16G
    account: str | None = None  # --account
    qos: str | None = None  # --qos
    parallelism: int | None = None  # at most this many array tasks at once (--array=...%N)
    signal_s: int = limits(120, ge=0)  # SIGUSR1 this long before the time limit: save, requeue
    requeue: bool = True  # --requeue: a preempted or failed node's job goes back in the queue
    max_array: int | None = None  # tasks per array (default: the cluster's MaxArraySize - 1)
    extra: list[str] = field(default_factory=list)  # more #SBATCH lines, e.g. --constraint=a100


class SlurmLauncher(BatchLauncher):
    """Array jobs on Slurm: task ``t`` of a submission runs line ``t`` of its tasks file. The
    batch shell becomes the task runner (``exec``), so ``--signal=B:USR1@N`` reaches it: it
    passes SIGTERM to the run (which saves ``last.pt`` and ends ``preempted``) and requeues
    the job, whose next start resumes the run."""

    Options = SlurmOptions
    scheduler = "slurm"
    tools = ("sbatch", "squeue", "scancel", "scontrol")

    def __init__(self, jobs: int = 1, **options: Any) -> None:
        self.jobs = check_jobs(jobs)
        self.options = SlurmOptions(**options)
        if self.options.parallelism is not None and self.options.parallelism < 1:
            raise ConfigError(
                f"launcher.parallelism must be at least 1, got {self.options.parallelism}"
            )

    def check_reachable(self) -> None:
        super().check_reachable()
        run_tool(["scontrol", "ping"], "--launcher slurm", timeout=20)

    def max_array(self) -> int:
        if self.options.max_array:
            return int(self.options.max_array)
        out = run_tool(["scontrol", "show", "config"], "--launcher slurm", timeout=20)
        for line in out.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "MaxArraySize" and value.strip().isdigit():
                return max(1, int(value.strip()) - 1)
        return 1000

    def script(self, spec: ArraySpec) -> str:
        o = self.options
        last = spec.count - 1
        array = f"0-{last}" + (f"%{o.parallelism}" if o.parallelism else "")
        lines = [
            f"--job-name=runlab-{spec.name}",
            f"--array={array}",
            f"--output={spec.logs}/slurm-%A_%a.out",
            "--open-mode=append",
            f"--chdir={spec.cwd}",
            f"--cpus-per-task={o.cpus}",
        ]
        optional = {
            "partition": o.partition,
            "time": o.time,
            "mem": o.mem,
            "account": o.account,
            "qos": o.qos,
            "gpus-per-task": o.gpus or None,
        }
        lines += [f"--{key}={value}" for key, value in optional.items() if value is not None]
        if o.signal_s:
            lines.append(f"--signal=B:USR1@{o.signal_s}")
        lines.append("--requeue" if o.requeue else "--no-requeue")
        lines += [x if x.startswith("-") else f"--{x}" for x in o.extra]
        head = "\n".join(f"#SBATCH {line}" for line in lines)
        command = shlex.join(spec.command("TASK"))
        return (
            f"#!/bin/bash\n{head}\n# runlab: array task t runs line t of {spec.tasks_file.name}\n"
            f"export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-{o.cpus}}}\n"
            f"exec {command.replace(' TASK', ' ${SLURM_ARRAY_TASK_ID}')}\n"
        )

    def submit(self, path: Path) -> str:
        out = run_tool(["sbatch", "--parsable", str(path)], "sbatch")
        return out.strip().split(";")[0]

    def task_id(self, job_id: str, task: int) -> str:
        return f"{job_id}_{task}"

    def queue(self, job_ids: list[str]) -> dict[str, QueueEntry]:
        wanted = set(job_ids)
        out = run_tool(
            ["squeue", "-h", "-r", "-t", "all", "-o", "%F|%K|%T|%N"], "squeue", timeout=30
        )
        found: dict[str, QueueEntry] = {}
        for line in out.splitlines():
            parts = line.strip().split("|")
            if len(parts) != 4 or parts[0] not in wanted or not parts[1].isdigit():
                continue
            state = STATES.get(parts[2], "done")
            found[f"{parts[0]}_{parts[1]}"] = QueueEntry(state, parts[3] or None, parts[2])
        return found

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            run_tool(["scancel", *job_ids], "scancel")

    @staticmethod
    def requeue_self() -> None:
        job = os.environ.get("SLURM_JOB_ID")
        if job:
            subprocess.run(["scontrol", "requeue", job], capture_output=True, timeout=60)


STATES = {
    "PENDING": "pending",
    "CONFIGURING": "running",
    "RUNNING": "running",
    "COMPLETING": "running",
    "SUSPENDED": "held",
    "REQUEUED": "pending",
    "REQUEUE_HOLD": "held",
    "REQUEUE_FED": "pending",
    "RESIZING": "running",
    "SIGNALING": "running",
    "STAGE_OUT": "running",
    "FAILED": "failed",
    "NODE_FAIL": "failed",
    "BOOT_FAIL": "failed",
    "OUT_OF_MEMORY": "failed",
}
