"""Run a grid sweep: expand it, record it, launch its runs, collect the objective."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from runlab._secrets import REDACTED, redact_args, secret_values
from runlab.errors import ConfigError
from runlab.sweep.batch import BatchLauncher
from runlab.sweep.combinations import adopt_runs, run_args
from runlab.sweep.grid import expand
from runlab.sweep.launchers import Job, JobResult, launcher_choice, make_launcher
from runlab.tracking.groups import SweepRecord
from runlab.tracking.record import RunRecord
from runlab.tracking.roots import check_root, plain_name
from runlab.train.checks import load_grid

SCHEDULER_ONLY = "--pack and --dry-run are for a scheduler: add --launcher slurm|htcondor"


def run_grid(
    config: str | None,
    overrides: list[str],
    root: Path,
    jobs: int = 1,
    launcher: str | None = None,
    name: str | None = None,
    objective: str = "val.loss",
    direction: str = "minimize",
    resume: str | None = None,
    launcher_options: list[str] | None = None,
    pack: int = 1,
    dry_run: bool = False,
) -> SweepRecord | None:
    """``launcher`` and ``launcher_options`` (``key=value``) win over the config's
    ``launcher:`` block (of a new sweep; a resumed one takes them from the command line, or
    a scheduler's sweep from its jobs/batch.json). On a scheduler (Slurm, HTCondor) the
    combinations are submitted and this returns at once (``dry_run``: prints the job script,
    writes and submits nothing, returns None)."""
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"--direction must be minimize or maximize, got {direction!r}")
    root = check_root(root.resolve())  # runs elsewhere write where this process reads
    real: dict[int, list[str]] | None = None  # a new sweep's overrides, secrets included
    if resume:
        from runlab.sweep.submit import resume_batch

        record = SweepRecord.load(root, resume, own=True)
        if resume_batch(record, root, launcher, launcher_options, pack, dry_run):
            return None if dry_run else record  # resubmitted to its scheduler
        pool = make_launcher(*launcher_choice(launcher, launcher_options), jobs=jobs)
        if pack != 1 or dry_run:
            if record.lease is not None:
                record.lease.release()
            raise ConfigError(SCHEDULER_ONLY)
    else:
        if config is None:
            raise ConfigError("missing CONFIG: runlab sweep CONFIG a=1,2 b=x,y")
        combinations, varying = expand(overrides, config)
        secrets: set[str] = set()
        block = None
        for checked in load_grid(config, combinations):  # every one valid before any runs
            secrets |= secret_values(checked)
            block = checked.get("launcher") if block is None else block
        chosen = launcher_choice(launcher, launcher_options, block)
        pool = make_launcher(*chosen, jobs=jobs)
        if isinstance(pool, BatchLauncher):
            from runlab.sweep.submit import submit_sweep

            name = plain_name(name, "--name") if name else Path(config).stem
            return submit_sweep(
                pool, chosen, config, overrides, combinations, varying, secrets,
                root, name, objective, direction, pack, dry_run,
            )  # fmt: skip
        if pack != 1 or dry_run:
            raise ConfigError(SCHEDULER_ONLY)
        record = SweepRecord.create(  # sweep.json without the secrets typed in the overrides
            root,
            plain_name(name, "--name") if name else Path(config).stem,
            str(Path(config).resolve()),
            redact_args(overrides, secrets),
            [redact_args(c, secrets) for c in combinations],
            varying,
            objective,
            direction,
        )
        real = dict(enumerate(combinations))
    try:
        _launch(record, root, pool, real)
    finally:
        if record.lease is not None:
            record.lease.release()
    return record


def _launch(record: SweepRecord, root: Path, pool: Any, real: dict[int, list[str]] | None) -> None:
    if real is None:  # resumed: what a dead owner left is adopted, never run twice
        for line in adopt_runs(record, root):
            sys.stderr.write(f"runlab: {line}\n")
    todo = [c for c in record.unfinished() if c["status"] != "running"]
    if real is None:
        real = {c["index"]: c["overrides"] for c in todo}
        _refuse_redacted(record, real)
    job_list = [
        Job(c["index"], run_args(record, root, c["index"], real[c["index"]]), str(record.logs))
        for c in todo
    ]

    def done(result: JobResult) -> None:
        record.record_result(result.index, result.run_id, result.status)

    pool.launch(job_list, done)


def _refuse_redacted(record: SweepRecord, todo: dict[int, list[str]]) -> None:
    """A secret typed in a sweep's overrides is not in sweep.json, so it cannot be rerun."""
    for overrides in todo.values():
        hidden = [o for o in overrides if REDACTED in o]
        if hidden:
            raise ConfigError(
                f"sweep {record.id} was started with a secret on the command line ({hidden[0]}), "
                "which is not stored; give secrets through the environment, e.g. "
                "db.password='${oc.env:DB_PASSWORD}', and start the sweep again"
            )


def objective_value(run_dir: str | None, objective: str) -> float | None:
    if not run_dir or not Path(run_dir).exists():
        return None
    rec = RunRecord(run_dir)
    value = rec.lookup(("metrics", *objective.split(".")))
    if value is None:
        value = rec.lookup(("metrics", objective.replace(".", "_")))
    return float(value) if isinstance(value, (int, float)) else None


def run_failure(run_dir: str | None, logs: Path, index: int) -> str:
    """Why a sweep's run failed: its error, or the last ``runlab: error`` line of its stderr
    log (a run that never started: a bad override, a crash before the run existed)."""
    from runlab.tracking.state import failure_text

    if run_dir and (Path(run_dir) / "run.json").exists():
        rec = RunRecord(run_dir)
        reason = failure_text(rec.state.value, rec.metrics, 100)
        if reason:
            return reason
    try:
        lines = (logs / f"{index}.err").read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [ln.removeprefix("runlab: error: ") for ln in lines if ln.startswith("runlab: error")]
    return errors[-1][:100] if errors else "no status and no error line (see the logs)"


def results_table(record: SweepRecord, root: Path) -> list[dict[str, Any]]:
    """One row per combination, sorted by the objective (runs without a value last)."""
    data = record.data
    rows = []
    for c in data["combinations"]:
        run_dir = str(root / c["run_id"]) if c["run_id"] else None
        params = dict(o.split("=", 1) for o in c["overrides"] if "=" in o)
        rows.append(
            {
                "index": c["index"],
                "run_id": c["run_id"],
                "status": c["status"],
                **{k: params.get(k, params.get(f"+{k}")) for k in data["varying"]},
                data["objective"]: objective_value(run_dir, data["objective"]),
            }
        )
        if c["status"] in ("failed", "crashed"):
            rows[-1]["reason"] = run_failure(run_dir, record.logs, c["index"])
    if any("reason" in row for row in rows):
        for row in rows:
            row.setdefault("reason", None)
    sign = -1.0 if data["direction"] == "maximize" else 1.0

    def key(row: dict[str, Any]) -> tuple[int, float]:
        v = row[data["objective"]]
        return (1, 0.0) if v is None or math.isnan(v) else (0, sign * v)

    return sorted(rows, key=key)
