"""``--launcher htcondor``: one cluster of jobs (``queue N``) per submission, through
HTCondor's command-line tools (``condor_submit``, ``condor_q``, ``condor_rm``). The tools,
not the ``htcondor2`` bindings: every submit host has them, they speak to any pool version,
and they add no compiled dependency to runlab."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlab.config.schema import limits
from runlab.sweep.batch import ArraySpec, BatchLauncher, QueueEntry, run_tool
from runlab.sweep.launchers import check_jobs


@dataclass
class HTCondorOptions:
    """Options of ``--launcher htcondor`` (``--launcher-opt key=value`` or the ``launcher:``
    block); each becomes a command of the submit description."""

    request_cpus: int = limits(1, ge=1)
    request_gpus: int = limits(0, ge=0)
    request_memory: str | None = None  # e.g. 4GB
    requirements: str | None = None  # a ClassAd expression, e.g. (OpSysAndVer == "AlmaLinux9")
    universe: str = "vanilla"
    getenv: bool = True  # the job gets the submitting shell's environment (as Slurm's default)
    max_array: int = limits(10000, ge=1)  # jobs per submission (the pool's own limit may be less)
    extra: list[str] = field(default_factory=list)  # more commands: ['+AccountingGroup = "ml"']


class HTCondorLauncher(BatchLauncher):
    """Job ``$(ProcId)`` of a submission runs line ``$(ProcId)`` of its tasks file. A vacate
    or an eviction sends the job SIGTERM (``kill_sig``), which the task runner passes to the
    run; the job goes back to idle, and its next start resumes the run from ``last.pt``."""

    Options = HTCondorOptions
    scheduler = "htcondor"
    tools = ("condor_submit", "condor_q", "condor_rm")
    suffix = ".sub"

    def __init__(self, jobs: int = 1, **options: Any) -> None:
        self.jobs = check_jobs(jobs)
        self.options = HTCondorOptions(**options)

    def check_reachable(self) -> None:
        super().check_reachable()
        run_tool(["condor_q", "-totals"], "--launcher htcondor", timeout=30)

    def max_array(self) -> int:
        return int(self.options.max_array)

    def script(self, spec: ArraySpec) -> str:
        o = self.options
        python, *args = spec.command("$(ProcId)")
        env = (
            "RUNLAB_SCHEDULER=htcondor RUNLAB_JOB_ID=$(ClusterId).$(ProcId) "
            "RUNLAB_ARRAY_INDEX=$(ProcId)"
        )
        lines = [
            f"# runlab: job $(ProcId) runs line $(ProcId) of {spec.tasks_file.name}",
            f"batch_name = runlab-{spec.name}",
            f"universe = {o.universe}",
            f"executable = {python}",
            f'arguments = "{" ".join(_quote(a) for a in args)}"',
            f"initialdir = {spec.cwd}",
            f"output = {spec.logs}/condor-$(ClusterId)_$(ProcId).out",
            f"error = {spec.logs}/condor-$(ClusterId)_$(ProcId).err",
            f"log = {spec.tasks_file.parent}/condor-{spec.number}.log",
            f"getenv = {'true' if o.getenv else 'false'}",
            f'environment = "{env}"',
            "should_transfer_files = NO",
            "kill_sig = SIGTERM",
            f"request_cpus = {o.request_cpus}",
        ]
        if o.request_gpus:
            lines.append(f"request_gpus = {o.request_gpus}")
        if o.request_memory:
            lines.append(f"request_memory = {o.request_memory}")
        if o.requirements:
            lines.append(f"requirements = {o.requirements}")
        lines += list(o.extra)
        lines.append(f"queue {spec.count}")
        return "\n".join(lines) + "\n"

    def submit(self, path: Path) -> str:
        out = run_tool(["condor_submit", "-terse", str(path)], "condor_submit")
        return out.strip().split()[0].split(".")[0]  # "12.0 - 12.2" -> cluster 12

    def task_id(self, job_id: str, task: int) -> str:
        return f"{job_id}.{task}"

    def queue(self, job_ids: list[str]) -> dict[str, QueueEntry]:
        if not job_ids:
            return {}
        out = run_tool(
            ["condor_q", *job_ids, "-af", "ClusterId", "ProcId", "JobStatus", "RemoteHost"],
            "condor_q",
            timeout=30,
        )
        found: dict[str, QueueEntry] = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 3 or not parts[2].isdigit():
                continue
            status = int(parts[2])
            node = parts[3].split("@")[-1] if len(parts) > 3 and parts[3] != "undefined" else None
            found[f"{parts[0]}.{parts[1]}"] = QueueEntry(
                STATES.get(status, "done"), node, NAMES.get(status, str(status))
            )
        return found

    def cancel(self, job_ids: list[str]) -> None:
        if job_ids:
            run_tool(["condor_rm", *job_ids], "condor_rm")


def _quote(arg: str) -> str:
    """An argument in the new ``arguments`` syntax: single quotes around one with spaces."""
    return f"'{arg.replace(chr(39), chr(39) * 2)}'" if (" " in arg or "'" in arg) else arg


# JobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring output, 7 suspended
STATES = {1: "pending", 2: "running", 3: "done", 4: "done", 5: "held", 6: "running", 7: "held"}
NAMES = {1: "IDLE", 2: "RUNNING", 3: "REMOVED", 4: "COMPLETED", 5: "HELD", 6: "TRANSFERRING",
         7: "SUSPENDED"}  # fmt: skip
