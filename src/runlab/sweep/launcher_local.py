"""``--launcher local``: a pool of child processes on this machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

from runlab.sweep.launchers import BaseLauncher, Job, JobResult, check_jobs, parse_result, take


class LocalLauncher(BaseLauncher):
    """A pool of ``jobs`` child processes, each `python -m runlab run ...`. Ctrl-C in the parent
    sends SIGTERM to every child (their runs end ``preempted``) and re-raises."""

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = check_jobs(jobs)

    def launch(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None]) -> list[JobResult]:
        source, results = iter(jobs), []
        running: dict[int, tuple[Job, subprocess.Popen[str]]] = {}
        exhausted = False
        try:
            while not exhausted or running:
                if not exhausted:
                    new, exhausted = take(source, self.jobs - len(running))
                    running.update({job.index: (job, self._start(job)) for job in new})
                for index, (job, proc) in list(running.items()):
                    if proc.poll() is not None:
                        del running[index]
                        result = _result(job, proc)
                        results.append(result)
                        on_done(result)
                time.sleep(0.05)
        except KeyboardInterrupt:
            for _, proc in running.values():
                proc.send_signal(signal.SIGTERM)
            for _, proc in running.values():
                proc.wait(timeout=60)
            raise
        return results

    def _start(self, job: Job) -> subprocess.Popen[str]:
        # files, not pipes: a child that prints a lot would block on a full pipe
        os.makedirs(job.log_dir, exist_ok=True)
        with (
            open(os.path.join(job.log_dir, f"{job.index}.out"), "w") as out,
            open(os.path.join(job.log_dir, f"{job.index}.err"), "w") as err,
        ):
            return subprocess.Popen(
                [sys.executable, "-m", "runlab", "run", *job.args, "--format", "json"],
                stdout=out,
                stderr=err,
                text=True,
                env=self._child_env(),
            )

    def _child_env(self) -> dict[str, str]:
        """Share the cores: each child gets cores/jobs intra-op threads (torch, BLAS) unless
        OMP_NUM_THREADS is set; otherwise parallel runs oversubscribe the CPU."""
        env = dict(os.environ)
        if self.jobs > 1 and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
        return env


def _result(job: Job, proc: subprocess.Popen[str]) -> JobResult:
    proc.wait()
    with open(os.path.join(job.log_dir, f"{job.index}.out")) as fh:
        out = fh.read()
    with open(os.path.join(job.log_dir, f"{job.index}.err")) as fh:
        err = fh.read()
    return parse_result(job.index, proc.returncode, out, err)
