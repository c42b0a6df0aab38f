"""``runlab jobs``: the jobs of a sweep or study submitted to a scheduler."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import Format, write_rows
from runlab.tracking.roots import ROOT_HELP

COLUMNS = ["index", "job", "state", "scheduler", "node", "run_id", "status"]


def jobs(
    ref: str = typer.Argument(..., help="Sweep id (or prefix, or name) or study name."),
    wait: bool = typer.Option(False, "--wait", help="Block until every job has ended."),
    cancel: bool = typer.Option(
        False, "--cancel", help="Cancel every job still queued or running."
    ),
    poll: float = typer.Option(5.0, "--poll", help="Seconds between looks with --wait."),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help=ROOT_HELP),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Scheduler state and run status of every job side by side; exit 1 when one failed or
    was lost (with --wait: once all have ended)."""
    from runlab.sweep.jobs import find_batch, job_rows, launcher_of, record_runs
    from runlab.tracking.roots import runs_root

    batch = find_batch(runs_root(output_dir), ref)
    pool = launcher_of(batch)
    if cancel:
        ids = [str(s["job_id"]) for s in batch.submissions]
        pool.cancel(ids)
        sys.stderr.write(f"runlab: cancelled {pool.scheduler} job(s) {', '.join(ids)}\n")
    rows = job_rows(batch, pool)
    if wait:
        rows = _wait(batch, pool, rows, max(0.2, poll))
    record_runs(batch)
    _print(batch, rows, fmt)
    bad = [r for r in rows if r["state"] in ("failed", "lost")]
    if bad:
        first = bad[0]
        tail = (first["log"] or "").splitlines()[-1:] or ["no log"]
        sys.stderr.write(
            f"runlab: {len(bad)} of {len(rows)} jobs {first['state']} (#{first['index']}: "
            f"{tail[0][:160]}); logs in {batch.logs}\n"
        )
        raise typer.Exit(1)


def _wait(batch: Any, pool: Any, rows: list[dict[str, Any]], poll: float) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from runlab.sweep.jobs import counts, job_rows, live

    total = len(rows)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[states]}"),
        transient=True,
        disable=not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task(f"{batch.folder.name}", total=total, states="")
        while True:
            left = live(rows)
            states = " ".join(f"{k} {v}" for k, v in sorted(counts(rows).items()))
            bar.update(task, completed=total - left, states=states)
            if not left:
                return rows
            time.sleep(poll)
            rows = job_rows(batch, pool)


def _print(batch: Any, rows: list[dict[str, Any]], fmt: Format) -> None:
    from runlab.sweep.jobs import counts, objective_of

    objective = objective_of(batch)
    data = batch.data
    payload = {"id": data["id"], "kind": data["kind"], "scheduler": data["launcher"],
               "objective": objective, "jobs": rows}  # fmt: skip
    columns = [*COLUMNS, objective] if objective else COLUMNS  # headed val.loss, say
    shown = [{**row, objective: row.get("objective")} for row in rows] if objective else rows
    if not write_rows(fmt, columns, shown, payload, "state"):
        return
    states = ", ".join(f"{v} {k}" for k, v in sorted(counts(rows).items()))
    typer.echo(f"{batch.data['kind']} {batch.data['id']} on {batch.data['launcher']}: {states}")
    for row in rows:
        if row["log"]:
            typer.echo(f"#{row['index']} {row['state']}, last lines of its log:")
            typer.echo("    " + "\n    ".join(row["log"].splitlines()))


def register(app: typer.Typer) -> None:
    app.command("jobs")(jobs)
