"""Index rows read from run directories: one run (a run copied in, a live run re-read) or a
whole root (``runlab index``), the latter in worker processes when there are many.

A row's ``config`` and ``metrics`` are the index's JSON text. The config comes from its JSON
twin (:mod:`runlab.tracking.config_file`, checked by its hashes) when that is current. The
metrics.json text is taken as written when it has no NaN or Infinity token and SQLite's own
JSON parser reads it as an object; otherwise it is parsed and written again (a hand-edited
one that is not JSON counts as {}), so one odd file never breaks a query over the whole
root."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

from runlab.errors import CorruptRunError
from runlab.tracking import config_file, index_sql

ROWS_IN_WORKERS = 4000  # a root with fewer runs is read in this process
_CHUNK = 1000
_local = threading.local()


def is_run_dir(path: Path) -> bool:
    return (path / "run.json").is_file()


class _NotARun(CorruptRunError):
    """A folder with no run.json: a run's to read one, not one of a root's runs to list."""


def read_run_files(run_dir: Path) -> dict[str, Any]:
    """The index row of one run directory, read from its files."""
    return _read_row(str(run_dir), run_dir.name)


def _read_row(where: str, name: str) -> dict[str, Any]:
    try:
        info = json.loads(_read(f"{where}/run.json"))
    except (FileNotFoundError, NotADirectoryError) as err:
        raise _NotARun(f"{where} has no run.json; is it a run directory?") from err
    except (OSError, ValueError) as err:
        raise CorruptRunError(f"{where}/run.json is unreadable: {err}") from err
    if not isinstance(info, dict) or "id" not in info:
        raise CorruptRunError(f"{where}/run.json is not a runlab run.json (no 'id')")
    try:
        metrics = _read(f"{where}/metrics.json").decode("utf-8").strip()
    except (OSError, ValueError):
        metrics = "{}"
    as_written = metrics.startswith("{") and "NaN" not in metrics and "Infinity" not in metrics
    if not as_written or not _json_object(metrics):
        metrics = metrics_json(metrics)
    config, _ = config_file.index_json(where)
    return row(name, info, config, metrics, where)


def row(name: str, info: dict[str, Any], config: str, metrics: str, where: str) -> dict[str, Any]:
    """A row; ``config`` and ``metrics`` already the index's JSON text; the run's edited tags
    and its notes read from the run directory ``where``."""
    tags, notes = _annotations(where)
    return {
        "id": info["id"],
        "name": info.get("name"),
        "status": info.get("status"),
        "created": info.get("created"),
        "started": info.get("started"),
        "ended": info.get("ended"),
        "duration": info.get("duration_seconds"),
        "host": info.get("host"),
        "pid": info.get("pid"),
        "parent": info.get("parent"),
        "trial": info.get("trial"),
        "tags": index_sql.to_json(info.get("tags") or {} if tags is None else tags),
        "metrics": metrics,
        "config": config,
        "path": name,
        "notes": notes,
    }


def _annotations(where: str) -> tuple[Any, str | None]:
    """tags.json's tags (None: not edited) and notes.md's text (None: none), each as
    :mod:`runlab.tracking.annotate` writes them; a damaged tags.json counts as not edited."""
    tags = None
    try:
        data = json.loads(_read(f"{where}/tags.json"))
        if isinstance(data, dict) and isinstance(data.get("tags"), dict):
            tags = data["tags"]
    except (OSError, ValueError):
        pass
    try:
        notes: str | None = _read(f"{where}/notes.md").decode("utf-8", errors="replace")[:10_000]
    except OSError:
        notes = None
    return tags, notes


def metrics_json(text: str) -> str:
    """metrics.json's text as the index stores it (an object, NaN and all; else {})."""
    try:
        metrics = json.loads(text)
    except ValueError:
        metrics = {}
    return index_sql.to_json(metrics if isinstance(metrics, dict) else {})


def _json_object(text: str) -> bool:
    """SQLite reads ``text`` as a JSON object (its own parser, in C): a hand-edited
    metrics.json with a trailing comma would otherwise break every query of the root."""
    con = getattr(_local, "con", None)
    if con is None:
        con = _local.con = sqlite3.connect(":memory:")
    try:
        return bool(con.execute("SELECT json_type(?) = 'object'", (text,)).fetchone()[0])
    except sqlite3.Error:  # malformed JSON
        return False


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _read_or_empty(path: str) -> bytes:
    try:
        return _read(path)
    except OSError:
        return b""


def read_root(root: Path, names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of the run directories among ``names`` (entries of ``root``; those without a
    run.json are not runs and are passed over), and a warning per damaged one. Many are read
    by worker processes, one per core; if those cannot start, here."""
    if len(names) >= ROWS_IN_WORKERS and (os.cpu_count() or 1) > 1:
        try:
            return _in_workers(root, names)
        except (OSError, RuntimeError, ImportError):
            pass  # no processes here (a sandbox, a broken pool): read them in this one
    return read_names(str(root), names)


def read_names(root: str, names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    rows, warnings = [], []
    for name in names:
        try:
            rows.append(_read_row(f"{root}/{name}", name))
        except _NotARun:
            continue
        except CorruptRunError as err:
            warnings.append(f"skipped {name}: {err}")
    return rows, warnings


def _in_workers(root: Path, names: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """``read_names`` in one child process per core (``python -m`` this module: no
    multiprocessing, whose spawn would import the caller's ``__main__`` again), each given
    its share of the names on stdin and answering with a pickle on stdout."""
    import pickle
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    workers = min(os.cpu_count() or 1, 8)
    shares = [names[i::workers] for i in range(workers)]
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # where runlab is imported from
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "runlab.tracking.index_rows", str(root)]

    def one(share: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
        child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        out, _ = child.communicate(b"\0".join(os.fsencode(n) for n in share))
        if child.returncode != 0:
            raise RuntimeError(f"index reader exited with {child.returncode}")
        answer: tuple[list[dict[str, Any]], list[str]] = pickle.loads(out)
        return answer

    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    with ThreadPoolExecutor(workers) as pool:
        for part, problems in pool.map(one, shares):
            rows += part
            warnings += problems
    return rows, warnings


def _worker() -> None:
    import pickle
    import sys

    names = [os.fsdecode(n) for n in sys.stdin.buffer.read().split(b"\0") if n]
    sys.stdout.buffer.write(pickle.dumps(read_names(sys.argv[1], names), protocol=5))


if __name__ == "__main__":
    _worker()
