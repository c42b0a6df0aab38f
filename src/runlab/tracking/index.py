"""The SQLite index of a runs root (``<root>/index.db``): a cache of the run directories.

The directories stay the truth: the index is updated by runs as they start, change status and
finish, rebuilt by ``runlab index``, and on every query reconciled with the directory listing
(runs copied in are added, deleted runs dropped) and with the files of runs it believes live.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from runlab import _io
from runlab.errors import ConfigError, CorruptRunError
from runlab.tracking import index_rows, index_sql
from runlab.tracking.expr import Expression, get_path, refuse_secret
from runlab.tracking.index_rows import is_run_dir, read_run_files
from runlab.tracking.liveness import derive_state
from runlab.tracking.state import LIVE_STATES, RunState

INDEX_FILE = "index.db"
# 2: JSON columns SQLite can read (non-finite floats); path, status indexes. 3: the listing
SCHEMA_VERSION = 4
_COLUMNS = index_sql.COLUMNS
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, status TEXT, created TEXT, started TEXT, ended TEXT,
    duration REAL, host TEXT, pid INTEGER, parent TEXT, trial INTEGER,
    tags TEXT, metrics TEXT, config TEXT, path TEXT, updated REAL, notes TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name);
CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent);
CREATE INDEX IF NOT EXISTS runs_path ON runs(path);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS root_listing (
    id INTEGER PRIMARY KEY CHECK (id = 0), digest TEXT NOT NULL, pending TEXT NOT NULL
);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class IndexedRun(dict[str, Any]):
    """One row of the index: plain columns, with ``tags``/``metrics``/``config`` decoded from
    JSON only when asked for (so filtering 10,000 runs on status parses nothing)."""

    _JSON = ("tags", "metrics", "config")
    heartbeat: dict[str, Any] | None = None  # read for live runs when their state is derived

    def __getitem__(self, key: str) -> Any:
        value = dict.__getitem__(self, key)
        if key in self._JSON and isinstance(value, str):
            value = index_sql.from_json(value)
            dict.__setitem__(self, key, value)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - self.get is this method

    def lookup(self, path: tuple[str, ...]) -> Any:
        """Resolve an expression name: ``status``, ``metrics.val_loss``, ``config.optim.lr``."""
        head = path[0]
        if head in self._JSON:
            return get_path(self[head], path[1:])
        return self[head] if head in self and len(path) == 1 else None


class RunIndex:
    """``<root>/index.db``: WAL mode and a busy timeout, so many writers can share it."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.path = self.root / INDEX_FILE
        self.notes: list[str] = []  # what happened to the index itself, for the warnings
        self.in_memory = False  # index.db could not be used: a table in memory stood in

    def _connect(self) -> sqlite3.Connection:
        """The index. It is a cache of the run directories: a damaged one is set aside and
        rebuilt; one that cannot be opened or written (a read-only root) is replaced by an
        in-memory table filled from the directories, so reading never depends on it."""
        try:
            return self._open(str(self.path))
        except sqlite3.DatabaseError as err:
            text = str(err).lower()
            if "not a database" in text or "malformed" in text:
                self._set_aside(err)
                with contextlib.suppress(sqlite3.DatabaseError):
                    return self._open(str(self.path))
            elif not any(s in text for s in ("readonly", "unable to open", "disk i/o")):
                raise
            self.notes.append(
                f"index {self.path} cannot be used ({err}); reading the run directories"
            )
            self.in_memory = True
            return self._open(":memory:")

    def _set_aside(self, err: sqlite3.DatabaseError) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, side.with_name(side.name + ".damaged"))
        self.notes.append(
            f"index {self.path} was damaged ({err}); set aside as {INDEX_FILE}.damaged and "
            "rebuilt from the run directories"
        )

    def _open(self, where: str) -> sqlite3.Connection:
        con = sqlite3.connect(where, timeout=60, isolation_level=None)
        con.execute("PRAGMA busy_timeout = 60000")
        for attempt in range(50):  # switching to WAL is not covered by the busy timeout
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = NORMAL")
                version = con.execute("PRAGMA user_version").fetchone()[0]
                if version != SCHEMA_VERSION:
                    if version == 1:
                        _rewrite_json(con)
                    _add_notes(con)
                    con.executescript(_SCHEMA)
                index_sql.register(con)
                return con
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise sqlite3.OperationalError(f"index {self.path} stayed locked")

    # ------------------------------------------------------------------ writes
    def upsert_run_dir(
        self, run_dir: Path, info: dict[str, Any] | None = None, config: Any = None
    ) -> None:
        """Insert or refresh one run (from the live handle's state, or from its files)."""
        if info is None:
            fresh = read_run_files(run_dir)
        else:
            try:
                text = (run_dir / "metrics.json").read_text(encoding="utf-8")
            except (OSError, ValueError):
                text = "{}"
            fresh = index_rows.row(
                run_dir.name,
                info,
                index_sql.to_json(config or {}),
                index_rows.metrics_json(text),
                str(run_dir),
            )
        with self._connection() as con:
            self._insert(con, [fresh])

    def _insert(self, con: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
        placeholders = ", ".join("?" for _ in _COLUMNS)
        now = time.time()
        con.executemany(
            f"INSERT OR REPLACE INTO runs ({', '.join(_COLUMNS)}, updated) "
            f"VALUES ({placeholders}, ?)",
            [(*tuple(r[c] for c in _COLUMNS), now) for r in rows],
        )

    def _connection(self) -> _Closing:
        return _Closing(self._connect())

    def rebuild(self) -> tuple[int, list[str]]:
        """Re-read every run directory. Returns (runs indexed, warnings for skipped dirs)."""
        try:
            names = [e.name for e in os.scandir(self.root) if e.is_dir()]
        except FileNotFoundError:
            names = []
        rows, warnings = index_rows.read_root(self.root, names)
        rows.sort(key=lambda r: str(r["id"]))  # the primary key's order: appended, not sorted in
        with self._connection() as con:
            con.execute("BEGIN IMMEDIATE")
            # Indexes are built after the rows (one sort each), not kept up row by row.
            # Filters' key indexes are dropped: the next filter on a key makes its own again.
            indexes = con.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'runs' AND sql IS NOT NULL"
            ).fetchall()
            for name, _ in indexes:
                con.execute(f'DROP INDEX "{name}"')
            indexes = [(n, sql) for n, sql in indexes if not n.startswith("runs_key_")]
            con.execute("DELETE FROM runs")
            con.execute("DELETE FROM root_listing")
            self._insert(con, rows)
            for _, sql in indexes:
                con.execute(sql)
            con.execute("COMMIT")
        return len(rows), [*self.notes, *warnings]

    def _read_dirs(self, dirs: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
        rows, warnings = [], []
        for d in dirs:
            try:
                rows.append(read_run_files(d))
            except CorruptRunError as err:
                warnings.append(f"skipped {d.name}: {err}")
        return rows, warnings

    # ------------------------------------------------------------------ reads
    def _reconcile(self, con: sqlite3.Connection, warnings: list[str] | None) -> None:
        """Bring the table in line with the directories: add runs copied in, drop deleted
        ones, re-read the files of runs the table believes live. When the root lists the same
        names as at the last full reconciliation (a digest of the listing, and as many rows
        as run directories then), only the names that were not runs then (a folder being
        copied, a damaged run) are looked at again: 100,000 names are compared in
        milliseconds, not a tenth of a second."""
        if warnings is not None:
            warnings.extend(n for n in self.notes if n not in warnings)
        names = os.listdir(self.root)
        listing = _Listing(names)
        known = con.execute("SELECT digest, pending FROM root_listing").fetchone()
        count = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        if known and known[0] == listing.digest:
            pending = json.loads(known[1])
            if count == listing.entries - len(pending):
                self._recheck(con, pending, listing, warnings)
                return
        on_disk = {n for n in names if not n.startswith(INDEX_FILE)}
        indexed = {p for (p,) in con.execute("SELECT path FROM runs")}
        new = [self.root / n for n in on_disk - indexed if is_run_dir(self.root / n)]
        gone = [(p,) for p in indexed - on_disk]
        fresh, problems = self._read_dirs(new + self._live(con, on_disk))
        if warnings is not None:
            warnings.extend(problems)
        now_indexed = (indexed - {p for (p,) in gone}) | {r["path"] for r in fresh}
        con.execute("BEGIN IMMEDIATE")
        self._insert(con, fresh)
        con.executemany("DELETE FROM runs WHERE path = ?", gone)
        listing.store(con, sorted(on_disk - now_indexed))
        con.execute("COMMIT")

    def _live(self, con: sqlite3.Connection, on_disk: set[str] | None = None) -> list[Path]:
        """Runs the table believes live (found through the status index), to be re-read."""
        live_sql = f"SELECT path FROM runs WHERE status IN ({_LIVE_SQL})"
        return [self.root / p for (p,) in con.execute(live_sql) if on_disk is None or p in on_disk]

    def _recheck(
        self,
        con: sqlite3.Connection,
        pending: list[str],
        listing: _Listing,
        warnings: list[str] | None,
    ) -> None:
        """The listing is unchanged: re-read the live runs, and the names that were not runs
        at the last full reconciliation (one may have become one since)."""
        now_runs = [self.root / n for n in pending if is_run_dir(self.root / n)]
        live = [p for p in self._live(con) if p.is_dir()]
        fresh, problems = self._read_dirs(now_runs + live)
        if warnings is not None:
            warnings.extend(problems)
        if fresh:
            added = {r["path"] for r in fresh}
            con.execute("BEGIN IMMEDIATE")
            self._insert(con, fresh)
            listing.store(con, [n for n in pending if n not in added])
            con.execute("COMMIT")

    def _select(
        self, con: sqlite3.Connection, tail: str = "", args: tuple[Any, ...] = ()
    ) -> list[IndexedRun]:
        con.row_factory = sqlite3.Row
        rows = [
            IndexedRun(r)
            for r in con.execute(f"SELECT {', '.join(_COLUMNS)} FROM runs {tail}", args)
        ]
        for r in rows:
            if r["status"] in _LIVE:
                r["status"] = self._live_state(r).value
        return rows

    def live_and_recent(self, recent: int, warnings: list[str] | None = None) -> list[IndexedRun]:
        """Runs the index believes live (their state derived: running or crashed) and the
        ``recent`` newest others, newest first: what ``runlab status`` shows."""
        if not self.root.is_dir():
            return []
        live = ", ".join(f"'{s}'" for s in sorted(_LIVE))
        with self._connection() as con:
            self._reconcile(con, warnings)
            return self._select(
                con,
                f"WHERE status IN ({live}) OR id IN (SELECT id FROM runs WHERE status NOT IN "
                f"({live}) ORDER BY created DESC LIMIT ?) ORDER BY created DESC",
                (recent,),
            )

    def runs(self, warnings: list[str] | None = None) -> list[IndexedRun]:
        """Every run, reconciled with the directories; live runs' status derived (crashed)."""
        if not self.root.is_dir():
            return []
        with self._connection() as con:
            self._reconcile(con, warnings)
            return self._select(con)

    def _sorted_page(
        self, con: sqlite3.Connection, col: str, descending: bool, limit: int | None, offset: int
    ) -> tuple[list[IndexedRun], int]:
        """A page sorted on a plain column, runs without it last: the runs with a value in
        the column's index order, then the rest (one ORDER BY col IS NULL, col would sort the
        whole table: 0.26 s at 100,000 runs against milliseconds)."""
        total = con.execute("SELECT count(*) FROM runs").fetchone()[0]
        valued = con.execute(f"SELECT count({col}) FROM runs").fetchone()[0]
        rows: list[IndexedRun] = []
        if offset < valued:
            order = f"WHERE {col} IS NOT NULL ORDER BY {col} {'DESC' if descending else 'ASC'}"
            rows = self._select(con, f"{order} LIMIT ? OFFSET ?", (limit or -1, offset))
        if not limit or len(rows) < limit:
            left = -1 if not limit else limit - len(rows)
            tail = f"WHERE {col} IS NULL LIMIT ? OFFSET ?"
            rows += self._select(con, tail, (left, max(0, offset - valued)))
        return rows, total

    def _query_sql(
        self,
        con: sqlite3.Connection,
        where: Expression | None,
        path: tuple[str, ...],
        descending: bool,
        limit: int | None,
        offset: int,
    ) -> tuple[list[IndexedRun], int]:
        """:meth:`query` through index_sql: the named values only, the rows that can match
        only, the page alone read whole. Same rows, same order as the Python path."""
        names = index_sql.names_of(where, path)
        reads = [index_sql.value_sql(name) for name in names]
        narrowing = index_sql.Narrowing()
        narrowed = narrowing.of(where.ast) if where is not None else None
        index_sql.index_keys(con, narrowing.keys)
        # rowid order (the Python path's), sorted here: an ORDER BY would stop SQLite from
        # using the key indexes
        columns = ", ".join(r[0] for r in reads)
        sql = f"SELECT rowid, id, status, host, pid, created, path, {columns} FROM runs"
        args = [a for r in reads for a in r[1]]
        if narrowed is not None:
            sql += f" WHERE {narrowed[0]}"
            args += narrowed[1]
        present: list[tuple[Any, str]] = []
        absent: list[str] = []
        for row in sorted(con.execute(sql, args)):
            values = self._row_values(row[1:], names, reads)
            if where is not None and not where.matches(values.get):
                continue
            key = values.get(path)
            if key is None:
                absent.append(row[1])
            else:
                present.append((_sort_key(key), row[1]))
        present.sort(key=lambda item: item[0], reverse=descending)
        ids = [run_id for _, run_id in present] + absent
        page = ids[offset : offset + limit if limit else None]
        if not page:
            return [], len(ids)
        rows: dict[str, IndexedRun] = {}
        for start in range(0, len(page), 500):  # SQLite's cap on parameters
            chunk = page[start : start + 500]
            rows.update((r["id"], r) for r in self._select(con, _in_ids(chunk), tuple(chunk)))
        return [rows[i] for i in page if i in rows], len(ids)

    def _row_values(
        self, row: tuple[Any, ...], names: list[tuple[str, ...]], reads: list[Any]
    ) -> dict[tuple[str, ...], Any]:
        values = {}
        for name, (_, _, kind), raw in zip(names, reads, row[6:], strict=True):
            if kind == "status" and raw in _LIVE:
                raw = derive_state(raw, row[2], row[3], row[4], self._heartbeat(row[5])).value
            values[name] = index_sql.decode(kind, raw)
        return values

    def _heartbeat(self, path: str) -> dict[str, Any] | None:
        try:
            beat = _io.read_json(self.root / path / "heartbeat.json")
        except (OSError, ValueError):
            return None
        return beat if isinstance(beat, dict) else None

    def _live_state(self, row: IndexedRun) -> RunState:
        row.heartbeat = beat = self._heartbeat(row["path"])
        return derive_state(row["status"], row["host"], row["pid"], row["created"], beat)

    def query(
        self,
        where: Expression | None = None,
        sort: str | None = None,
        limit: int | None = None,
        warnings: list[str] | None = None,
        offset: int = 0,
    ) -> tuple[list[IndexedRun], int]:
        """Runs matching ``where``, sorted (``-key`` descending; default newest first; runs
        without the key last), from ``offset`` and cut to ``limit`` (a page). Returns (rows,
        matches before the page was cut)."""
        key = "-created" if sort is None else sort
        descending = key.startswith("-")
        path = tuple(key.lstrip("-+").split("."))
        if not all(path):
            raise ConfigError(
                f"sort key {sort!r} names nothing: give a key like created, -val_loss, "
                "metrics.val_loss or config.optim.lr"
            )
        refuse_secret(path)
        if not self.root.is_dir():
            return [], 0
        with self._connection() as con:
            self._reconcile(con, warnings)
            if where is None and len(path) == 1 and path[0] in _SQL_SORTABLE:
                # The common `runlab ls`: let SQLite sort and cut; decode only what is shown.
                return self._sorted_page(con, path[0], descending, limit, offset)
            if index_sql.available():
                return self._query_sql(con, where, path, descending, limit, offset)
            rows = self._select(con)
        if where is not None:
            rows = [r for r in rows if where.matches(r.lookup)]
        present = [r for r in rows if r.lookup(path) is not None]
        absent = [r for r in rows if r.lookup(path) is None]
        present.sort(key=lambda r: _sort_key(r.lookup(path)), reverse=descending)
        rows = present + absent
        return rows[offset : offset + limit if limit else None], len(rows)


def _add_notes(con: sqlite3.Connection) -> None:
    """An index of schema 1 to 3 has no notes column: add it (no run had notes then)."""
    names = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
    if names and "notes" not in names:
        con.execute("ALTER TABLE runs ADD COLUMN notes TEXT")


def _rewrite_json(con: sqlite3.Connection) -> None:
    """An index of schema 1 wrote NaN and Infinity as bare tokens: rewrite those rows."""
    rows = con.execute(
        "SELECT id, tags, metrics, config FROM runs WHERE metrics LIKE '%NaN%' OR metrics "
        "LIKE '%Infinity%' OR config LIKE '%NaN%' OR config LIKE '%Infinity%' OR tags LIKE "
        "'%NaN%' OR tags LIKE '%Infinity%'"
    ).fetchall()
    fixed = [
        (*(index_sql.to_json(json.loads(text)) for text in texts), run_id)
        for run_id, *texts in rows
    ]
    if fixed:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("UPDATE runs SET tags = ?, metrics = ?, config = ? WHERE id = ?", fixed)
        con.execute("COMMIT")


# Plain columns SQLite can order by; `status` is not one: a live run's shown status is derived.
_SQL_SORTABLE = set(index_sql.PLAIN) - {"status"}
_LIVE = {s.value for s in LIVE_STATES}
_LIVE_SQL = ", ".join(f"'{s}'" for s in sorted(_LIVE))


def _in_ids(ids: list[str]) -> str:
    return f"WHERE id IN ({', '.join('?' for _ in ids)})"


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (0, value) if value == value else (2, 0)  # NaN after everything
    return (1, str(value))


class _Listing:
    """What the root listed, as a digest of its names in listing order (unchanged directories
    list in the same order; another order only costs a full reconciliation) without the
    index's own files, which come and go with every connection."""

    _OWN = re.compile("\0" + re.escape(INDEX_FILE) + "[^\0]*")

    def __init__(self, names: list[str]) -> None:
        text, own = self._OWN.subn("", "\0" + "\0".join(names))
        self.entries = len(names) - own
        data = text.encode("utf-8", "surrogateescape")
        self.digest = hashlib.blake2b(data, digest_size=16).hexdigest()

    def store(self, con: sqlite3.Connection, pending: list[str]) -> None:
        con.execute(
            "INSERT OR REPLACE INTO root_listing (id, digest, pending) VALUES (0, ?, ?)",
            (self.digest, json.dumps(pending)),
        )


class _Closing:
    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        return self.con

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and self.con.in_transaction:
            self.con.execute("ROLLBACK")
        self.con.close()
