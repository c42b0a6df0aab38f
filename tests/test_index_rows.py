"""Index rows without parsing YAML: config.yaml's JSON twin is used only when current and
whole; metrics.json is taken as written only when SQLite reads it as an object; a root of many
runs is read by worker processes into the same rows as here."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

import runlab
from runlab.tracking import config_file, index_rows, index_sql
from runlab.tracking.expr import parse
from runlab.tracking.index import RunIndex

CONFIG = {"optim": {"lr": 1e-3, "betas": [0.9, 0.99]}, "model": {"depth": 3, "name": "mlp"}}


def _run(root: Path, config: dict | None = None) -> runlab.Run:
    with runlab.start_run(config=config or CONFIG, root=root, capture_stdout=False) as run:
        run.log_epoch(0, {"val": {"loss": 0.5}})
    return run


def _no_yaml(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    parsed: list[str] = []
    real = config_file.load_yaml
    monkeypatch.setattr(config_file, "load_yaml", lambda text: parsed.append(text) or real(text))
    return parsed


def test_the_twin_is_written_with_the_config_and_read_instead_of_it(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run(root)
    assert (run.dir / config_file.TWIN).is_file()
    parsed = _no_yaml(monkeypatch)
    row = index_rows.read_run_files(run.dir)
    assert parsed == []
    assert index_sql.from_json(row["config"]) == yaml.safe_load(
        (run.dir / "config.yaml").read_text()
    )
    assert index_sql.from_json(row["config"]) == CONFIG


@pytest.mark.parametrize(
    "damage",
    [
        "config edited by hand",
        "twin body flipped",
        "twin cut short",
        "twin empty",
        "twin missing",
        "twin of another run",
    ],
)
def test_a_stale_or_damaged_twin_is_passed_over(
    root: Path, damage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, other = _run(root), _run(root, {"optim": {"lr": 0.5}})
    config, twin = run.dir / "config.yaml", run.dir / config_file.TWIN
    text = twin.read_text()
    if damage == "config edited by hand":
        config.write_text(config.read_text().replace("depth: 3", "depth: 4"))
    elif damage == "twin body flipped":
        twin.write_text(text.replace('"depth": 3', '"depth": 7'))
    elif damage == "twin cut short":
        twin.write_text(text[: len(text) // 2])
    elif damage == "twin empty":
        twin.write_text("")
    elif damage == "twin missing":
        twin.unlink()
    else:
        shutil.copy(other.dir / config_file.TWIN, twin)
    parsed = _no_yaml(monkeypatch)
    expected = yaml.safe_load(config.read_text())
    assert index_sql.from_json(index_rows.read_run_files(run.dir)["config"]) == expected
    assert len(parsed) == 1  # config.yaml, the truth, was read
    RunIndex(root).rebuild()
    rows, _ = RunIndex(root).query(parse(f"config.model.depth == {expected['model']['depth']}"))
    assert [r["id"] for r in rows] == [run.id]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"val_loss": 0.5}', {"val_loss": 0.5}),
        ('{"val_loss": NaN, "x": Infinity}', {"val_loss": float("nan"), "x": float("inf")}),
        ('{"val_loss": 0.5,}', {}),  # a trailing comma: not JSON
        ('{"val_loss": 0.5} trailing', {}),
        ("[1, 2]", {}),
        ("", {}),
        ('{"note": "NaN is a word"}', {"note": "NaN is a word"}),
    ],
)
def test_metrics_json_as_written_only_when_sqlite_reads_it(
    root: Path, text: str, expected: dict
) -> None:
    run = _run(root)
    (run.dir / "metrics.json").write_text(text)
    row = index_rows.read_run_files(run.dir)
    got = index_sql.from_json(row["metrics"])
    assert str(got) == str(expected)  # NaN == NaN as text
    with sqlite3.connect(":memory:") as con:
        assert con.execute("SELECT json_type(?)", (row["metrics"],)).fetchone() == ("object",)
    RunIndex(root).rebuild()
    RunIndex(root).query(parse("metrics.val_loss < 1"))  # the root stays queryable


def test_set_config_rewrites_the_twin(root: Path) -> None:
    with runlab.start_run(config={}, root=root, capture_stdout=False) as run:
        run.set_config({"late": {"value": 2}})
    assert index_sql.from_json(index_rows.read_run_files(run.dir)["config"]) == {
        "late": {"value": 2}
    }
    head = (run.dir / config_file.TWIN).read_text().split("\n")[0]
    assert head.split()[0] == config_file._sha((run.dir / "config.yaml").read_bytes())


def test_workers_read_the_same_rows(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [_run(root, {"i": i}) for i in range(6)]
    (root / "not-a-run").mkdir()
    (runs[0].dir / "run.json").write_text("{ half")
    names = sorted(p.name for p in root.iterdir() if p.is_dir())
    here = index_rows.read_names(str(root), names)
    monkeypatch.setattr(index_rows, "ROWS_IN_WORKERS", 1)
    monkeypatch.setattr(index_rows.os, "cpu_count", lambda: 2)
    there = index_rows.read_root(root, names)
    assert sorted(there[0], key=lambda r: r["id"]) == sorted(here[0], key=lambda r: r["id"])
    assert sorted(there[1]) == sorted(here[1]) and len(here[1]) == 1 and len(here[0]) == 5
    count, warnings = RunIndex(root).rebuild()
    assert count == 5 and len(warnings) == 1 and runs[0].id in warnings[0]


def test_rebuild_keeps_its_indexes_and_drops_filter_key_indexes(root: Path) -> None:
    for i in range(3):
        _run(root, {"i": i})
    RunIndex(root).query(parse("config.i == 1"))
    with sqlite3.connect(root / "index.db") as con:
        names = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert any(n.startswith("runs_key_") for n in names)
    RunIndex(root).rebuild()
    with sqlite3.connect(root / "index.db") as con:
        after = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert after == {n for n in names if not n.startswith("runs_key_")}
    rows, _ = RunIndex(root).query(parse("config.i == 1"))
    assert len(rows) == 1
