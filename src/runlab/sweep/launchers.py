"""Where trials run. A launcher takes jobs (a `runlab run` command line each) and returns their
results; the sweep or study decides what the jobs are."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runlab.errors import ConfigError


@dataclass
class Job:
    index: int
    args: list[str]  # arguments of `runlab run`
    log_dir: str  # the child's stdout and stderr go to <log_dir>/<index>.out / .err


@dataclass
class JobResult:
    index: int
    returncode: int
    run_id: str | None = None
    run_dir: str | None = None
    status: str = "failed"
    stderr_tail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def take(source: Iterator[Job], free: int) -> tuple[list[Job], bool]:
    """Up to ``free`` jobs from ``source`` (asked for only now), and whether it ran dry."""
    jobs: list[Job] = []
    while len(jobs) < free:
        job = next(source, None)
        if job is None:
            return jobs, True
        jobs.append(job)
    return jobs, False


class BaseLauncher:
    """Run every job; call ``on_done`` as each finishes (in the parent process). Jobs are
    pulled lazily, so a study can ask for its next trial only when a slot is free."""

    def launch(self, jobs: Iterable[Job], on_done: Callable[[JobResult], None]) -> list[JobResult]:
        raise NotImplementedError


class LocalLauncher(BaseLauncher):
    """A pool of ``jobs`` child processes, each `python -m runlab run ...`. Ctrl-C in the parent
    sends SIGTERM to every child (their runs end ``preempted``) and re-raises."""

    def __init__(self, jobs: int = 1) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs

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


def parse_result(index: int, returncode: int, out: str, err: str) -> JobResult:
    """A job's result from `runlab run --format json` output (its last JSON line)."""
    result = JobResult(index, returncode, stderr_tail=err.strip()[-2000:])
    for line in reversed(out.strip().splitlines()):
        try:
            info = json.loads(line)
        except ValueError:
            continue
        result.run_id, result.run_dir = info.get("run_id"), info.get("run_dir")
        result.status = info.get("status", "failed")
        break
    return result


# What a job on another process or machine needs from the submitting shell: runlab's and the
# mirrors' settings (MLFLOW_TRACKING_URI, WANDB_PROJECT, ...) and where the user's own modules
# are (PYTHONPATH, for pkg.mod:fn in a config). Nothing else of the environment travels.
FORWARDED_PREFIXES = ("RUNLAB_", "MLFLOW_", "WANDB_", "TENSORBOARD_")
FORWARDED_NAMES = ("PYTHONPATH",)


def forwarded_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if k.startswith(FORWARDED_PREFIXES) or k in FORWARDED_NAMES
    }


def _run_job(
    args: list[str], log_dir: str, index: int, threads: int | None, cwd: str | None = None
) -> tuple[int, str, str]:
    """Run one `runlab run` (on whichever machine executes this) in the submitter's working
    directory when this machine has it, so that relative paths in a config mean what they
    meant where the sweep was started; logs go to log_dir."""
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
    """One Ray task per trial (``--cpus-per-trial``, ``--gpus-per-trial``), at most ``jobs``
    at a time. Connects to ``address`` (``auto``, ``HOST:PORT``) or starts a local Ray. The
    runs root must be on a filesystem every node sees (the run directories are the results).
    On a cluster started elsewhere (``ray start --head`` in another folder, or shell), a task
    runs in the submitter's working directory and gets the forwarded environment
    (:data:`FORWARDED_PREFIXES`) through Ray's runtime environment."""

    def __init__(
        self,
        jobs: int = 1,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
    ) -> None:
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        if not (math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
            raise ConfigError(f"--cpus-per-trial must be > 0, got {cpus_per_trial}")
        if not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
            raise ConfigError(f"--gpus-per-trial must be >= 0, got {gpus_per_trial}")
        self.jobs, self.address = jobs, address
        self.cpus, self.gpus = cpus_per_trial, gpus_per_trial

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


LAUNCHERS: dict[str, Callable[..., BaseLauncher]] = {"local": LocalLauncher, "ray": RayLauncher}


def _given(value: float | None, default: float) -> float:
    return default if value is None else float(value)  # 0 is given, not missing


def make_launcher(name: str, jobs: int, **options: Any) -> BaseLauncher:
    """A launcher by name; ``options`` (ray_address, cpus_per_trial, gpus_per_trial) go to the
    launchers that take them."""
    if name not in LAUNCHERS:
        raise ConfigError(f"--launcher {name!r} is not available; use: {', '.join(LAUNCHERS)}")
    if name == "ray":
        return RayLauncher(
            jobs=jobs,
            address=options.get("ray_address"),
            cpus_per_trial=_given(options.get("cpus_per_trial"), 1.0),
            gpus_per_trial=_given(options.get("gpus_per_trial"), 0.0),
        )
    return LAUNCHERS[name](jobs=jobs)
