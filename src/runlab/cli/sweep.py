"""``runlab sweep``: a grid of runs in Hydra's sweep syntax, in parallel."""

from __future__ import annotations

from pathlib import Path

import typer

from runlab.cli._format import Format, fmt_value, write_csv, write_json, write_markdown, write_table


def sweep(
    config: str | None = typer.Argument(
        None, help="Config file (omit with --resume).", show_default=False
    ),
    overrides: list[str] | None = typer.Argument(
        None,
        help="Sweeps in Hydra's grammar: a=1,2 model=mlp,resmlp b='range(1,4)'",
        show_default=False,
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Runs at a time."),
    launcher: str = typer.Option("local", "--launcher", help="Where runs execute: local."),
    name: str | None = typer.Option(None, "--name", help="Sweep name (default: config name)."),
    objective: str = typer.Option("val.loss", "--objective", help="Metric to sort by."),
    direction: str = typer.Option("minimize", "--direction", help="minimize or maximize."),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Runs root."),
    resume: str | None = typer.Option(
        None, "--resume", help="Run the unfinished combinations of SWEEP."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Run every combination of the sweep overrides; print them sorted by the objective."""
    from runlab.sweep.runner import results_table, run_grid
    from runlab.tracking.run import default_root

    root = output_dir or default_root()
    if resume and config and "=" in config:
        raise typer.BadParameter("with --resume, give no overrides: the sweep has them")
    record = run_grid(
        config, list(overrides or []), root, jobs, launcher, name, objective, direction, resume
    )
    rows = results_table(record, root)
    columns = list(rows[0]) if rows else ["index", "run_id", "status"]
    if fmt is Format.json:
        write_json({"sweep_id": record.id, "path": str(record.path), "runs": rows})
        return
    cells = [[row.get(c) for c in columns] for row in rows]
    if fmt is Format.csv:
        write_csv(columns, cells)
        return
    text = [[fmt_value(v) for v in row] for row in cells]
    if fmt is Format.md:
        write_markdown(columns, text)
        return
    write_table(columns, text, status_col=columns.index("status"))
    finished = sum(1 for r in rows if r["status"] == "finished")
    typer.echo(f"sweep {record.id}: {finished}/{len(rows)} finished ({record.path})")


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
