"""A sweep on a scheduler: write its jobs (one ``runlab run`` line per combination) and submit
them, or resubmit what has not finished (``runlab sweep --resume``)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runlab._ids import make_run_id
from runlab._secrets import REDACTED, redact_args
from runlab.errors import ConfigError
from runlab.sweep.batch import LIVE, BatchLauncher, BatchRecord, job_state, submit_lines
from runlab.sweep.combinations import adopt_runs, run_args
from runlab.sweep.launchers import launcher_choice, make_launcher
from runlab.tracking.groups import SweepRecord


def submit_sweep(
    pool: BatchLauncher,
    chosen: tuple[str, dict[str, Any]],
    config: str,
    overrides: list[str],
    combinations: list[list[str]],
    varying: list[str],
    secrets: set[str],
    root: Path,
    name: str,
    objective: str,
    direction: str,
    pack: int,
    dry_run: bool,
) -> SweepRecord | None:
    """Check the scheduler answers, then create the sweep and submit every combination; a
    submission the scheduler refuses removes the sweep again (its message is the error)."""
    if pack < 1:
        raise ConfigError(f"--pack must be at least 1, got {pack}")
    refuse_secrets(combinations, secrets)
    pool.pack = pack
    pool.check_reachable()
    if dry_run:
        folder = root / "sweeps" / make_run_id(name)
        draft = BatchRecord(folder, {"name": name, "submissions": []})
        submit_lines(pool, draft, list(range(len(combinations))), dry_run=True)
        return None
    record = SweepRecord.create(
        root, name, str(Path(config).resolve()), overrides, combinations, varying, objective,
        direction,
    )  # fmt: skip
    try:
        lines = [["run", *run_args(record, root, i, c)] for i, c in enumerate(combinations)]
        batch = BatchRecord.create(
            record.path.parent, "sweep", record.id, name, root, chosen[0], chosen[1], lines
        )
        record.data["launcher"] = chosen[0]
        record.save()
        ids = submit_lines(pool, batch, list(range(len(lines))))
        record.data.update(job_ids=ids, submitted=len(lines))  # for the caller, not saved
    except BaseException:
        if not (record.path.parent / "jobs" / "batch.json").exists() or not _submitted(record):
            shutil.rmtree(record.path.parent, ignore_errors=True)
        raise
    finally:
        if record.lease is not None:
            record.lease.release()
    return record


def refuse_secrets(lines: list[list[str]], secrets: set[str] | None = None) -> None:
    """A secret typed on the command line (``+db.password=...``, a password in a storage URL)
    would be written into the job manifest on a shared filesystem: refused, before anything is
    written, with the way to pass it instead."""
    hidden = [o for line in lines for o in redact_args(line, secrets or set()) if REDACTED in o]
    if hidden:
        raise ConfigError(
            f"a secret on the command line ({hidden[0]}) would be written into the job "
            "manifest; give it through the environment, which jobs inherit: "
            "db.password='${oc.env:DB_PASSWORD}' in a config, PGPASSWORD for a PostgreSQL "
            "storage URL"
        )


def _submitted(record: SweepRecord) -> bool:
    batch = BatchRecord.find(record.path.parent)
    return bool(batch and batch.submissions)


def resume_batch(
    record: SweepRecord,
    root: Path,
    launcher: str | None,
    options: list[str] | None,
    pack: int,
    dry_run: bool,
) -> bool:
    """Resubmit a scheduler sweep's combinations that have not finished and that the
    scheduler no longer holds (no renumbering: each keeps its manifest line). False for a
    sweep that did not run on a scheduler (the caller runs it locally)."""
    batch = BatchRecord.find(record.path.parent)
    if batch is None:
        return False
    try:
        block = {"name": batch.data["launcher"], **(batch.data.get("options") or {})}
        name, opts = launcher_choice(launcher, options, block)
        pool = make_launcher(name, opts)
        if not isinstance(pool, BatchLauncher):
            raise ConfigError(
                f"sweep {record.id} ran on {batch.data['launcher']}: resume it there "
                f"(drop --launcher {launcher})"
            )
        pool.pack = pack
        pool.check_reachable()
        for line in adopt_runs(record, root):
            sys.stderr.write(f"runlab: {line}\n")
        todo = resubmittable(record, batch, pool)
        ids = submit_lines(pool, batch, todo, dry_run) if todo else []
        record.data.update(job_ids=ids, submitted=len(todo), launcher=name)
    finally:
        if record.lease is not None:
            record.lease.release()
    return True


def resubmittable(record: SweepRecord, batch: BatchRecord, pool: BatchLauncher) -> list[int]:
    """The combinations to submit again: not finished, and not pending or running in the
    scheduler (nor running per their run directory)."""
    owners = batch.owners()
    queue = pool.queue(sorted({job for job, _ in owners.values()}))
    todo = []
    for combo in record.unfinished():
        index = combo["index"]
        if combo["status"] in ("running", "stopped", "pruned"):
            continue
        owner = owners.get(index)
        entry = queue.get(pool.task_id(*owner)) if owner else None
        if job_state(entry, combo["status"]) not in LIVE:
            todo.append(index)
    return todo


@dataclass
class WorkerPlan:
    """What each worker of a study runs: ``runlab tune`` with the study's arguments."""

    config: str
    overrides: list[str]
    trials: int
    timeout: str | None
    sampler: str
    pruner: str
    objectives: list[str]
    directions: list[str]
    seed: int | None

    def line(self, root: Path, name: str, storage: str, per_worker: int, worker: int) -> list[str]:
        args = ["tune", str(Path(self.config).resolve()), *self.overrides]
        args += ["--study-name", name, "--storage", storage, "--trials", str(per_worker)]
        args += ["--jobs", "1", "--launcher", "local", "--output-dir", str(root)]
        args += ["--sampler", self.sampler, "--pruner", self.pruner]
        for objective, direction in zip(self.objectives, self.directions, strict=True):
            args += ["--objective", objective, "--direction", direction]
        if self.timeout:
            args += ["--timeout", self.timeout]
        if self.seed is not None:  # one seed per worker: the same would ask the same trials
            args += ["--seed", str(worker_seed(self.seed, worker))]
        return args


