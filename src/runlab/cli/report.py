"""``runlab compare``, ``runlab diff`` and ``runlab export``: runs side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from runlab.cli._format import (
    Format,
    fmt_value,
    write_csv,
    write_json,
    write_markdown,
    write_table,
)
from runlab.cli.runs import _root_arg
from runlab.errors import ConfigError, RunlabError
from runlab.tracking.roots import ROOT_HELP

TABLE_METRICS = 8


def _split(items: list[str] | None) -> list[str] | None:
    if not items:
        return None
    return [c.strip() for item in items for c in item.split(",") if c.strip()]


def compare(
    runs: list[str] | None = typer.Argument(
        None, help="Runs (id, prefix, name, path).", show_default=False
    ),
    baseline: str | None = typer.Option(
        None, "--baseline", "-b", help="Baseline run: deltas are against it."
    ),
    where: str | None = typer.Option(None, "--where", "-w", help="Add the runs matching this."),
    metrics: list[str] | None = typer.Option(
        None, "--metrics", "-m", help="Metric columns, comma-separated (val.sharpe,test.loss)."
    ),
    all_config: bool = typer.Option(
        False, "--all-config", help="Every config key, not only those that differ."
    ),
    group_by: str | None = typer.Option(
        None,
        "--group-by",
        "-g",
        help="Group runs: config.model.name, tags.pair (comma list), or 'all but seed'; "
        "mean ± std per group.",
    ),
    curve: str | None = typer.Option(
        None, "--curve", help="With --group-by and -f json: METRIC (val.loss) per epoch per group."
    ),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
) -> None:
    """Runs side by side: metrics, the config keys that differ, and deltas to a baseline; with
    --group-by, groups of runs (seeds, say) with each metric's mean ± std and count."""
    from runlab.report.compare import compare as build
    from runlab.tracking.record import load_runs
    from runlab.tracking.resolve import resolve_run

    base_root = _root_arg(root)
    records = [resolve_run(r, base_root) for r in runs or []]
    if where:
        seen = {r.id for r in records}
        records += [r for r in load_runs(base_root, where=where) if r.id not in seen]
    base = resolve_run(baseline, base_root) if baseline else None
    if not records and base is None:
        raise RunlabError("nothing to compare: give runs, or --where 'EXPR' to select them")
    chosen = _split(metrics)
    if group_by is not None:
        _print_groups(records + ([base] if base else []), group_by, chosen, curve, fmt)
        return
    if curve is not None:
        raise ConfigError("--curve draws a group's band: add --group-by")
    result = build(records, base, chosen, all_config)
    shown = result.metrics
    if fmt is Format.table and chosen is None and len(shown) > TABLE_METRICS:
        sys.stderr.write(
            f"runlab: note: {len(shown) - TABLE_METRICS} more metrics; --metrics picks them, "
            "--format json|csv shows all\n"
        )
        shown = shown[:TABLE_METRICS]
    if fmt is Format.json:
        write_json(
            {
                "baseline": base.id if base else None,
                "metrics": result.metrics,
                "config": result.config,
                "runs": result.rows,
            }
        )
        return
    cols = ["id", "name", "status", *shown, *result.config]
    deltas = [f"Δ{m}" for m in shown] if base else []
    table = [_compare_cells(row, shown, result.config, base is not None) for row in result.rows]
    if fmt is Format.csv:
        raw = [
            [row["id"], row["name"], row["status"]]
            + [row["metrics"][m] for m in shown]
            + [row["config"][k] for k in result.config]
            + ([row["delta"][m] for m in shown] if base else [])
            for row in result.rows
        ]
        write_csv([*cols, *(f"delta.{m}" for m in shown if base)], raw)
        return
    if fmt is Format.md:
        write_markdown([*cols, *deltas], table)
        return
    write_table([*cols, *deltas], table, status_col=2)


def _print_groups(
    records: list[Any], spec: str, chosen: list[str] | None, curve: str | None, fmt: Format
) -> None:
    """Each group: its key, how many runs, and each metric as mean ± std (n when some runs
    lack it); JSON has every statistic, and with --curve the per-epoch band."""
    from runlab.report.groups import curves, group_runs, summary

    groups = group_runs(records, spec)
    found = summary(groups, chosen)
    if fmt is Format.json:
        payload = {"group_by": spec, **found}
        if curve:
            payload["curve"] = {"metric": curve, "groups": curves(groups, curve)}
        write_json(payload)
        return
    if curve:
        raise ConfigError("--curve is for -f json (the dashboard's compare page draws it)")
    shown = found["metrics"] if chosen else found["metrics"][:TABLE_METRICS]
    cols = ["group", "runs", *shown]
    rows = [
        [g["label"], str(g["count"]), *(_mean_std(g["stats"][m], g["count"]) for m in shown)]
        for g in found["groups"]
    ]
    if fmt is Format.csv:
        stats = ("mean", "std", "n")
        write_csv(
            ["group", "runs", *(f"{m}.{s}" for m in shown for s in stats)],
            [[g["label"], g["count"], *(g["stats"][m][s] for m in shown for s in stats)]
             for g in found["groups"]],
        )  # fmt: skip
        return
    (write_markdown if fmt is Format.md else write_table)(cols, rows)


