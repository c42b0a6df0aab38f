"""scalars.csv: one row per epoch and split, columns growing as new metrics appear."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from runlab._io import atomic_write_text

HEAD = ("epoch", "split", "loss")
TAIL = ("lr", "epoch_time_s", "samples_per_s", "max_memory_mib")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    item = getattr(value, "item", None)
    return repr(item()) if callable(item) else str(value)


class ScalarsCsv:
    """Appends rows while the columns stay the same; rewrites the file atomically when a new
    metric appears, so the header always describes every row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []

    def _ordered(self, names: list[str]) -> list[str]:
        middle = [n for n in names if n not in HEAD and n not in TAIL]
        return [*HEAD, *middle, *(n for n in TAIL if n in names)]

    def load(self) -> None:
        """Pick up an existing file (a resumed run)."""
        if self.path.exists():
            with open(self.path, encoding="utf-8", newline="") as fh:
                header = fh.readline().strip()
            self.columns = header.split(",") if header else []
            self.rows = read_scalars(self.path)

    def drop_from(self, epoch: int) -> None:
        kept = [r for r in self.rows if r.get("epoch") is None or r["epoch"] < epoch]
        if len(kept) != len(self.rows):
            self.rows = kept
            atomic_write_text(self.path, self._render(self.rows, header=True))

    def add(self, rows: list[dict[str, Any]]) -> None:
        seen = list(self.columns) or list(HEAD)
        for row in rows:
            seen.extend(k for k in row if k not in seen)
        columns = self._ordered(seen)
        self.rows.extend(rows)
        if columns != self.columns:
            self.columns = columns
            atomic_write_text(self.path, self._render(self.rows, header=True))
        else:
            with open(self.path, "a", encoding="utf-8", newline="") as fh:
                fh.write(self._render(rows, header=False))

    def _render(self, rows: list[dict[str, Any]], header: bool) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if header:
            writer.writerow(self.columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in self.columns])
        return buf.getvalue()


def read_scalars(path: Path) -> list[dict[str, Any]]:
    """Rows of scalars.csv with numbers parsed; empty cells are None."""
    try:
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (FileNotFoundError, IsADirectoryError, PermissionError, csv.Error):
        return []
    # a row longer than the header puts its extra cells under None: not a column
    return [{k: _parse(k, v) for k, v in row.items() if k is not None} for row in rows]


def _parse(key: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    if key == "split":
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if key == "epoch" and number.is_integer() else number
