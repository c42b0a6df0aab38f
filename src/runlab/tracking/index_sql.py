"""``--where`` and ``--sort`` on the index without decoding every run in Python.

SQLite's JSON functions pull out only the values an expression names (``metrics -> '$.a'``,
as JSON text, so a number, a boolean and a string keep their kinds), a coarse SQL condition
drops the rows that cannot match (a superset: it never drops one that can), and the
expression itself, evaluated on those few values, decides exactly as it would on the whole
run; rows are sorted on the extracted key with the same order as before. Only the page of rows
shown is read whole.

The index stores its JSON columns as valid JSON for SQLite: a NaN or infinite float (which
Python writes as ``NaN``/``Infinity``, and SQLite refuses) is ``{"$float": "NaN"}`` there,
turned back into the float when read.
"""

from __future__ import annotations

import json
import math
import sqlite3
from typing import Any

from runlab import _io
from runlab.tracking.expr import Expression, Node, get_path

NONFINITE = "$float"
# the index's columns, in table order (runlab.tracking.index); the JSON ones hold objects
COLUMNS = ("id", "name", "status", "created", "started", "ended", "duration", "host", "pid",
           "parent", "trial", "tags", "metrics", "config", "path", "notes")  # fmt: skip
JSON_COLUMNS = ("tags", "metrics", "config")
# plain columns an expression can name, as IndexedRun.lookup resolves them
PLAIN = tuple(c for c in COLUMNS if c not in JSON_COLUMNS)
_SEP = "\x1f"


# ------------------------------------------------------------------ storage
def to_json(obj: Any) -> str:
    """JSON text SQLite reads: non-finite floats as ``{"$float": "NaN"}``."""
    text = _io.dumps(obj)
    if "NaN" in text or "Infinity" in text:  # maybe a bare token (or only a string holding it)
        text = _io.dumps(_finite(obj))
    return text


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return {NONFINITE: "NaN" if obj != obj else ("Infinity" if obj > 0 else "-Infinity")}
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and isinstance(obj.get(NONFINITE), str):
        return float(obj[NONFINITE])
    return obj


def from_json(text: str) -> Any:
    """The value :func:`to_json` wrote (NaN, inf and all); plain JSON (an older index) too."""
    if '"$float"' in text:
        return json.loads(text, object_hook=_hook)
    return json.loads(text)


def _get(text: str | None, joined: str) -> str | None:
    """SQL function runlab_get(column, path): get_path's answer, as JSON text (the dotted-key
    lookups a JSON path cannot make)."""
    if text is None:
        return None
    value = get_path(from_json(text), joined.split(_SEP))
    return None if value is None else to_json(value)


def register(con: sqlite3.Connection) -> None:
    con.create_function("runlab_get", 2, _get, deterministic=True)


def available() -> bool:
    return sqlite3.sqlite_version_info >= (3, 38, 0)  # the -> operator


# ------------------------------------------------------------------ reading values
def value_sql(path: tuple[str, ...]) -> tuple[str, list[Any], str]:
    """(SQL, parameters, kind) reading one expression name per row. kind: ``json`` (JSON text
    to decode), ``plain`` (the column's value), ``status`` (derived for live runs), ``null``."""
    head, rest = path[0], path[1:]
    if head in JSON_COLUMNS:
        if not rest:
            return head, [], "json"
        joined = _SEP.join(rest)
        json_path = _json_path(rest)
        if json_path is None:
            return f"runlab_get({head}, ?)", [joined], "json"
        if len(rest) == 1:  # one key: no dotted-key alternative to look for
            return f"{head} -> ?", [json_path], "json"
        return f"COALESCE({head} -> ?, runlab_get({head}, ?))", [json_path, joined], "json"
    if head in PLAIN and not rest:
        return head, [], "status" if head == "status" else "plain"
    return "NULL", [], "null"


# ------------------------------------------------------------------ the coarse filter
_ORDER_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "="}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "=="}


