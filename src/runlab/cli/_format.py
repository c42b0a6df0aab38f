"""Rendering rows for people (rich tables) and for scripts (JSON, CSV, Markdown)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from runlab._io import to_jsonable


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


STATUS_STYLE = {
    "running": "bold cyan",
    "created": "cyan",
    "finished": "green",
    "failed": "bold red",
    "crashed": "bold red",
    "stopped": "yellow",
    "preempted": "yellow",
    "pruned": "magenta",
}


def console(stderr: bool = False) -> Any:
    from rich.console import Console  # rich only when something is drawn

    stream = sys.stderr if stderr else sys.stdout
    # Off a terminal (a pipe, a file) rows are never folded to 80 columns.
    width = None if stream.isatty() else 4096
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def fmt_value(value: Any) -> str:
    """A cell for people: short numbers, local times, durations."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.4e}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=to_jsonable)
    return str(value)


def fmt_time(iso: Any) -> str:
    if not iso:
        return ""
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):  # a damaged run.json: show what is there
        return str(iso)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def write_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=to_jsonable) + "\n")


def write_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if v is None else _raw(v) for v in row])
    sys.stdout.write(buf.getvalue())


def write_markdown(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in columns) + " |"]
    lines.append("| " + " | ".join("---" for _ in columns) + " |")
    lines.extend("| " + " | ".join(esc(c) for c in row) + " |" for row in rows)
    sys.stdout.write("\n".join(lines) + "\n")


def _raw(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=to_jsonable)
    return value


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str | None:
    """The table as Rich draws it off a terminal (no color, a 4096-column width): each cell
    padded to its column's width, two spaces between columns. None where only Rich can draw
    it: on a terminal, with colors forced, a cell that is not printable ASCII (wide or
    combining characters, tabs, newlines), a table too wide. Importing Rich and drawing 50
    rows costs 0.1-0.15 s here; this, microseconds."""
    env = os.environ
    if sys.stdout.isatty() or env.get("FORCE_COLOR") or env.get("TTY_COMPATIBLE") == "1":
        return None  # where Rich would draw for a terminal
    if not columns or any(len(row) != len(columns) for row in rows):
        return None
    cells = [columns, *rows]
    if not all(c.isascii() and c.isprintable() for row in cells for c in row):
        return None
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    if not 0 < sum(widths) <= 4096 - 2 * len(widths):
        return None
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)
    return "".join(line + "\n" for line in lines)


def write_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], status_col: int | None = None
) -> None:
    plain = _plain_table(columns, rows)
    if plain is not None:
        sys.stdout.write(plain)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in columns:
        keep = col in ("id", "status", "created")
        table.add_column(  # a Text header: a metric named ':x:' or '[b]' is not markup
            Text(col), overflow="fold", no_wrap=keep, min_width=len(col) if keep else None
        )
    for row in rows:  # Text cells: a '[' in a run name is not rich markup
        table.add_row(
            *(
                Text(c, style=STATUS_STYLE.get(c, "") if i == status_col else "")
                for i, c in enumerate(row)
            )
        )
    console().print(table)


def write_rows(
    fmt: Format, columns: list[str], rows: list[dict[str, Any]], payload: Any, status: str
) -> bool:
    """``rows`` in the format asked for: ``payload`` as JSON, or the ``columns`` as CSV,
    Markdown or a table (``status`` the column colored by state). True for a table, to which
    the caller adds its summary line."""
    if fmt is Format.json:
        write_json(payload)
        return False
    cells = [[row.get(c) for c in columns] for row in rows]
    if fmt is Format.csv:
        write_csv(columns, cells)
        return False
    text = [[fmt_value(v) for v in row] for row in cells]
    if fmt is Format.md:
        write_markdown(columns, text)
        return False
    write_table(columns, text, status_col=columns.index(status))
    return True