def worker_seed(seed: int, worker: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([seed, 7919, worker]).generate_state(1)[0])


def worker_count(batch: dict[str, Any], pool: BatchLauncher) -> int:
    """``--workers``, else ``--jobs``; at least 1."""
    workers = batch.get("workers")
    workers = int(pool.jobs if workers is None else workers)
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    return workers


def submit_study(
    pool: BatchLauncher,
    chosen: tuple[str, dict[str, Any]],
    plan: WorkerPlan,
    root: Path,
    name: str,
    storage: str,
    batch: dict[str, Any],
) -> dict[str, Any]:
    """Submit ``workers`` jobs, each running ``trials / workers`` trials of the study (created
    already, on ``storage``); a study submitted again gets more workers."""
    workers = worker_count(batch, pool)
    per_worker = -(-plan.trials // workers)
    folder = root / "studies" / name
    record = BatchRecord.find(folder)
    first = int(record.data["jobs"]) if record else 0
    lines = [plan.line(root, name, storage, per_worker, first + w) for w in range(workers)]
    if batch.get("dry_run"):
        draft = BatchRecord(folder, {"name": name, "submissions": []})
        submit_lines(pool, draft, list(range(workers)), dry_run=True)
        return {"dry_run": True}
    if record is None:
        record = BatchRecord.create(folder, "study", name, name, root, chosen[0], chosen[1], lines)
    else:
        record.append(lines)
    ids = submit_lines(pool, record, list(range(first, first + workers)))
    return {
        "study": name,
        "folder": str(folder),
        "storage": storage,
        "scheduler": chosen[0],
        "workers": workers,
        "trials_per_worker": per_worker,
        "job_ids": ids,
    }
