"""``--launcher ray``: one Ray task per run, on a local Ray or a cluster."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from runlab.config.schema import limits
from runlab.sweep.launchers import (
    BaseLauncher,
    Job,
    JobResult,
    check_jobs,
    forwarded_env,
    parse_result,
    take,
)


@dataclass
class RayOptions:
    """Options of ``--launcher ray`` (``--launcher-opt key=value`` or the ``launcher:`` block)."""

    address: str | None = None  # a cluster: auto or HOST:PORT; default: start a local Ray
    cpus_per_trial: float = limits(1.0, gt=0)  # CPUs each run reserves
    gpus_per_trial: float = limits(0.0, ge=0)  # GPUs each run reserves (0.5: two per GPU)


def _run_job(
    args: list[str], log_dir: str, index: int, threads: int | None, cwd: str | None = None
) -> tuple[int, str, str]:
    """Run one `runlab run` (on whichever machine executes this) in the submitter's working
    directory when this machine has it, so that relative paths in a config mean what they
    meant where the sweep was started; logs go to log_dir. A fresh process, not one forked
    from a warm server (runlab.sweep.warm): Ray's cancel kills the worker and the processes
    it started, and a run forked from a server there would outlive it."""
    env = dict(os.environ)
    if threads and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(threads)
    os.makedirs(log_dir, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "runlab", "run", *args, "--format", "json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd if cwd and os.path.isdir(cwd) else None,
    )
    for suffix, text in ((".out", proc.stdout), (".err", proc.stderr)):
        with open(os.path.join(log_dir, f"{index}{suffix}"), "w") as fh:
            fh.write(text)
    return proc.returncode, proc.stdout, proc.stderr


class RayLauncher(BaseLauncher):
    """One Ray task per trial (options ``cpus_per_trial``, ``gpus_per_trial``), at most ``jobs``
    at a time. Connects to ``address`` (``auto``, ``HOST:PORT``) or starts a local Ray. The
    runs root must be on a filesystem every node sees (the run directories are the results).
    On a cluster started elsewhere (``ray start --head`` in another folder, or shell), a task
    runs in the submitter's working directory and gets the forwarded environment
    (:data:`FORWARDED_PREFIXES`) through Ray's runtime environment."""

    Options = RayOptions

    def __init__(
        self,
        jobs: int = 1,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
    ) -> None:
        self.jobs, self.address = check_jobs(jobs), address
        self.cpus, self.gpus = float(cpus_per_trial), float(gpus_per_trial)

    def launch(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None]) -> list[JobResult]:
        from runlab._imports import require

        ray = require("ray", "ray", "--launcher ray")
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus)(_run_job)
        env = forwarded_env()
        if env:
            task = task.options(runtime_env={"env_vars": env})
        threads, cwd = max(1, int(self.cpus)), os.getcwd()
        source, results = iter(jobs), []
        inflight: dict[Any, Job] = {}
        exhausted = False
        try:
            while not exhausted or inflight:
                if not exhausted:
                    new, exhausted = take(source, self.jobs - len(inflight))
                    for job in new:
                        ref = task.remote(job.args, job.log_dir, job.index, threads, cwd)
                        inflight[ref] = job
                if not inflight:
                    break
                ready, _ = ray.wait(list(inflight), num_returns=1)
                job = inflight.pop(ready[0])
                code, out, err = ray.get(ready[0])
                result = parse_result(job.index, code, out, err)
                results.append(result)
                on_done(result)
        except KeyboardInterrupt:
            for ref in inflight:
                ray.cancel(ref, force=True)
            raise
        finally:
            if started_here:
                ray.shutdown()
        return results
