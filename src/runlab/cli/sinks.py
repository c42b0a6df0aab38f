"""``runlab sync``: mirror ended runs to TensorBoard, W&B or MLflow from their files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import Format, write_json, write_table
from runlab.cli.runs import _root_arg
from runlab.errors import ConfigError, RunlabError
from runlab.sinks.builtin import SINK_NAMES
from runlab.tracking.roots import ROOT_HELP

SET_HELP = "A sink option, SINK.KEY=VALUE (mlflow.tracking_uri=sqlite:///mlflow.db); repeatable."


def _parse_sets(items: list[str] | None, sinks: list[str]) -> dict[str, dict[str, Any]]:
    from runlab._yaml import load_yaml

    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        sink, dot, option = key.partition(".")
        if not sep or not dot or not option:
            raise ConfigError(f"--set {item!r}: expected SINK.KEY=VALUE, e.g. wandb.mode=offline")
        if sink not in sinks:
            raise ConfigError(f"--set {item!r}: {sink!r} is not one of the --sink given")
        out.setdefault(sink, {})[option] = load_yaml(value) if value else None
    return out


def sync(
    target: str | None = typer.Argument(
        None, help="A run (id, prefix, name, path) or a runs root: every ended run under it."
    ),
    sink: list[str] = typer.Option(
        ...,
        "--sink",
        "-s",
        help=f"{', '.join(SINK_NAMES)} or a plugin's (repeatable).",
        show_default=False,
    ),
    set_: list[str] | None = typer.Option(None, "--set", help=SET_HELP, show_default=False),
    where: str | None = typer.Option(None, "--where", "-w", help="Only the runs matching this."),
    force: bool = typer.Option(
        False, "--force", help="Mirror again even where mirrors.json says it is complete."
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Mirror ended runs from their files; runs already mirrored are skipped (idempotent)."""
    from runlab.sinks.base import check_sink_names
    from runlab.sinks.replay import sync_run
    from runlab.tracking.record import load_runs
    from runlab.tracking.resolve import resolve_run

    check_sink_names(sink, "--sink")
    sets = _parse_sets(set_, sink)
    base = _root_arg(root)
    path = Path(target) if target else base
    if target and not (path.is_dir() and not (path / "run.json").exists()):
        records = [resolve_run(target, base)]
    else:
        if not path.is_dir():
            raise ConfigError(f"{path} is not a runs root or a run (give an id, name or path)")
        records = load_runs(path, where=where)
        if not records:
            matching = f" matching {where}" if where else ""
            raise RunlabError(f"no runs to sync under {path}{matching}")
    results = []
    for record in records:
        results += sync_run(record, sink, sets, force=force)
    if fmt is Format.json:
        write_json([r.__dict__ for r in results])
    else:
        write_table(
            ["run", "sink", "outcome", "detail"],
            [[r.run_id, r.sink, r.outcome, r.detail] for r in results],
        )
    if any(r.outcome == "failed" for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sync")(sync)
