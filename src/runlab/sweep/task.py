"""One array task of a scheduler job: ``python -m runlab.sweep.task TASKS_FILE TASK_ID``.

Runs the manifest lines listed on line ``TASK_ID`` of ``TASKS_FILE``, one after the other,
each as a child ``runlab`` process (a flow's ``shell CWD COMMAND`` line: ``/bin/sh -c``)
whose output is appended to ``logs/<line>.out|.err``.
A sweep's combination that already has a run is not run twice: a finished one is skipped, a
live one (another job owns it) is left alone, a preempted or crashed one with ``last.pt`` is
resumed (``runlab run --resume``). SIGTERM (a requeue, a vacate, ``scancel``) and SIGUSR1 (a
time limit ahead) are passed to the run as SIGTERM, so it saves ``last.pt`` and ends
``preempted``; after SIGUSR1 the job requeues itself. Exit status: 0 when every run
finished, 143 when preempted, 1 otherwise."""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from runlab._io import atomic_write_text
from runlab._provenance import scheduler_identity
from runlab.sweep.batch import BATCH_FILE, BatchLauncher, BatchRecord, group_runs
from runlab.sweep.warm import Child, RunStarter
from runlab.tracking.state import LIVE_STATES


class TaskRunner:
    def __init__(self, tasks_file: Path, task: int) -> None:
        self.folder = tasks_file.parent.parent
        found = BatchRecord.find(self.folder)
        if found is None:
            raise SystemExit(f"runlab task: no {BATCH_FILE} beside {tasks_file}")
        self.record = found
        lines = tasks_file.read_text().splitlines()
        self.lines = [int(i) for i in lines[task].split()]
        self.launcher = _launcher_class(str(found.data["launcher"]))
        self.child: Child | None = None
        # a job of several runs forks them from a warm server (runlab.sweep.warm): only the
        # first pays the imports; a job of one run gains nothing from it and starts it fresh
        self.starter = RunStarter()
        if len(self.lines) < 2 and self.starter.reason is None:
            self.starter.reason = "one run in this job"
        self.signalled: int | None = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signalled = self.signalled or signum
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        manifest = self.record.manifest()
        codes = []
        for line in self.lines:
            if self.signalled:
                break
            codes.append(self._run_line(line, manifest[line]))
        if self.signalled == signal.SIGUSR1:
            self.launcher.requeue_self()
        if self.signalled:
            return 143
        return 0 if all(code == 0 for code in codes) else 1

    def _run_line(self, line: int, args: list[str]) -> int:
        if args and args[0] == "run":
            args = self._resume_or_skip(line, args)
            if not args:
                return 0
        identity = scheduler_identity() or {}  # the run finds it too, for its run.json
        logs = self.record.logs
        logs.mkdir(parents=True, exist_ok=True)
        header = f"== {_now()} on {os.uname().nodename} job {identity.get('job_id', '?')}\n"
        out, err = str(logs / f"{line}.out"), str(logs / f"{line}.err")
        for path in (out, err):
            with open(path, "ab") as fh:
                fh.write(header.encode())
        if args and args[0] == "shell":  # a flow's cmd step: shell CWD COMMAND
            self.child = _shell(args[1], args[2], out, err)
        else:
            self.child = self.starter.start(args, out, err, dict(os.environ), append=True)
        code = self.child.wait()
        while code is None:  # wait() returns early when a signal handler ran
            code = self.child.wait()
        self.child = None
        atomic_write_text(logs / f"{line}.exit", f"{code}\n")  # no sacct needed to know it
        return code

    def _resume_or_skip(self, line: int, args: list[str]) -> list[str]:
        """The command for a sweep's combination: as written, ``--resume`` of its earlier
        run, or nothing (it finished, or another job runs it)."""
        data = self.record.data
        run = group_runs(Path(data["root"]), str(data["name"]), str(data["id"])).get(line)
        if run is None:
            return args
        state = run.state
        if state.value in ("finished", "stopped", "pruned") or state in LIVE_STATES:
            return []
        if (run.path / "checkpoints" / "last.pt").exists() and state.value in (
            "preempted",
            "crashed",
        ):
            return ["run", "--resume", str(run.path), "--output-dir", data["root"]]
        return args


def _shell(cwd: str, command: str, out: str, err: str) -> Child:
    """A flow's cmd step: ``/bin/sh -c COMMAND`` in ``cwd``, its output appended to the logs."""
    import subprocess

    with open(out, "ab") as out_fh, open(err, "ab") as err_fh:
        proc = subprocess.Popen(["/bin/sh", "-c", command], cwd=cwd, stdout=out_fh, stderr=err_fh)
    return Child(proc, warm=False)


def _launcher_class(name: str) -> Any:
    from runlab.sweep.launchers import LAUNCHERS

    cls = LAUNCHERS.load(name, "--launcher")
    if not (isinstance(cls, type) and issubclass(cls, BatchLauncher)):
        raise SystemExit(f"runlab task: launcher {name!r} is not a scheduler")
    return cls


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1].isdigit():
        sys.stderr.write("usage: python -m runlab.sweep.task TASKS_FILE TASK_ID\n")
        return 2
    return TaskRunner(Path(argv[0]), int(argv[1])).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
