"""Where trials run. A launcher takes jobs (a `runlab run` command line each) and returns their
results; the sweep or study decides what the jobs are."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from runlab.errors import ConfigError
from runlab.registry import Registry


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


def _is_launcher(obj: Any) -> str | None:
    if isinstance(obj, type) and issubclass(obj, BaseLauncher):
        return None
    return "is not a subclass of runlab.sweep.launchers.BaseLauncher"


# Where runs execute: `--launcher NAME`, or `launcher: {name: NAME, ...}` in the config; each
# takes its options from its `Options` dataclass. Plugins: entry points "runlab.launchers".
LAUNCHERS = Registry("launcher", "runlab.launchers", check=_is_launcher)
LAUNCHERS.add("local", "runlab.sweep.launcher_local:LocalLauncher")
LAUNCHERS.add("ray", "runlab.sweep.launcher_ray:RayLauncher")
LAUNCHERS.add("slurm", "runlab.sweep.launcher_slurm:SlurmLauncher")
LAUNCHERS.add("htcondor", "runlab.sweep.launcher_htcondor:HTCondorLauncher")


def check_jobs(jobs: int) -> int:
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    return jobs


def launcher_choice(
    name: str | None, opts: Iterable[str] | None, block: Any = None
) -> tuple[str, dict[str, Any]]:
    """The launcher and its options: ``--launcher`` over the config's ``launcher.name`` over
    local; the block's other keys (when it names the same launcher), then each
    ``--launcher-opt key=value`` (a YAML value) on top."""
    import yaml

    block = dict(block) if isinstance(block, dict) else {}
    chosen = name or block.get("name") or "local"
    if not isinstance(chosen, str):
        raise ConfigError(f"launcher.name must be a launcher name, got {chosen!r}")
    options = (
        {k: v for k, v in block.items() if k != "name"}
        if block.get("name", chosen) == chosen
        else {}
    )
    for item in opts or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--launcher-opt {item!r} must be key=value (e.g. address=auto)")
        try:
            value = yaml.safe_load(text) if text else None
            # YAML 1.1 reads 1:00:00 as 3600 (base 60): a time limit stays the text typed
            options[key.strip()] = text if ":" in text and isinstance(value, int) else value
        except yaml.YAMLError:
            options[key.strip()] = text
    return chosen, options


def make_launcher(name: str, options: dict[str, Any] | None = None, jobs: int = 1) -> BaseLauncher:
    """A launcher by registered name or import path, its ``options`` checked against its
    ``Options`` dataclass (defaults filled in) and given as keyword arguments."""
    from runlab.config.validate import check_block

    check_jobs(jobs)
    cls = LAUNCHERS.load(name, "--launcher")
    declared = LAUNCHERS.options_class(name, "--launcher")
    given = dict(options or {})
    checked = check_block(declared, given, "launcher") if declared is not None else given
    launcher: BaseLauncher = cls(jobs=jobs, **checked)
    return launcher
