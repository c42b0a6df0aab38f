"""``--where``/``--sort`` answered in SQLite (runlab.tracking.index_sql) against the reference:
the expression evaluated in Python on every run decoded whole, as before. Random runs (numbers,
NaN, infinities, booleans, strings, lists, missing keys, keys holding dots) and random
filters: the same runs, in the same order, page by page."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlab.tracking import index_sql
from runlab.tracking.expr import parse
from runlab.tracking.index import SCHEMA_VERSION, RunIndex, _sort_key

VALUES = st.one_of(
    st.integers(-3, 3),
    st.sampled_from([0.5, -0.25, 1e-7, 2.5, math.nan, math.inf, -math.inf]),
    st.booleans(),
    st.sampled_from(["a", "b", "NaN", ""]),
    st.none(),
    st.lists(st.integers(0, 2), max_size=2),
)
KEYS = ["loss", "acc", "val.loss"]  # "val.loss": a key holding a dot, or nested val -> loss


@st.composite
def metrics(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in KEYS:
        if draw(st.booleans()):
            value = draw(VALUES)
            if key == "val.loss" and draw(st.booleans()):
                out.setdefault("val", {})["loss"] = value  # nested
            elif key == "val.loss":
                out["val.loss"] = value  # one key with a dot (a metric per target)
            else:
                out[key] = value
    return out


NAMES = ["metrics.loss", "metrics.acc", "metrics.val.loss", "config.lr", "tags.g", "trial"]
OPS = ["<", "<=", ">", ">=", "==", "!="]


@st.composite
def expressions(draw: Any, depth: int = 0) -> str:
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        a, b = draw(expressions(depth + 1)), draw(expressions(depth + 1))
        joined = f"({a}) {draw(st.sampled_from(['and', 'or']))} ({b})"
        return f"not ({joined})" if draw(st.booleans()) else joined
    name = draw(st.sampled_from(NAMES))
    const = draw(st.sampled_from(["0", "1", "-1", "0.5", "2.5", "'a'", "true", "null", "[1, 2]"]))
    if draw(st.booleans()):
        return f"{const} {draw(st.sampled_from(OPS))} {name}"
    return f"{name} {draw(st.sampled_from([*OPS, 'in']))} {const}"


def fill(root: Path, rows: list[dict[str, Any]]) -> RunIndex:
    index = RunIndex(root)
    records = []
    for i, m in enumerate(rows):
        run_dir = root / f"r{i:03d}"
        run_dir.mkdir(parents=True)
        info = {"id": f"r{i:03d}", "status": "finished", "trial": i % 3 if i % 4 else None}
        info["tags"] = {"g": "a" if i % 2 else "b"}
        info["created"] = f"2026-01-01T00:00:{i:02d}+00:00"
        (run_dir / "run.json").write_text(json.dumps(info))
        (run_dir / "metrics.json").write_text(json.dumps(m))
        (run_dir / "config.yaml").write_text(f"lr: {[0.1, 0.01, 'x'][i % 3]}\n")
        records.append(run_dir)
    index.rebuild()
    return index


def reference(index: RunIndex, where: str | None, sort: str) -> list[str]:
    """The Python path: every run decoded, the expression evaluated, sorted as before."""
    original = index_sql.available
    index_sql.available = lambda: False  # type: ignore[assignment]
    try:
        rows, _ = index.query(parse(where) if where else None, sort)
    finally:
        index_sql.available = original  # type: ignore[assignment]
    return [r["id"] for r in rows]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(metrics(), min_size=1, max_size=12),
    where=st.one_of(st.none(), expressions()),
    sort=st.sampled_from(["-created", "metrics.loss", "-metrics.loss", "metrics.val.loss",
                          "-metrics.acc", "config.lr", "trial"]),
)  # fmt: skip
def test_sql_answers_as_the_python_evaluator(tmp_path_factory, rows, where, sort) -> None:
    root = tmp_path_factory.mktemp("runs")
    index = fill(root, rows)
    expected = reference(index, where, sort)
    got, total = index.query(parse(where) if where else None, sort)
    assert [r["id"] for r in got] == expected, (where, sort)
    assert total == len(expected)
    page, total = index.query(parse(where) if where else None, sort, limit=3, offset=2)
    assert [r["id"] for r in page] == expected[2:5] and total == len(expected)


def test_nan_and_infinity_are_stored_as_json_sqlite_reads(tmp_path: Path) -> None:
    index = fill(tmp_path, [{"loss": math.nan, "acc": math.inf, "val": {"loss": -math.inf}}])
    with sqlite3.connect(tmp_path / "index.db") as con:
        (text,) = con.execute("SELECT metrics FROM runs").fetchone()
        assert con.execute("SELECT json_valid(metrics) FROM runs").fetchone() == (1,)
    assert "NaN" in text and json.loads(text)["loss"] == {"$float": "NaN"}
    (row,), _ = index.query()
    assert math.isnan(row["metrics"]["loss"]) and row["metrics"]["acc"] == math.inf
    assert row["metrics"]["val"]["loss"] == -math.inf
    for text in ("metrics.acc > 1e300", "metrics.val.loss < -1e300", "-1 > metrics.val.loss"):
        hits, _ = index.query(parse(text))
        assert len(hits) == 1, text


def test_an_index_of_schema_1_is_rewritten_for_sqlite(tmp_path: Path) -> None:
    """An index written before (bare NaN tokens, which SQLite's JSON functions refuse) is
    rewritten when first opened: the filter answers, nothing is rebuilt by hand."""
    index = fill(tmp_path, [{"loss": 0.5}, {"loss": math.nan}])
    with sqlite3.connect(tmp_path / "index.db") as con:
        con.execute("UPDATE runs SET metrics = ? WHERE id = 'r001'", ('{"loss": NaN}',))
        con.execute("PRAGMA user_version = 1")
    rows, _ = RunIndex(tmp_path).query(parse("metrics.loss < 1"), "metrics.loss")
    assert [r["id"] for r in rows] == ["r000"]
    with sqlite3.connect(tmp_path / "index.db") as con:
        assert con.execute(
            "SELECT count(*) FROM runs WHERE NOT json_valid(metrics)"
        ).fetchone() == (0,)
        assert con.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    del index


def test_a_filtered_key_gets_an_index(tmp_path: Path) -> None:
    index = fill(tmp_path, [{"loss": i / 10} for i in range(10)])
    rows, _ = index.query(parse("metrics.loss < 0.25"), "metrics.loss")
    assert [r["id"] for r in rows] == ["r000", "r001", "r002"]
    with sqlite3.connect(tmp_path / "index.db") as con:
        names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='index'")]
        plan = con.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE json_extract(metrics, '$.\"loss\"') < 1"
        ).fetchall()
    assert any(n.startswith("runs_key_") for n in names)
    assert "USING INDEX runs_key_" in str(plan)


def test_sort_key_order_is_the_documented_one() -> None:
    values = [math.nan, "b", 2, True, "a", -1.5]
    assert sorted(values, key=_sort_key) == [-1.5, True, 2, "a", "b", values[0]]


@pytest.mark.parametrize("text", ['metrics.`we"ird` > 0', "metrics.`it's` == 'a'"])
def test_keys_sql_cannot_quote_still_filter(tmp_path: Path, text: str) -> None:
    index = fill(tmp_path, [{'we"ird': 1, "it's": "a"}, {}])
    rows, _ = index.query(parse(text))
    assert [r["id"] for r in rows] == ["r000"]
