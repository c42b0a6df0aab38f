"""``runlab ls``, ``runlab show`` and ``runlab index``: listing and reading runs."""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import (
    Format,
    fmt_duration,
    fmt_time,
    fmt_value,
    write_csv,
    write_json,
    write_markdown,
    write_table,
)
from runlab.tracking.roots import ROOT_HELP

TABLE_LIMIT = 50
_BASE_COLUMNS = ["id", "status", "name", "created", "duration"]
_PREFERRED_METRICS = ["val_loss", "train_loss", "best_epoch"]
_HIDDEN_METRICS = {"duration_seconds", "last_epoch", "error"}


def _root_arg(root: Path | None) -> Path:
    """The runs root given (it must exist), else the default (maybe not yet)."""
    from runlab.tracking.roots import runs_root

    return runs_root(root, must_exist=True)


def ls(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    where: str | None = typer.Option(
        None,
        "--where",
        "-w",
        help="Filter, e.g. 'status == \"finished\" and metrics.val_loss < 0.9'",
    ),
    sort: str | None = typer.Option(
        None, "--sort", "-s", help="Sort key, '-' for descending (default: -created)."
    ),
    limit: int | None = typer.Option(
        None, "--limit", "-n", min=0, help=f"At most N runs (table default {TABLE_LIMIT}; 0: all)."
    ),
    columns: list[str] | None = typer.Option(
        None, "--columns", "-c", help="Columns, comma-separated or repeated: metrics.x, config.a.b"
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """List runs, newest first."""
    from runlab.tracking.expr import parse
    from runlab.tracking.index import RunIndex
    from runlab.tracking.state import failure_text

    expr = parse(where) if where else None
    if limit is None:
        limit = TABLE_LIMIT if fmt is Format.table else 0
    warnings: list[str] = []
    rows, total = RunIndex(_root_arg(root)).query(
        expr, sort=sort, limit=limit or None, warnings=warnings
    )
    for w in warnings:
        sys.stderr.write(f"runlab: warning: {w}\n")
    cols = _columns(columns, rows)
    if fmt is Format.json:
        write_json([_json_row(r, cols) for r in rows])
        return
    paths = [tuple(c.split(".")) for c in cols]
    if fmt is Format.csv:
        write_csv(cols, [[r.lookup(p) for p in paths] for r in rows])
        return
    cells = [[_cell(c, r.lookup(p)) for c, p in zip(cols, paths, strict=False)] for r in rows]
    reasons = [failure_text(str(r["status"]), r["metrics"], 60) for r in rows]
    if any(reasons) and not columns:  # why each failed run failed, at a glance
        cols = [*cols, "reason"]
        cells = [[*row, why or ""] for row, why in zip(cells, reasons, strict=True)]
    if fmt is Format.md:
        write_markdown(cols, cells)
        return
    if not rows:
        sys.stdout.write(f"no runs under {_root_arg(root)}" + (" match" if expr else "") + "\n")
        return
    write_table(
        [c.removeprefix("metrics.") for c in cols], cells, status_col=_index(cols, "status")
    )
    if total > len(rows):
        sys.stdout.write(f"{len(rows)} of {total} runs shown; --limit 0 shows all\n")


def _index(cols: list[str], name: str) -> int | None:
    return cols.index(name) if name in cols else None


def _columns(requested: list[str] | None, rows: list[Any]) -> list[str]:
    if requested:
        return [c.strip() for item in requested for c in item.split(",") if c.strip()]
    counts: Counter[str] = Counter()
    for r in rows[:500]:
        metrics = r["metrics"]
        counts.update(
            k
            for k, v in metrics.items()
            if k not in _HIDDEN_METRICS and isinstance(v, (int, float)) and not isinstance(v, bool)
        )
    keys = [k for k in _PREFERRED_METRICS if k in counts]
    keys += [k for k, _ in counts.most_common() if k not in keys]
    return _BASE_COLUMNS + [f"metrics.{k}" for k in keys[:4]]


def _cell(column: str, value: Any) -> str:
    if column in ("created", "started", "ended"):
        return fmt_time(value)
    if column == "duration":
        return fmt_duration(value)
    return fmt_value(value)


def _json_row(row: Any, cols: list[str]) -> dict[str, Any]:
    out = {k: row[k] for k in ("id", "name", "status", "created", "started", "ended", "duration")}
    out.update(parent=row["parent"], trial=row["trial"], tags=row["tags"], metrics=row["metrics"])
    for c in cols:
        if c not in out:
            out[c] = row.lookup(tuple(c.split(".")))
    return out


def show(
    run: str = typer.Argument(
        ..., help="Run id, unique id prefix, path, or name (the newest run of that name)."
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Show one run: identity, provenance, summary, last epoch, config, warnings."""
    from runlab.tracking.resolve import resolve_run

    notes: list[str] = []
    record = resolve_run(run, _root_arg(root), notes)
    for note in notes:
        sys.stderr.write(f"runlab: note: {note}\n")
    scalars = record.scalars()
    last_epoch = (
        [r for r in scalars if r.get("epoch") == scalars[-1].get("epoch")] if scalars else []
    )
    events = record.events()
    damaged = [{"event": "damaged", "message": p} for p in record.problems]
    notable = damaged + [e for e in events if e.get("event") in ("on_warning", "on_exception")]
    if fmt is not Format.table:
        write_json({**record.to_dict(), "last_epoch": last_epoch, "warnings": notable})
        return
    _show_table(record, last_epoch, notable)


def _show_table(
    record: Any, last_epoch: list[dict[str, Any]], notable: list[dict[str, Any]]
) -> None:
    from rich.syntax import Syntax

    from runlab._yaml import to_yaml
    from runlab.cli._format import STATUS_STYLE, console

    out = console()
    info, state = record.info, record.state.value
    out.print(f"[bold]{record.id}[/]  [{STATUS_STYLE.get(state, '')}]{state}[/]", markup=True)
    git = info.get("git") or {}
    facts = {
        "name": record.name,
        "path": str(record.path),
        "created": fmt_time(info.get("created")),
        "duration": fmt_duration(info.get("duration_seconds")),
        "host / pid": f"{info.get('host')} / {info.get('pid')}",
        "command": " ".join(info.get("command") or []),
        "git": _git(git),
        "versions": " ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items()),
        "device / seed": f"{_dash(info.get('device'))} / {_dash(info.get('seed'))}",
        "parent / trial": f"{_dash(record.parent)} / {_dash(info.get('trial'))}",
        "tags": " ".join(f"{k}={v}" for k, v in record.tags.items()),
    }
    _kv(out, "", facts)
    metrics = record.metrics
    error = metrics.pop("error", None)
    if metrics:
        from runlab.tracking.record import flatten

        _kv(
            out,
            "summary (metrics.json)",
            {k: fmt_value(v) for k, v in flatten(metrics, "").items()},
        )
    if last_epoch:
        cols = [c for c in last_epoch[0] if any(r.get(c) is not None for r in last_epoch)]
        out.print(f"\n[bold]last epoch[/] ({last_epoch[0].get('epoch')})")
        write_table(cols, [[fmt_value(r.get(c)) for c in cols] for r in last_epoch])
    if notable:
        out.print("\n[bold]warnings and errors[/]")
        for e in notable[-10:]:
            out.print(f"  {e.get('event')}: {e.get('message') or e.get('type')}", markup=False)
    if error:
        out.print(f"\n[bold red]error[/] {error.get('type')}: {error.get('message')}")
        out.print(error.get("traceback", ""), markup=False, highlight=False)
    if record.config:
        out.print("\n[bold]config[/]")
        out.print(Syntax(to_yaml(record.config).rstrip(), "yaml", theme="ansi_dark"))


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _git(git: dict[str, Any]) -> str:
    if not git:
        return ""
    if not git.get("dirty"):
        return str(git.get("commit", ""))[:12]
    kept = f", {git['diff']}" if git.get("diff") else ""  # runlab reproduce applies it
    return f"{str(git.get('commit', ''))[:12]} (dirty{kept})"


def _kv(out: Any, title: str, data: dict[str, str]) -> None:
    from rich.table import Table
    from rich.text import Text

    if title:
        out.print(f"\n[bold]{title}[/]")
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="dim")
    table.add_column(overflow="fold")
    for k, v in data.items():
        if v not in ("", None):
            table.add_row(k.lstrip("."), Text(str(v)))
    out.print(table)


def index(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
) -> None:
    """Rebuild the index (<root>/index.db) from the run directories."""
    from runlab.tracking.index import RunIndex

    path = _root_arg(root)
    if not path.is_dir():
        from runlab.errors import RunlabError

        raise RunlabError(f"runs root {path} does not exist; pass the folder holding the runs")
    t0 = time.perf_counter()
    runs_index = RunIndex(path)
    count, warnings = runs_index.rebuild()
    for w in warnings:
        sys.stderr.write(f"runlab: warning: {w}\n")
    took = time.perf_counter() - t0
    if runs_index.in_memory:  # say so: no index.db was written, reads go on without one
        sys.stdout.write(
            f"read {count} runs in {took:.2f}s; {path / 'index.db'} was not written "
            "(see the warning): every command reads the run directories instead\n"
        )
    else:
        sys.stdout.write(f"indexed {count} runs in {took:.2f}s ({path / 'index.db'})\n")


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("show")(show)
    app.command("index")(index)
