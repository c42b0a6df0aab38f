"""``runlab reproduce RUN``: the commands that rerun a run from its commit and dirty diff."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from runlab.errors import ConfigError
from runlab.tracking.roots import ROOT_HELP


def reproduce(
    run: str = typer.Argument(..., help="Run id, unique id prefix, path, or name."),
    overrides: list[str] | None = typer.Argument(
        None, help="Overrides on the run's config (e.g. secrets it redacted).", show_default=False
    ),
    execute: bool = typer.Option(False, "--exec", help="Run the commands instead of printing."),
    into: Path | None = typer.Option(
        None, "--dir", help="Where the checkout goes (default: a folder under the temp dir)."
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
) -> None:
    """Print (or run, --exec) the commands that check out the run's commit in a worktree,
    apply its diff and rerun its config with its seed, into the run's own runs root; the new
    run is tagged reproduces=RUN."""
    from runlab.cli.runs import _root_arg
    from runlab.tracking.reproduce import execute as run_steps
    from runlab.tracking.reproduce import plan
    from runlab.tracking.resolve import resolve_run

    record = resolve_run(run, _root_arg(root))
    steps = plan(record, record.path.parent, into, list(overrides or []))
    if execute:
        if steps.refused:
            raise ConfigError(steps.refused)
        if into is not None and into.exists():
            raise ConfigError(f"--dir {into} exists: give a new folder for the checkout")
        raise typer.Exit(run_steps(steps.steps))
    for note in steps.notes:
        sys.stdout.write(f"# {note}\n")
    for step in steps.steps:
        cd = f"cd {shlex.quote(step.cwd)} && " if step.cwd else ""
        sys.stdout.write(cd + shlex.join(step.argv) + "\n")


def register(app: typer.Typer) -> None:
    app.command("reproduce")(reproduce)