def _mean_std(item: dict[str, Any], count: int) -> str:
    if item["mean"] is None:
        return ""
    text = fmt_value(item["mean"])
    text += f" ± {fmt_value(item['std'])}" if item["std"] is not None else ""
    return text + (f" (n={item['n']})" if item["n"] != count else "")


def _compare_cells(
    row: dict[str, Any], metrics: list[str], config: list[str], with_delta: bool
) -> list[str]:
    ident = row["id"] + (" (baseline)" if row["baseline"] else "")
    cells = [ident, row["name"], row["status"]]
    cells += [fmt_value(row["metrics"][m]) for m in metrics]
    cells += [_config_cell(row["config"][k]) for k in config]
    if with_delta:
        cells += [_signed(row["delta"][m]) for m in metrics]
    return cells


def _config_cell(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return f"[{len(value)} blocks]"  # gates: `runlab diff` shows them key by key
    return fmt_value(value)


def _signed(value: float | None) -> str:
    return "" if value is None else f"{value:+.4g}"


def diff(
    run_a: str = typer.Argument(..., help="First run (id, prefix, name, path)."),
    run_b: str = typer.Argument(..., help="Second run."),
    root: Path | None = typer.Option(None, "--root", "-r", help=ROOT_HELP, show_default=False),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="table, json or md."),
) -> None:
    """What differs between two runs: config keys, then every metric with its delta (b - a)."""
    from runlab.report.compare import diff as build
    from runlab.tracking.resolve import resolve_run

    a, b = resolve_run(run_a, _root_arg(root)), resolve_run(run_b, _root_arg(root))
    result = build(a, b)
    if fmt is Format.json:
        write_json({"a": a.id, "b": b.id, **result})
        return
    write = write_markdown if fmt is Format.md else write_table
    for section in ("run", "config", "metrics"):
        items = result[section]
        if not items:
            if section == "config":
                sys.stdout.write("config: identical\n")
            continue
        sys.stdout.write(f"\n{section}\n" if section != "run" else "")
        cols = ["key", f"a ({a.id})", f"b ({b.id})"] + (["delta"] if section == "metrics" else [])
        cells = [
            [i["key"], fmt_value(i["a"]), fmt_value(i["b"])]
            + ([_signed(i["delta"])] if section == "metrics" else [])
            for i in items
        ]
        write(cols, cells)


def export(
    root: Path | None = typer.Argument(None, help=ROOT_HELP, show_default=False),
    fmt: str = typer.Option("csv", "--format", "-f", help="csv or parquet."),
    where: str | None = typer.Option(None, "--where", "-w", help="Filter, as for runlab ls."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="File to write (csv default: stdout; parquet: required)."
    ),
) -> None:
    """One table of all runs (flattened config and metrics) for notebooks."""
    from runlab.tracking.record import flatten_record, load_runs

    if fmt not in ("csv", "parquet"):
        raise RunlabError(f"--format must be csv or parquet, got {fmt!r}")
    if fmt == "parquet" and output is None:
        raise RunlabError("--format parquet writes a file: give --output FILE.parquet")
    if output is not None and output.is_dir():
        raise RunlabError(f"--output {str(output)!r} is a folder; give a file, e.g. runs.{fmt}")
    rows = [flatten_record(r) for r in load_runs(_root_arg(root), where=where)]
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if fmt == "csv":
        if output is None:
            write_csv(columns, [[row.get(c) for c in columns] for row in rows])
            return
        _write_csv_file(output, columns, rows)
    else:
        assert output is not None
        from runlab._imports import require

        pd = require("pandas", "parquet", "runlab export --format parquet")
        require("pyarrow", "parquet", "runlab export --format parquet")
        frame = pd.DataFrame(rows, columns=columns)
        for col in frame.columns:  # lists and mappings (gates, ...) as JSON text
            if frame[col].map(lambda v: isinstance(v, (list, dict))).any():
                frame[col] = frame[col].map(_json_cell)
        _atomic(output, lambda tmp: frame.to_parquet(tmp, index=False))
    sys.stderr.write(f"runlab: exported {len(rows)} runs, {len(columns)} columns to {output}\n")


def _json_cell(value: Any) -> Any:
    import json

    return json.dumps(value, default=str) if isinstance(value, (list, dict)) else value


def _write_csv_file(path: Path, columns: list[str], rows: list[dict[str, Any]]) -> None:
    import csv

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows([[_json_cell(row.get(c)) for c in columns] for row in rows])

    _atomic(path, write)


def _atomic(path: Path, write: Any) -> None:
    """Write through a temp file and rename: an interrupted export leaves no half file."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)
    app.command("diff")(diff)
    app.command("export")(export)
