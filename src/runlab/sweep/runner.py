"""Run a grid sweep: expand it, record it, launch its runs, collect the objective."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from runlab._secrets import REDACTED, redact_args, secret_values
from runlab.config import load_config
from runlab.errors import ConfigError
from runlab.sweep.grid import expand
from runlab.sweep.launchers import Job, JobResult, make_launcher
from runlab.sweep.record import SweepRecord
from runlab.tracking.record import RunRecord
from runlab.tracking.run import check_root, plain_name


def run_grid(
    config: str | None,
    overrides: list[str],
    root: Path,
    jobs: int = 1,
    launcher: str = "local",
    name: str | None = None,
    objective: str = "val.loss",
    direction: str = "minimize",
    resume: str | None = None,
    launcher_options: dict[str, Any] | None = None,
) -> SweepRecord:
    if direction not in ("minimize", "maximize"):
        raise ConfigError(f"--direction must be minimize or maximize, got {direction!r}")
    root = check_root(root.resolve())  # runs elsewhere write where this process reads
    pool = make_launcher(launcher, jobs, **(launcher_options or {}))
    if resume:
        record = SweepRecord.load(root, resume)
    else:
        if config is None:
            raise ConfigError("missing CONFIG: runlab sweep CONFIG a=1,2 b=x,y")
        combinations, varying = expand(overrides, config)
        secrets: set[str] = set()
        for combo in combinations:  # every combination is a valid config before anything runs
            secrets |= secret_values(load_config(config, combo))
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
    todo = record.unfinished()
    if resume:
        real = {c["index"]: c["overrides"] for c in todo}
        _refuse_redacted(record, real)
    data = record.data
    job_list = [
        Job(
            c["index"],
            [
                data["config"],
                *real[c["index"]],
                "--output-dir",
                str(root),
                "--run-name",
                data["name"],
                "--parent",
                record.id,
                "--trial",
                str(c["index"]),
            ],
            str(record.path.parent / "logs"),
        )
        for c in todo
    ]

    def done(result: JobResult) -> None:
        record.record_result(result.index, result.run_id, result.status)

    pool.launch(job_list, done)
    return record


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
    sign = -1.0 if data["direction"] == "maximize" else 1.0

    def key(row: dict[str, Any]) -> tuple[int, float]:
        v = row[data["objective"]]
        return (1, 0.0) if v is None or math.isnan(v) else (0, sign * v)

    return sorted(rows, key=key)
