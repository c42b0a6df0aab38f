"""runlab backtest and runlab report on a trained ranking run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import runlab

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ranking_run(cli, root: Path) -> Path:
    code, out, err = cli(
        "run",
        REPO / "examples" / "ranking_panel.yaml",
        "trainer.epochs=2",
        "trainer.monitor=val.sharpe",
        "-o",
        root,
        "-f",
        "json",
    )
    assert code == 0, err
    return Path(json.loads(out)["run_dir"])


def test_portfolio_evaluator_drives_best_checkpoint(ranking_run: Path) -> None:
    m = runlab.RunRecord(ranking_run).metrics
    assert m["monitor"] == "val.sharpe" and m["best"] == max(
        r["sharpe"] for r in runlab.RunRecord(ranking_run).scalars() if r["split"] == "val"
    )
    assert {"sharpe", "max_drawdown", "turnover", "rank_ic"} <= set(m["test"])


def test_backtest_prints_the_table_and_writes_files(cli, root: Path, ranking_run: Path) -> None:
    code, out, err = cli(
        "backtest",
        "ranking_panel",
        "--root",
        root,
        "--transaction-cost-bps",
        "1",
        "--leverage-limit",
        "1.5",
        "--borrowing-cost",
        "0.0675",
    )
    assert code == 0, err
    header = out.splitlines()[0].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "Run",
        "Final Value",
        "Cumulative Return",
        "Annualised Sharpe",
        "Avg Turnover",
        "Max Drawdown",
    ]
    folder = ranking_run / "artifacts" / "backtest" / "test"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["days"] == 50 and metrics["settings"]["borrowing_cost"] == 0.0675
    assert metrics["total_costs"] > 0
    decisions = (folder / "decisions.csv").read_text().splitlines()
    assert decisions[0] == "date,asset,weight" and decisions[1].startswith("2020-07-19,A")
    assert (folder / "equity.png").exists() and (folder / "rolling_sharpe.png").exists()
    code, out, _ = cli("report", root, "-f", "json")
    (row,) = json.loads(out)
    assert row["split"] == "test" and row["final_value"] == metrics["final_value"]
    assert row["avg_daily_return"] == pytest.approx(metrics["avg_daily_return"])


def test_backtest_errors(cli, root: Path) -> None:
    code, _out, err = cli(
        "run", REPO / "examples" / "quickstart.yaml", "trainer.epochs=1", "-o", root, "-f", "json"
    )
    assert code == 0
    code, _, err = cli("backtest", "quickstart", "--root", root)
    assert code == 2 and "not a panel of dates x assets" in err and err.count("\n") == 1
    code, _, err = cli("backtest", "quickstart", "--root", root, "--split", "future")
    assert code == 2 and "--split 'future'" in err


def _backtest_on(cli, root: Path, data: Path, *args: str) -> dict:
    """`runlab backtest ranking_panel --data DATA` as JSON (it must succeed)."""
    code, out, err = cli("backtest", "ranking_panel", "--root", root, "--data", data, *args)
    assert code == 0, err
    return json.loads(out)


def test_backtest_on_another_panel(cli, root: Path, ranking_run: Path, tmp_path: Path) -> None:
    result = _backtest_on(cli, root, _other_panel(tmp_path, 16), "--split", "test", "-f", "json")
    assert result["days"] == 6  # dates after the default 80% cut of 30
    decisions = (Path(result["dir"]) / "decisions.csv").read_text().splitlines()
    assert decisions[1].startswith("2025-03-25,X")


def _other_panel(tmp_path: Path, features: int) -> Path:
    pd = pytest.importorskip("pandas")
    import numpy as np

    rng = np.random.default_rng(6)
    rows = [
        {"date": f"2025-03-{d + 1:02d}", "asset": f"X{a}", "target": rng.normal() * 0.01}
        | {f"f{i}": rng.normal() for i in range(features)}
        for d in range(30)
        for a in range(12)
    ]
    path = tmp_path / f"panel{features}.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_backtest_on_a_panel_missing_features_is_an_error(
    cli, root: Path, ranking_run: Path, tmp_path: Path
) -> None:
    """The model takes 16 features; a panel with 14 must not produce numbers."""
    path = _other_panel(tmp_path, 14)
    code, out, err = cli("backtest", "ranking_panel", "--root", root, "--data", path)
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("runlab: error: "), err
    assert "f14, f15" in err and "expected 16" in err and "found 14" in err, err
    assert not (ranking_run / "artifacts" / "backtest").exists()


def test_backtest_picks_the_trained_columns_by_name(
    cli, root: Path, ranking_run: Path, tmp_path: Path
) -> None:
    """Extra columns, or the same ones in another order, give the same scores."""
    pd = pytest.importorskip("pandas")
    path = _other_panel(tmp_path, 16)
    first = _backtest_on(cli, root, path, "-f", "json")
    frame = pd.read_csv(path)
    shuffled = frame[["date", "asset", "target", *reversed([f"f{i}" for i in range(16)])]]
    shuffled.assign(extra=1.0).to_csv(tmp_path / "shuffled.csv", index=False)
    again = _backtest_on(cli, root, tmp_path / "shuffled.csv", "-f", "json")
    assert again["final_value"] == pytest.approx(first["final_value"], rel=1e-12)


# columns of text; every other column of every CSV holds numbers (or nothing)
TEXT = {"date", "asset", "split", "id", "name", "status", "created", "parent", "path", "tags"}
TEXT |= {"metrics.monitor", "metrics.device"}


def test_every_csv_runlab_writes_reads_back_as_numbers(
    cli, root: Path, ranking_run: Path, tmp_path: Path
) -> None:
    """pandas gives every number column a numeric dtype (decisions.csv wrote np.float64(0.5))."""
    pd = pytest.importorskip("pandas")
    code, _, err = cli("backtest", "ranking_panel", "--root", root, "--transaction-cost-bps", "5")
    assert code == 0, err
    code, _, err = cli("export", root, "-o", tmp_path / "export.csv")
    assert code == 0, err
    code, out, err = cli("ls", root, "-f", "csv")
    assert code == 0, err
    (tmp_path / "ls.csv").write_text(out)
    files = [*root.rglob("*.csv"), tmp_path / "export.csv", tmp_path / "ls.csv"]
    names = {f.name for f in files}
    assert {"scalars.csv", "equity.csv", "decisions.csv", "test_ic_by_date.csv"} <= names
    for path in files:
        frame = pd.read_csv(path)
        assert len(frame), path
        for column in frame.columns:
            if column in TEXT or column.startswith("config."):
                continue
            values = frame[column].dropna()
            if values.empty:
                continue
            assert pd.api.types.is_numeric_dtype(values), (path.name, column, values.head(3))


def _ranking(cli, root: Path, *overrides: str) -> Path:
    """A ranking_panel run with ``overrides`` (it must finish): its directory."""
    code, out, err = cli(
        "run", REPO / "examples" / "ranking_panel.yaml", *overrides, "-o", root, "-f", "json"
    )
    assert code == 0, err
    return Path(json.loads(out)["run_dir"])


def test_backtest_any_snapshot_and_the_report_shows_its_settings(cli, root: Path) -> None:
    """Seed 003: backtest epoch_0001 as well as best.pt; the report says which snapshot and
    with which costs, leverage and borrowing; figures follow the run's figures preset."""
    run_dir = _ranking(
        cli, root, "trainer.epochs=2", "checkpoint.keep=true", "figures.backtest=false"
    )
    runs = {}
    for which in (None, "1", "last"):
        args = ["--checkpoint", which] if which else []
        code, out, err = cli("backtest", "ranking_panel", "--root", root, *args, "-f", "json")
        assert code == 0, err
        runs[which] = json.loads(out)
    assert runs[None]["checkpoint"] == "best" and runs["1"]["checkpoint"] == "epoch_0001"
    folder = run_dir / "artifacts" / "backtest" / "test@epoch_0001"
    assert json.loads((folder / "metrics.json").read_text())["settings"]["checkpoint"] == (
        "epoch_0001"
    )
    assert not list(folder.glob("*.png"))  # figures.backtest=false
    epoch1 = runlab.load_model(run_dir, which="epoch_0001").model.state_dict()
    best = runlab.load_model(run_dir).model.state_dict()
    differ = any(not (epoch1[k] == best[k]).all() for k in best)
    assert differ == (runs["1"]["final_value"] != runs[None]["final_value"])
    code, _, err = cli("backtest", "ranking_panel", "--root", root, "--checkpoint", "epoch_0009")
    assert code == 2 and err.count("\n") == 1 and "has no checkpoints/epoch_0009.pt" in err
    assert "epoch_0001" in err  # what it has
    cli("backtest", "ranking_panel", "--root", root, "--transaction-cost-bps", "3")
    code, out, _ = cli("report", root, "-f", "json")
    table = json.loads(out)
    assert {(r["split"], r["checkpoint"]) for r in table} == {
        ("test", "best"),
        ("test", "epoch_0001"),
        ("test", "last"),
    }
    by = {r["checkpoint"]: r for r in table}
    assert by["best"]["cost_bps"] == 3.0 and by["last"]["cost_bps"] != 3.0
    assert "borrowing_cost" in by["best"] and "leverage_limit" in by["best"]


def test_a_run_without_best_backtests_last_with_a_note(cli, root: Path) -> None:
    run_dir = _ranking(cli, root, "trainer.epochs=1")
    (run_dir / "checkpoints" / "model.pt").unlink()
    (run_dir / "checkpoints" / "best.pt").unlink()  # as when val.<monitor> was never finite
    code, out, err = cli("backtest", "ranking_panel", "--root", root, "-f", "json")
    assert code == 0, err
    assert json.loads(out)["checkpoint"] == "last"
    assert "no best.pt" in err and "backtesting last.pt" in err
