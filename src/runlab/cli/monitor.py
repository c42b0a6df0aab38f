"""``runlab status``, ``watch``, ``logs`` and ``stop``: live runs."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import Format, fmt_duration, fmt_value, write_json, write_table
from runlab.cli.runs import _root_arg
from runlab.tracking.roots import ROOT_HELP


def status(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    where: str | None = typer.Option(None, "--where", "-w", help="Filter, as for runlab ls."),
    recent: int = typer.Option(
        10, "--recent", "-n", min=0, help="Ended runs to show besides live ones."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table or json."),
) -> None:
    """Running and recent runs: progress, ETA, the monitored metric, failed gates, warnings."""
    from runlab.monitor.status import status_rows
    from runlab.tracking.expr import parse

    warnings: list[str] = []
    rows = status_rows(_root_arg(root), parse(where) if where else None, recent, warnings)
    for w in warnings:
        sys.stderr.write(f"runlab: warning: {w}\n")
    if fmt is not Format.table:
        write_json(rows)
        return
    if not rows:
        sys.stdout.write(f"no runs under {_root_arg(root)}\n")
        return
    cols = [
        "id",
        "status",
        "name",
        "epoch",
        "progress",
        "elapsed",
        "eta",
        "monitor",
        "latest",
        "best",
        "gates failed",
        "warnings",
    ]
    cells = [_status_cells(r) for r in rows]
    if any(r.get("job") for r in rows):  # runs of a cluster job: which job, which node
        cols.append("job")
        for row, cell in zip(rows, cells, strict=True):
            cell.append(row.get("job") or "")
    write_table(cols, cells, status_col=1)


def _status_cells(r: dict[str, Any]) -> list[str]:
    epoch = "" if r["epoch"] is None else f"{r['epoch']}/{r['total_epochs'] or '?'}"
    progress = "" if r["progress"] is None else f"{r['progress']:.0%}"
    return [
        r["id"],
        r["status"],
        r["name"] or "",
        epoch,
        progress,
        fmt_duration(r["elapsed_seconds"]),
        fmt_duration(r["eta_seconds"]),
        r["monitor"] or "",
        fmt_value(r["latest"]),
        fmt_value(r["best"]),
        ",".join(r["failed_gates"]),
        ",".join(r["warnings"]),
    ]


def watch(
    runs: list[str] | None = typer.Argument(
        None, help="Runs (id, prefix, name, path).", show_default=False
    ),
    sweep: str | None = typer.Option(None, "--sweep", help="Watch a sweep's runs (id or name)."),
    study: str | None = typer.Option(None, "--study", help="Watch a study's runs (its name)."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
    interval: float = typer.Option(
        1.0, "--interval", min=0.05, max=3600, help="Seconds between redraws (0.05 to 3600)."
    ),
    once: bool = typer.Option(False, "--once", help="Draw once and exit."),
) -> None:
    """A live view: progress, last epoch per split, a chart of the monitored metric, gates and
    warnings. Exits when the runs end."""
    from rich.console import Console

    from runlab.cli._watch import watch as run_watch
    from runlab.errors import RunlabError

    if not math.isfinite(interval):  # click's range lets NaN through
        raise RunlabError(f"--interval {interval}: give seconds between 0.05 and 3600")
    base = _root_arg(root)
    if sum(bool(x) for x in (runs, sweep, study)) != 1:
        raise RunlabError("give runs to watch, or --sweep ID, or --study NAME (one of them)")
    select, done = _selection(base, runs or [], sweep, study)
    try:
        out = Console(highlight=False, width=None if sys.stdout.isatty() else 110)
        run_watch(select, out, interval=interval, once=once, done=done)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def _selection(base: Path, runs: list[str], sweep: str | None, study: str | None) -> Any:
    from runlab.tracking.expr import parse
    from runlab.tracking.index import RunIndex
    from runlab.tracking.resolve import resolve_run

    if runs:
        paths = [resolve_run(r, base).path for r in runs]
        return (lambda: paths), None
    if sweep:
        from runlab.cli._watch import read_sweep_done
        from runlab.tracking.groups import SweepRecord

        record = SweepRecord.load(base, sweep)
        parent = record.id
        done = lambda: read_sweep_done(record.path)  # noqa: E731
    else:
        folder = base / "studies" / str(study)
        if not folder.is_dir():
            from runlab.errors import RunNotFoundError

            raise RunNotFoundError(f"no study {study!r} under {base / 'studies'}")
        parent = f"study:{study}"

        def done() -> bool:  # a study writes trials.jsonl after its last trial has ended
            from runlab.tracking.liveness import iso_to_epoch

            rows, _ = RunIndex(base).query(expr)
            ended = [iso_to_epoch(r["ended"]) or 0.0 for r in rows]
            return _mtime(folder / "trials.jsonl") >= max(ended, default=0.0) - 1.0

    expr = parse(f"parent == {_quote(parent)}")

    def select() -> list[Path]:
        rows, _ = RunIndex(base).query(expr, sort="created")
        return [base / r["path"] for r in rows]

    return select, done


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def logs(
    run: str = typer.Argument(..., help="Run id, prefix, name or path."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing until the run ends."),
    tail: int | None = typer.Option(None, "--tail", "-n", min=0, help="Only the last N lines."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
) -> None:
    """Print a run's stdout.log (what it printed); -f follows it while the run is live."""
    from runlab.tracking.record import RunRecord
    from runlab.tracking.resolve import resolve_run

    record = resolve_run(run, _root_arg(root))
    path = record.path / "stdout.log"
    offset = 0
    if tail is not None:
        offset = path.stat().st_size if path.exists() else 0  # follow from what was read
        lines = record.stdout().splitlines(keepends=True)
        sys.stdout.write("".join(lines[-tail:] if tail else []))
    else:
        offset = _copy_from(path, 0)
    while follow:
        ended = record.state.is_final
        offset = _copy_from(path, offset)
        if ended:
            break
        time.sleep(0.3)
        record = RunRecord(record.path)


def _copy_from(path: Path, offset: int) -> int:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            chunk = fh.read()
    except FileNotFoundError:
        return offset
    if chunk:
        sys.stdout.write(chunk.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return offset + len(chunk)


def stop(
    runs: list[str] = typer.Argument(..., help="Runs to stop (id, prefix, name, path)."),
    now: bool = typer.Option(False, "--now", help="Also send SIGTERM (same host only)."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the runs have ended."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
) -> None:
    """Ask runs to stop gracefully: each finishes its step, saves last.pt, ends `stopped`."""
    from runlab.monitor.stop import request_stop
    from runlab.tracking.record import RunRecord
    from runlab.tracking.resolve import resolve_run

    records = [resolve_run(r, _root_arg(root)) for r in runs]
    for record in records:
        sys.stdout.write(request_stop(record, now=now) + "\n")
    while wait:
        states = [RunRecord(r.path).state for r in records]
        if all(s.is_final for s in states):
            for r, s in zip(records, states, strict=True):
                sys.stdout.write(f"{r.id} {s.value}\n")
            break
        time.sleep(0.3)


def register(app: typer.Typer) -> None:
    app.command("status")(status)
    app.command("watch")(watch)
    app.command("logs")(logs)
    app.command("stop")(stop)
