"""compare, diff and export: one row per run, only the config that differs, baseline deltas."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

import runlab

Cli = Callable[..., tuple[int, str, str]]


def make_run(root: Path, name: str, lr: float, sharpe: float, seed: int = 0) -> str:
    config = {"optim": {"lr": lr, "name": "adamw"}, "data": {"source": "x.npz"}, "seed": seed}
    with runlab.start_run(root=root, name=name, config=config) as run:
        run.log_epoch(1, {"train": {"loss": 1.0}, "val": {"loss": 0.9, "sharpe": sharpe / 2}})
        run.summary.update(val={"loss": 0.8, "sharpe": sharpe}, best=0.8, duration_seconds=3.0)
    return run.id


@pytest.fixture
def three(root: Path) -> list[str]:
    return [
        make_run(root, "base", 1e-3, 0.5),
        make_run(root, "a", 3e-3, 0.7),
        make_run(root, "b", 1e-2, 0.2, seed=1),
    ]


def test_compare_shows_differing_config_and_deltas(cli: Cli, root: Path, three: list[str]) -> None:
    base, a, b = three
    code, out, err = cli("compare", a, b, "--baseline", "base", "--root", root, "-f", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["baseline"] == base
    assert [r["id"] for r in result["runs"]] == [base, a, b]  # the baseline first
    assert result["config"] == ["optim.lr", "seed"]  # data and optim.name are the same
    assert "val.sharpe" in result["metrics"] and "duration_seconds" not in result["metrics"]
    rows = {r["id"]: r for r in result["runs"]}
    assert rows[a]["delta"]["val.sharpe"] == pytest.approx(0.2)
    assert rows[b]["delta"]["val.sharpe"] == pytest.approx(-0.3)
    assert rows[base]["delta"]["val.sharpe"] == 0 and rows[base]["baseline"] is True
    assert rows[b]["config"] == {"optim.lr": 1e-2, "seed": 1}


def test_compare_formats_where_and_all_config(cli: Cli, root: Path, three: list[str]) -> None:
    code, out, _ = cli(
        "compare", "--where", 'name in ["a", "b"]', "--root", root, "-m", "val.sharpe", "-f", "csv"
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ["a", "b"]
    assert list(rows[0]) == ["id", "name", "status", "val.sharpe", "optim.lr", "seed"]
    code, out, _ = cli("compare", "a", "b", "--root", root, "--all-config", "-f", "md")
    assert code == 0 and "| data.source |" in out.splitlines()[0]
    code, out, _ = cli("compare", "a", "b", "--root", root, "--baseline", "base")
    assert code == 0 and "(baseline)" in out and "Δval.sharpe" in out and "+0.2" in out
    code, _, err = cli("compare", "--root", root)
    assert code == 2 and "nothing to compare" in err


def test_diff_lists_config_and_metric_changes(cli: Cli, root: Path, three: list[str]) -> None:
    code, out, err = cli("diff", "base", "b", "--root", root, "-f", "json")
    assert code == 0, err
    result = json.loads(out)
    assert {c["key"]: (c["a"], c["b"]) for c in result["config"]} == {
        "optim.lr": (1e-3, 1e-2),
        "seed": (0, 1),
    }
    metrics = {m["key"]: m for m in result["metrics"]}
    assert metrics["val.sharpe"]["delta"] == pytest.approx(-0.3)
    assert metrics["val.loss"]["delta"] == 0
    code, out, _ = cli("diff", "base", "a", "--root", root)
    assert code == 0 and "optim.lr" in out and "val.sharpe" in out and "+0.2" in out


def test_export_csv_and_parquet(cli: Cli, root: Path, tmp_path: Path, three: list[str]) -> None:
    code, out, err = cli("export", root, "--where", 'name != "b"')
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert sorted(r["name"] for r in rows) == ["a", "base"]
    assert {"config.optim.lr", "metrics.val.sharpe", "status"} <= set(rows[0])
    target = tmp_path / "out" / "runs.parquet"
    code, _, err = cli("export", root, "-f", "parquet", "-o", target)
    assert code == 0, err
    import pandas as pd

    frame = pd.read_parquet(target)
    assert len(frame) == 3 and frame["metrics.val.sharpe"].max() == pytest.approx(0.7)
    code, _, err = cli("export", root, "-f", "parquet")
    assert code == 2 and "--output" in err
    code, _, err = cli("export", root, "-f", "xlsx")
    assert code == 2 and "csv or parquet" in err
