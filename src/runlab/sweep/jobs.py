"""``runlab jobs``: a scheduler sweep's or study's jobs, the scheduler's state and the run's
status side by side (no accounting database needed: a job the scheduler has forgotten is
judged by its run directory and the exit status its task runner wrote)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, RunlabError, RunNotFoundError
from runlab.sweep.batch import (
    BAD,
    LIVE,
    BatchLauncher,
    BatchRecord,
    group_runs,
    job_state,
    log_tail,
)
from runlab.sweep.launchers import make_launcher
from runlab.sweep.runner import objective_value


def find_batch(root: Path, ref: str) -> BatchRecord:
    """The scheduler record of sweep ``ref`` (id, prefix, name) or study ``ref`` (name)."""
    from runlab.tracking.groups import SweepRecord

    try:
        folder = SweepRecord.load(root, ref).path.parent
    except RunNotFoundError:
        folder = root / "studies" / ref
        if not folder.is_dir():
            raise RunNotFoundError(f"no sweep or study {ref!r} under {root}") from None
    batch = BatchRecord.find(folder)
    if batch is None:
        raise ConfigError(
            f"{folder.name} did not run on a scheduler (runlab jobs follows sweeps and studies "
            "started with --launcher slurm|htcondor); see runlab status --sweep or runlab tune"
        )
    return batch


def launcher_of(batch: BatchRecord) -> BatchLauncher:
    pool = make_launcher(str(batch.data["launcher"]), dict(batch.data.get("options") or {}))
    assert isinstance(pool, BatchLauncher)
    return pool


def job_rows(batch: BatchRecord, pool: BatchLauncher) -> list[dict[str, Any]]:
    """One row per manifest line: its job, the scheduler's state and node, its run, and one
    merged ``state`` (pending, running, requeued, finished, failed, preempted, lost)."""
    owners = batch.owners()
    queue = pool.queue(sorted({job for job, _ in owners.values()}))
    data = batch.data
    sweep = data.get("kind") == "sweep"
    runs = group_runs(Path(data["root"]), str(data["name"]), str(data["id"])) if sweep else {}
    logs = batch.logs
    objective = objective_of(batch)
    rows = []
    for line in range(int(data.get("jobs") or 0)):
        owner = owners.get(line)
        task = pool.task_id(*owner) if owner else None
        entry = queue.get(task) if task else None
        run = runs.get(line)
        status = run.state.value if run is not None else _exit_status(logs, line)
        state = job_state(entry, status) if owner else "unsubmitted"
        rows.append(
            {
                "index": line,
                "job": task,
                "scheduler": entry.raw if entry else None,
                "node": entry.node if entry else _node(run),
                "run_id": run.id if run is not None else None,
                "status": status,
                "state": state,
                "log": log_tail(logs, line) if state in BAD else None,
            }
        )
        if objective:  # a sweep's objective, as runlab sweep prints it locally
            done = run.path if run is not None and status == "finished" else None
            rows[-1]["objective"] = objective_value(str(done), objective) if done else None
    return rows


def objective_of(batch: BatchRecord) -> str | None:
    """A sweep's objective (``val.loss``), from its sweep.json; None for a study."""
    from runlab.tracking.groups import SweepRecord

    if batch.data.get("kind") != "sweep":
        return None
    record = SweepRecord.read(batch.folder / "sweep.json")
    return record.objective if record is not None else None


def _exit_status(logs: Path, line: int) -> str | None:
    """A study worker's (or a run that never started's) end, from its task's exit file."""
    try:
        code = int((logs / f"{line}.exit").read_text().strip())
    except (OSError, ValueError):
        return None
    return "finished" if code == 0 else "preempted" if code == 143 else "failed"


def _node(run: Any) -> str | None:
    if run is None:
        return None
    try:
        job = run.info.get("scheduler") or {}
    except Exception:
        return None
    return job.get("node") if isinstance(job, dict) else None


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row["state"]] = out.get(row["state"], 0) + 1
    return out


def live(rows: list[dict[str, Any]]) -> int:
    return sum(1 for row in rows if row["state"] in LIVE)


def record_runs(batch: BatchRecord) -> None:
    """Write what the runs became into sweep.json (for runlab status, the dashboard), when no
    one else owns the sweep right now; a study's trials are in its storage already."""
    from runlab.sweep.combinations import adopt_runs
    from runlab.tracking.groups import SweepRecord

    if batch.data.get("kind") != "sweep":
        return
    try:
        record = SweepRecord.load(Path(batch.data["root"]), str(batch.data["id"]), own=True)
    except RunlabError:
        return
    try:
        adopt_runs(record, Path(batch.data["root"]))
    finally:
        if record.lease is not None:
            record.lease.release()
