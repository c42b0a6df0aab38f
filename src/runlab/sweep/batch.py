"""Cluster schedulers (Slurm, HTCondor): submit and return. A sweep or study that runs on a
scheduler keeps its jobs under ``<folder>/jobs/``:

- ``manifest.txt``: one ``runlab`` command line per job (``run ...`` for a sweep's
  combination, ``tune ...`` for a study's worker), shell-quoted; no pickles;
- ``tasks-<k>.txt``: submission ``k``'s array, line ``t`` the manifest lines array task ``t``
  runs (one, or ``--pack K`` of them, one after the other);
- ``submit-<k>.sh`` / ``submit-<k>.sub``: the batch script or submit description as given to
  the scheduler;
- ``batch.json``: the scheduler, its options and every submission's job id.

An array task runs ``python -m runlab.sweep.task TASKS_FILE TASK_ID``
(:mod:`runlab.sweep.task`). Whether a job is pending, running or lost comes from the
scheduler; whether it finished, failed or was preempted comes from its run directory."""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runlab._ids import slugify
from runlab._io import atomic_write_json, atomic_write_text, read_json
from runlab.errors import ConfigError
from runlab.sweep.launchers import BaseLauncher, Job, JobResult

JOBS_DIR = "jobs"
MANIFEST = "manifest.txt"
BATCH_FILE = "batch.json"


@dataclass
class QueueEntry:
    """What the scheduler says of one array task: its state in runlab's words (``pending``,
    ``running``, ``done`` for a job that left the scheduler's hands, ``held``) and its node."""

    state: str
    node: str | None = None
    raw: str = ""


@dataclass
class ArraySpec:
    """One submission: ``count`` array tasks, each running ``tasks_file``'s line ``t``."""

    name: str
    folder: Path  # the sweep's or study's folder
    number: int
    count: int
    cwd: str
    logs: Path  # where the scheduler's own output of each task goes

    @property
    def tasks_file(self) -> Path:
        return self.folder / JOBS_DIR / f"tasks-{self.number}.txt"

    def command(self, task_var: str) -> list[str]:
        """The array task's command line, ``task_var`` the scheduler's task index."""
        return [sys.executable, "-m", "runlab.sweep.task", str(self.tasks_file), task_var]


class BatchLauncher(BaseLauncher):
    """A scheduler that queues jobs on a cluster: :meth:`submit` returns as soon as the
    scheduler has them. Subclasses name their ``scheduler``, the tools they need, and write the
    batch script (:meth:`script`), submit it, read the queue and cancel."""

    scheduler = ""
    jobs = 1
    tools: tuple[str, ...] = ()
    suffix = ".sh"
    pack = 1

    def launch(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None]) -> list[JobResult]:
        raise ConfigError(
            f"--launcher {self.scheduler} submits jobs and returns: use runlab sweep or "
            "runlab tune --workers N, then runlab jobs ID --wait"
        )

    def check_reachable(self) -> None:
        """A one-line ConfigError when the scheduler's tools are missing or it does not answer
        (checked before anything is written)."""
        missing = [tool for tool in self.tools if shutil.which(tool) is None]
        if missing:
            raise ConfigError(
                f"--launcher {self.scheduler}: {missing[0]} is not on PATH; run on a "
                f"{self.scheduler} submit host (or install its client tools)"
            )

    def max_array(self) -> int:
        return 1000

    def script(self, spec: ArraySpec) -> str:
        raise NotImplementedError

    def submit(self, path: Path) -> str:
        raise NotImplementedError

    def queue(self, job_ids: list[str]) -> dict[str, QueueEntry]:
        """The scheduler's view of its tasks, by task id (:meth:`task_id`)."""
        raise NotImplementedError

    def cancel(self, job_ids: list[str]) -> None:
        raise NotImplementedError

    def task_id(self, job_id: str, task: int) -> str:
        raise NotImplementedError

    @staticmethod
    def requeue_self() -> None:
        """Put the job this process runs in back in the queue (a time limit is near)."""


