"""``--launcher local``: a pool of child processes on this machine."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable

from runlab.sweep.launchers import BaseLauncher, Job, JobResult, check_jobs, parse_result, take
from runlab.sweep.warm import Child, RunStarter, wait_any


class LocalLauncher(BaseLauncher):
    """A pool of ``jobs`` child processes, each a `runlab run ...` forked from a warm server
    (runlab.sweep.warm; a fresh `python -m runlab run` where that cannot be). Ctrl-C in the
    parent stops every child (:func:`stop_children`) and re-raises."""

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = check_jobs(jobs)
        self.starter = RunStarter()

    def launch(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None]) -> list[JobResult]:
        source, results = iter(jobs), []
        running: dict[int, tuple[Job, Child]] = {}
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
                if running:
                    wait_any([proc for _, proc in running.values()], 0.5)
        except KeyboardInterrupt:
            stop_children([proc for _, proc in running.values()])
            raise
        return results

    def _start(self, job: Job) -> Child:
        # files, not pipes: a child that prints a lot would block on a full pipe
        os.makedirs(job.log_dir, exist_ok=True)
        out, err = (os.path.join(job.log_dir, f"{job.index}{s}") for s in (".out", ".err"))
        return self.starter.start(["run", *job.args], out, err, self._child_env())

    def _child_env(self) -> dict[str, str]:
        """Share the cores: each child gets cores/jobs intra-op threads (torch, BLAS) unless
        OMP_NUM_THREADS is set; otherwise parallel runs oversubscribe the CPU."""
        env = dict(os.environ)
        if self.jobs > 1 and "OMP_NUM_THREADS" not in env:
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // self.jobs))
        return env


def stop_children(children: list[Child], grace: float = 5.0, term: float = 60.0) -> None:
    """After a Ctrl-C: the children in this terminal's process group had it too and are
    ending their runs (``stopped``); ``grace`` seconds on, the rest get SIGTERM (their runs
    end ``preempted``), and ``term`` seconds later SIGKILL. (A SIGTERM at once would reach a
    run in the middle of handling its Ctrl-C.)"""
    deadline = time.monotonic() + grace
    for proc in children:
        proc.wait(max(0.0, deadline - time.monotonic()))
    alive = [proc for proc in children if proc.poll() is None]
    for proc in alive:
        proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + term
    for proc in alive:
        if proc.wait(max(0.0, deadline - time.monotonic())) is None:
            proc.send_signal(signal.SIGKILL)


def _result(job: Job, proc: Child) -> JobResult:
    code = proc.wait()
    with open(os.path.join(job.log_dir, f"{job.index}.out")) as fh:
        out = fh.read()
    with open(os.path.join(job.log_dir, f"{job.index}.err")) as fh:
        err = fh.read()
    return parse_result(job.index, -1 if code is None else code, out, err)
