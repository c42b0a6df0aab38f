"""``runlab note RUN`` and ``runlab tag RUN``: notes and tags added after the fact."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from runlab.tracking.roots import ROOT_HELP

RUN_HELP = "Run id, unique id prefix, path, or name (the newest run of that name)."


def note(
    run: str = typer.Argument(..., help=RUN_HELP),
    text: str | None = typer.Argument(None, help="The notes (markdown); '-' reads stdin."),
    append: bool = typer.Option(False, "--append", "-a", help="Add to the notes, not replace."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
) -> None:
    """Print a run's notes (notes.md), or write them; indexed, shown on its dashboard page and
    mirrored by the next runlab sync."""
    from runlab.cli.runs import _root_arg
    from runlab.tracking.annotate import write_notes
    from runlab.tracking.resolve import resolve_run

    record = resolve_run(run, _root_arg(root))
    if text is None:
        sys.stdout.write(record.notes)
        return
    given = sys.stdin.read() if text == "-" else text
    if append and record.notes:
        given = record.notes.rstrip("\n") + "\n" + given
    write_notes(record.path, given if given.endswith("\n") else given + "\n")


def tag(
    run: str = typer.Argument(..., help=RUN_HELP),
    pairs: list[str] | None = typer.Argument(
        None, help="key=value, repeatable.", show_default=False
    ),
    remove: list[str] | None = typer.Option(
        None, "--remove", help="A tag to remove (repeatable).", show_default=False
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
) -> None:
    """Set or remove a run's tags (kept in tags.json, over run.json's); prints the tags. Query
    them as tags.key in runlab ls --where."""
    from runlab.cli.runs import _root_arg
    from runlab.cli.train import parse_tags
    from runlab.tracking.annotate import set_tags
    from runlab.tracking.resolve import resolve_run

    record = resolve_run(run, _root_arg(root))
    tags = record.tags
    if pairs or remove:
        tags = set_tags(record.path, tags, parse_tags(list(pairs or [])), list(remove or []))
    for key, value in tags.items():
        sys.stdout.write(f"{key}={value}\n")


def register(app: typer.Typer) -> None:
    app.command("note")(note)
    app.command("tag")(tag)