def run_tool(args: list[str], what: str, timeout: float = 60) -> str:
    """A scheduler tool's stdout; its own message (one line) as a ConfigError when it fails."""
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError as err:
        raise ConfigError(f"{what}: {args[0]} is not on PATH") from err
    except subprocess.TimeoutExpired as err:
        raise ConfigError(f"{what}: {args[0]} did not answer within {timeout:.0f} s") from err
    if proc.returncode != 0:  # the tool's first line says what is wrong; the rest is banner
        lines = [ln.strip() for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        fatal = [ln for ln in lines if "fatal" in ln.lower()]
        message = (fatal or lines or [f"exit {proc.returncode}"])[0]
        raise ConfigError(f"{what}: {args[0]} said: {message}")
    return proc.stdout


# the record ---------------------------------------------------------------------------------
class BatchRecord:
    """``<folder>/jobs/batch.json`` and the files beside it."""

    def __init__(self, folder: Path, data: dict[str, Any]) -> None:
        self.folder, self.data = folder, data

    @property
    def jobs_dir(self) -> Path:
        return self.folder / JOBS_DIR

    @property
    def logs(self) -> Path:
        """Each job's output: a sweep's ``logs/<index>.out|.err`` (where a local sweep puts
        them too); a study's workers' ``jobs/logs/`` (its ``logs/`` holds the trials')."""
        return self.folder / "logs" if self.data.get("kind") == "sweep" else self.jobs_dir / "logs"

    @classmethod
    def find(cls, folder: Path) -> BatchRecord | None:
        path = folder / JOBS_DIR / BATCH_FILE
        if not path.exists():
            return None
        try:
            data = read_json(path)
        except (OSError, ValueError) as err:
            data = err
        if not isinstance(data, dict) or "launcher" not in data:
            raise ConfigError(
                f"{path} is damaged (not the JSON runlab wrote): the jobs of {folder.name} "
                "cannot be followed; jobs/submit-*.sh|.sub and the scheduler's own tools still can"
            )
        return cls(folder, data)

    @classmethod
    def create(
        cls,
        folder: Path,
        kind: str,
        group: str,
        name: str,
        root: Path,
        launcher: str,
        options: dict[str, Any],
        lines: list[list[str]],
    ) -> BatchRecord:
        (folder / JOBS_DIR).mkdir(parents=True, exist_ok=True)
        text = "".join(shlex.join(line) + "\n" for line in lines)
        atomic_write_text(folder / JOBS_DIR / MANIFEST, text)
        data = {
            "kind": kind,
            "id": group,
            "name": name,
            "root": str(root),
            "launcher": launcher,
            "options": options,
            "jobs": len(lines),
            "submissions": [],
        }
        record = cls(folder, data)
        record.logs.mkdir(parents=True, exist_ok=True)
        record.save()
        return record

    def save(self) -> None:
        atomic_write_json(self.jobs_dir / BATCH_FILE, self.data)

    def append(self, lines: list[list[str]]) -> None:
        """More jobs (a study submitted again): new manifest lines after the old ones."""
        text = (self.jobs_dir / MANIFEST).read_text(encoding="utf-8")
        text += "".join(shlex.join(line) + "\n" for line in lines)
        atomic_write_text(self.jobs_dir / MANIFEST, text)
        self.data["jobs"] = int(self.data.get("jobs") or 0) + len(lines)
        self.save()

    def manifest(self) -> list[list[str]]:
        text = (self.jobs_dir / MANIFEST).read_text(encoding="utf-8")
        return [shlex.split(line) for line in text.splitlines()]

    @property
    def submissions(self) -> list[dict[str, Any]]:
        subs = self.data.get("submissions")
        return [s for s in subs if isinstance(s, dict)] if isinstance(subs, list) else []

    def tasks(self, number: int) -> list[list[int]]:
        path = self.jobs_dir / f"tasks-{number}.txt"
        return [[int(i) for i in line.split()] for line in path.read_text().splitlines()]

    def owners(self) -> dict[int, tuple[str, int]]:
        """Each manifest line's latest submission: line -> (job id, array task)."""
        owner: dict[int, tuple[str, int]] = {}
        for sub in self.submissions:
            for task, lines in enumerate(self.tasks(int(sub["number"]))):
                for line in lines:
                    owner[line] = (str(sub["job_id"]), task)
        return owner


def batches(lines: list[int], pack: int, limit: int) -> list[list[list[int]]]:
    """The manifest lines as arrays: ``pack`` lines per task, at most ``limit`` tasks each."""
    tasks = [lines[i : i + pack] for i in range(0, len(lines), pack)]
    return [tasks[i : i + limit] for i in range(0, len(tasks), limit)]


def submit_lines(
    launcher: BatchLauncher, record: BatchRecord, lines: list[int], dry_run: bool = False
) -> list[str]:
    """Submit the manifest ``lines`` as one array per ``max_array`` tasks; returns the job ids
    (dry run: prints each script and returns nothing)."""
    arrays = batches(lines, max(1, launcher.pack), max(1, launcher.max_array()))
    ids: list[str] = []
    first = len(record.submissions)
    for offset, tasks in enumerate(arrays):
        number = first + offset  # (a dry run appends no submission, yet numbers them)
        spec = ArraySpec(
            str(record.data["name"]), record.folder, number, len(tasks), os.getcwd(), record.logs
        )
        text = launcher.script(spec)
        if dry_run:
            sys.stdout.write(text)
            continue
        atomic_write_text(spec.tasks_file, "".join(" ".join(map(str, t)) + "\n" for t in tasks))
        path = record.jobs_dir / f"submit-{number}{launcher.suffix}"
        atomic_write_text(path, text)
        job_id = launcher.submit(path)
        record.data["submissions"].append(
            {"number": number, "job_id": job_id, "tasks": len(tasks), "submitted": _now()}
        )
        record.save()
        ids.append(job_id)
    return ids


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# what became of each job ----------------------------------------------------------------------
def group_runs(root: Path, name: str, parent: str) -> dict[int, Any]:
    """The latest run of each trial index of the sweep or study ``parent`` (run name
    ``name``), as a RunRecord: what a job left behind however it ended."""
    from runlab.tracking.record import RunRecord

    found: dict[int, Any] = {}
    pattern = f"*-{glob.escape(slugify(name))}-*/run.json"
    for run_json in sorted(root.glob(pattern)):
        try:
            info = read_json(run_json)
            if info.get("parent") != parent:
                continue
            index = int(str(info.get("trial")))
        except (OSError, ValueError, TypeError):
            continue
        found[index] = RunRecord(run_json.parent)
    return found


def log_tail(logs: Path, index: int, lines: int = 5) -> str:
    try:
        text = (logs / f"{index}.err").read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def job_state(entry: QueueEntry | None, run_state: str | None) -> str:
    """One word for a job: the scheduler's while it holds the job, else what its run says;
    ``lost`` for a job neither the scheduler nor a run directory accounts for."""
    if entry is not None and entry.state in ("pending", "running", "held"):
        if entry.state == "pending" and run_state == "preempted":
            return "requeued"
        return entry.state
    if run_state in ("finished", "stopped", "pruned"):
        return "finished" if run_state == "finished" else run_state
    if run_state in ("failed", "crashed"):
        return "failed"
    if run_state == "preempted":
        return "preempted"
    if entry is not None and entry.state == "failed":
        return "failed"
    return "lost"


LIVE = ("pending", "running", "held", "requeued")
BAD = ("failed", "lost")
