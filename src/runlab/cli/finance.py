"""``runlab backtest`` (a run's model against a panel) and ``runlab report`` (backtests across
runs, one table)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import Format, fmt_value, write_csv, write_json, write_markdown, write_table
from runlab.errors import ConfigError
from runlab.tracking.roots import ROOT_HELP

TABLE = [
    ("final_value", "Final Value"),
    ("cumulative_return", "Cumulative Return"),
    ("sharpe", "Annualised Sharpe"),
    ("avg_turnover", "Avg Turnover"),
    ("max_drawdown", "Max Drawdown"),
]


def _cell(key: str, value: Any) -> str:
    if not isinstance(value, float):
        return ""
    if key == "final_value":
        return f"{value:.4f}"
    if key == "sharpe":
        return f"{value:.2f}"
    return f"{value * 100:+.2f}%" if key == "cumulative_return" else f"{value * 100:.2f}%"


def _check_flags(overrides: dict[str, Any]) -> None:
    """The flags obey the portfolio block's bounds (a negative cost, --quantile 0, NaN)."""
    from runlab.config.schema import PortfolioConfig
    from runlab.config.validate import check_block

    try:
        check_block(PortfolioConfig, overrides, "portfolio")
    except ConfigError as err:
        text = str(err)
        for key in overrides:
            text = text.replace(f"portfolio.{key}", "--" + key.replace("_", "-"))
        raise ConfigError(text) from err
    if overrides.get("method", "long_short") == "long_short" and overrides.get("quantile", 0) > 0.5:
        raise ConfigError("--quantile above 0.5 makes the long and short legs overlap")


def backtest(
    run: str = typer.Argument(..., help="Run id, prefix, name or path."),
    data: Path | None = typer.Option(
        None, "--data", help="A CSV/Parquet panel (default: the run's own data.source)."
    ),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    root: Path | None = typer.Option(None, "--root", "-r", help="Runs root."),
    transaction_cost_bps: float | None = typer.Option(None, "--transaction-cost-bps"),
    leverage_limit: float | None = typer.Option(None, "--leverage-limit"),
    borrowing_cost: float | None = typer.Option(
        None, "--borrowing-cost", help="Annual rate, e.g. 0.0675."
    ),
    method: str | None = typer.Option(None, "--method", help="long_short or long_only."),
    quantile: float | None = typer.Option(None, "--quantile"),
    checkpoint: str | None = typer.Option(
        None,
        "--checkpoint",
        "-c",
        help="best (default), last, warm_start, epoch_0005 or 5: any saved snapshot.",
    ),
    target: str | None = typer.Option(
        None, "--target", help="A run with several targets: which one (default: the first)."
    ),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Backtest a run's best model (or --checkpoint) on a panel split; writes
    artifacts/backtest/<split>/ (<split>@<checkpoint>/ for another snapshot)."""
    from runlab.cli.runs import _root_arg
    from runlab.tracking.resolve import resolve_run
    from runlab.train.evaluate_run import backtest_run, pick_checkpoint

    record = resolve_run(run, _root_arg(root))
    overrides = {
        k: v
        for k, v in {
            "transaction_cost_bps": transaction_cost_bps,
            "leverage_limit": leverage_limit,
            "borrowing_cost": borrowing_cost,
            "method": method,
            "quantile": quantile,
        }.items()
        if v is not None
    }
    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split {split!r}: use train, val or test")
    _check_flags(overrides)
    if data is not None and not data.is_file():
        raise ConfigError(f"--data {str(data)!r} is not a file: give a CSV or Parquet panel")
    which, note = pick_checkpoint(record, checkpoint)
    if note:
        sys.stderr.write(f"note: {note}\n")
    if record.config.get("loop") == "ppo":  # a policy allocates: runlab.rl.ppo
        from runlab.rl.ppo import backtest_ppo_run

        result, out = backtest_ppo_run(record, data, split, overrides, which)
    else:
        result, out = backtest_run(record, data, split, overrides, which, target)
    metrics = result.metrics()
    if fmt is Format.json:
        write_json(
            {"run_id": record.id, "split": split, "checkpoint": which, "dir": str(out), **metrics}
        )
        return
    header = ["Run", *(label for _, label in TABLE)]
    row = [record.name or record.id, *(_cell(k, metrics[k]) for k, _ in TABLE)]
    if fmt is Format.md:
        write_markdown(header, [row])
    elif fmt is Format.csv:
        write_csv(["run", *(k for k, _ in TABLE)], [[record.id, *(metrics[k] for k, _ in TABLE)]])
    else:
        write_table(header, [row])
        sys.stdout.write(f"{int(metrics['days'])} periods; files in {out}\n")


REPORT_COLUMNS = [
    "id",
    "name",
    "split",
    "checkpoint",
    "days",
    "avg_daily_return",
    "annual_return",
    "cumulative_return",
    "final_value",
    "sharpe",
    "max_drawdown",
    "avg_turnover",
    "cost_bps",
    "leverage_limit",
    "borrowing_cost",
]
# a backtest's settings (metrics.json's "settings"), as report columns
SETTING_COLUMNS = {
    "checkpoint": "checkpoint",
    "cost_bps": "transaction_cost_bps",
    "leverage_limit": "leverage_limit",
    "borrowing_cost": "borrowing_cost",
}


def report(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    where: str | None = typer.Option(None, "--where", "-w", help="Filter runs (see runlab ls)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f"),
) -> None:
    """Backtest metrics of every run (artifacts/backtest/<split>/metrics.json), one table with
    daily and annualised returns."""
    from runlab.cli.runs import _root_arg
    from runlab.tracking.expr import parse
    from runlab.tracking.index import RunIndex

    base = _root_arg(root)
    rows, _ = RunIndex(base).query(parse(where) if where else None, sort="created")
    table = []
    for r in rows:
        for path in sorted((base / r["path"] / "artifacts" / "backtest").glob("*/metrics.json")):
            try:
                m = json.loads(path.read_text())
            except (OSError, ValueError):  # damaged: listed as such, the rest still reported
                m = {"problem": f"unreadable {path.name}"}
            if not isinstance(m, dict):
                m = {"problem": f"{path.name} is not an object"}
            settings: dict[str, Any] = m["settings"] if isinstance(m.get("settings"), dict) else {}
            split, _, which = path.parent.name.partition("@")
            shown = {col: settings.get(key) for col, key in SETTING_COLUMNS.items()}
            shown["checkpoint"] = which or settings.get("checkpoint") or "best"
            table.append({"id": r["id"], "name": r["name"], "split": split, **m, **shown})
    if fmt is Format.json:
        write_json(table)
        return
    cells = [[t.get(c) for c in REPORT_COLUMNS] for t in table]
    if fmt is Format.csv:
        write_csv(REPORT_COLUMNS, cells)
    elif fmt is Format.md:
        write_markdown(REPORT_COLUMNS, [[fmt_value(v) for v in row] for row in cells])
    elif not table:
        sys.stdout.write(f"no backtests under {base}; run `runlab backtest RUN` first\n")
    else:
        write_table(REPORT_COLUMNS, [[fmt_value(v) for v in row] for row in cells])


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
    app.command("report")(report)