class Narrowing:
    """A SQL condition true for every row an expression can match (built by
    :meth:`of`), with the values it reads: one ``json_extract`` expression per key, the same
    text each time, so that an index on that expression serves it (:func:`index_keys`)."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def of(self, node: Node) -> tuple[str, list[Any]] | None:
        """None: this node cannot be narrowed (any row may match)."""
        kind = node[0]
        if kind == "and":
            parts = [p for p in (self.of(item) for item in node[1]) if p is not None]
            if not parts:
                return None
            return " AND ".join(f"({q})" for q, _ in parts), [a for _, args in parts for a in args]
        if kind == "or":
            done = []
            for item in node[1]:
                part = self.of(item)
                if part is None:
                    return None
                done.append(part)
            return " OR ".join(f"({q})" for q, _ in done), [a for _, args in done for a in args]
        if kind == "cmp" and len(node[1]) == 1:
            return self._comparison(node[1][0], node[2][0], node[2][1])
        return None

    def _comparison(self, op: str, left: Node, right: Node) -> tuple[str, list[Any]] | None:
        left, right = _folded(left), _folded(right)
        if left[0] == "const" and right[0] == "name":
            op, left, right = _FLIP[op], right, left
        if op not in _ORDER_OPS or left[0] != "name" or right[0] != "const":
            return None
        path, const = left[1], right[1]
        number = isinstance(const, (int, float)) and not isinstance(const, bool)
        if number and not math.isfinite(const):
            return None
        if not (number or (isinstance(const, str) and op == "==")):
            return None
        head, rest = path[0], path[1:]
        if head in PLAIN and head != "status" and not rest:
            kinds = "('integer', 'real')" if number else "('text')"
            return f"typeof({head}) IN {kinds} AND {head} {_ORDER_OPS[op]} ?", [const]
        json_path = _json_path(rest) if head in JSON_COLUMNS and rest else None
        if json_path is None:
            return None
        key = f"json_extract({head}, '{json_path}')"
        self.keys.add(key)
        # A JSON true reads as 1 and a string compares with a number by kind in SQL: rows
        # the expression then rejects, never rows it would keep. A NaN or infinite float is
        # the object {"$float": ...}: kept for a number (inf > 0 is true).
        sql = f"{key} {_ORDER_OPS[op]} ?"
        if number:
            sql += f" OR ({key} >= '{{\"$float\"' AND {key} < '{{\"$float#')"
        if len(rest) > 1:  # absent as a path, maybe present under a key holding dots
            sql += f" OR {key} IS NULL"
        return sql, [const]


def _folded(node: Node) -> Node:
    """``-2.5`` is parsed as minus applied to 2.5: the constant -2.5."""
    if node[0] == "neg" and node[1][0] == "const":
        value = node[1][1]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return ("const", -value)
    return node


def _json_path(parts: tuple[str, ...]) -> str | None:
    """SQLite's JSON path to ``parts`` (``$."a"."b"``), safe to write into SQL as a literal;
    None for a key holding a quote or a backslash (read through runlab_get instead)."""
    if any(c in part for part in parts for c in "\"'\\"):
        return None
    return "$" + "".join(f'."{p}"' for p in parts)


MAX_KEY_INDEXES = 32


def index_keys(con: sqlite3.Connection, keys: set[str]) -> None:
    """An index on each ``json_extract`` key a filter uses (the keys in use, up to
    MAX_KEY_INDEXES): the first filter on a key reads every run once, later ones only the
    runs in range. A read-only index (in memory) gets them too."""
    import hashlib

    have = {
        name
        for (name,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'runs_key_%'"
        )
    }
    for key in sorted(keys):
        name = "runs_key_" + hashlib.sha1(key.encode()).hexdigest()[:16]
        if name in have or len(have) >= MAX_KEY_INDEXES:
            continue
        try:
            con.execute(f"CREATE INDEX IF NOT EXISTS {name} ON runs({key})")
        except sqlite3.OperationalError:  # locked by a writer, read-only: filter without it
            return
        have.add(name)


def decode(kind: str, value: Any) -> Any:
    if kind == "json":
        return None if value is None else from_json(value)
    return value


def names_of(where: Expression | None, sort_path: tuple[str, ...]) -> list[tuple[str, ...]]:
    names = set(where.names) if where is not None else set()
    names.add(sort_path)
    return sorted(names)
