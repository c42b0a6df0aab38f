"""What the dashboard shows, read from the runs root: plain dicts, ready to be JSON.

Everything here reads files (and the SQLite index); nothing writes, unpickles or
``torch.load``s. The web app (``runlab.web.app``) only routes requests to these functions.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeGuard

from runlab import _io
from runlab.errors import RunNotFoundError
from runlab.report.compare import all_same, compare, order_metrics, summary_numbers
from runlab.tracking.expr import parse
from runlab.tracking.groups import StudyRecord, SweepRecord
from runlab.tracking.index import IndexedRun, RunIndex
from runlab.tracking.record import RunRecord, flatten

KEY_COLUMNS = 6  # metric and param columns on the runs page
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EPOCH_AXES = ("epoch", "split")
FIGURES = (".png", ".svg", ".jpg", ".jpeg", ".gif", ".webp")


# ---------------------------------------------------------------------------------- runs page
def runs_page(
    root: Path, where: str | None, sort: str | None, offset: int, limit: int
) -> dict[str, Any]:
    """One page of the runs table: rows, the total that matched, and the key metric and param
    columns (the metrics most runs of the page have; the params that differ between them)."""
    expr = parse(where) if where and where.strip() else None
    warnings: list[str] = []
    rows, total = RunIndex(root).query(expr, sort, limit, warnings, offset=offset)
    metrics = [summary_numbers(r["metrics"]) for r in rows]
    params = [{k.lstrip("."): v for k, v in flatten(r["config"], "").items()} for r in rows]
    metric_keys = _key_metrics(metrics)
    param_keys = _varying(params)
    return {
        "total": total,
        "offset": offset,
        "limit": limit,
        "metric_columns": metric_keys,
        "param_columns": param_keys,
        "rows": [
            _row(r, {k: m.get(k) for k in metric_keys}, {k: p.get(k) for k in param_keys})
            for r, m, p in zip(rows, metrics, params, strict=True)
        ],
        "warnings": warnings,
    }


def _row(run: IndexedRun, metrics: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    beat = run.heartbeat or {}
    return {
        "id": run["id"],
        "name": run["name"],
        "status": run["status"],
        "tags": run["tags"],
        "created": run["created"],
        "duration": run["duration"],
        "parent": run["parent"],
        "trial": run["trial"],
        "progress": beat.get("progress") if run["status"] == "running" else None,
        "epoch": beat.get("epoch") if run["status"] == "running" else None,
        "metrics": metrics,
        "params": params,
    }


def _key_metrics(metrics: list[dict[str, float]]) -> list[str]:
    """The metrics at least half the runs of the page have, in compare's order."""
    counts = Counter(k for m in metrics for k in m)
    found = {k for k, n in counts.items() if n * 2 >= len(metrics)}
    found -= {k.replace(".", "_", 1) for k in found if k.count(".") == 1}  # val_loss = val.loss
    return order_metrics(found)[:KEY_COLUMNS]


def _varying(params: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for p in params for k in p})
    return [k for k in keys if not all_same([p.get(k) for p in params])][:KEY_COLUMNS]


# ------------------------------------------------------------------------------------ one run
def run_dir(root: Path, run_id: Any) -> Path | None:
    """``<root>/<run_id>`` when it is a run directory inside the root: ids are directory names
    (no paths, no ``..``), and a symlink that leads out of the root is not followed."""
    if not isinstance(run_id, str) or not _SAFE_ID.match(run_id):
        return None
    path = root / run_id
    if not (path / "run.json").is_file() or not path.resolve().is_relative_to(root.resolve()):
        return None
    return path


def find_run(root: Path, run_id: str) -> RunRecord:
    """The run ``run_id`` of the root (see :func:`run_dir`), or RunNotFoundError."""
    path = run_dir(root, run_id)
    if path is None:
        raise RunNotFoundError(f"no run {run_id!r} under {root}")
    return RunRecord(path)


def run_detail(record: RunRecord) -> dict[str, Any]:
    events = record.events()
    metrics = record.metrics
    files = list_files(record)
    return {
        "id": record.id,
        "name": record.name,
        "status": record.state.value,
        "info": record.info,
        "tags": record.tags,
        "notes": record.notes,
        "heartbeat": record.heartbeat,
        "config": record.config,
        "overrides": record.overrides,
        "metrics": metrics,
        "summary": summary_numbers(metrics),
        "gates": metrics.get("gates") or [],
        "gate_events": [e for e in events if e.get("event") == "on_gate"],
        "warnings": [{"event": "damaged", "message": p} for p in record.problems]
        + [e for e in events if e.get("event") in ("on_warning", "on_exception")],
        "error": metrics.get("error"),
        "figures": [f for f in files if Path(f["path"]).suffix.lower() in FIGURES],
        "files": files,
        "backtests": sorted(p.parent.name for p in _backtest_files(record)),
        "has_steps": (record.path / "steps.jsonl").is_file(),
    }


def list_files(record: RunRecord, limit: int = 1000) -> list[dict[str, Any]]:
    """Files of the run directory (recursively, symlinks not followed), path and size."""
    out = []
    base = record.path
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or name == _io.RESERVE_FILE:
                continue
            out.append({"path": path.relative_to(base).as_posix(), "size": path.stat().st_size})
            if len(out) >= limit:
                return out
    return out


def safe_file(record: RunRecord, relative: str) -> Path:
    """``relative`` inside the run directory, or RunNotFoundError: no ``..``, no absolute
    path, no symlink leading out, only regular files."""
    missing = RunNotFoundError(f"no file {relative!r} in run {record.id}")
    if not relative or "\x00" in relative or Path(relative).is_absolute():
        raise missing
    base = record.path.resolve()
    candidate = (base / relative).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        raise missing
    return candidate


def stdout_tail(record: RunRecord, lines: int = 200) -> str:
    path = record.path / "stdout.log"
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 256 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


# ------------------------------------------------------------------------------------- series
def series(record: RunRecord, points: int = 1000) -> dict[str, Any]:
    """Charts of a run: ``epoch`` {metric: {split: [xs, ys]}} from scalars.csv and ``step``
    {name: [xs, ys]} from steps.jsonl, each downsampled to about ``points``."""
    from runlab.web.downsample import min_max_array, min_max_buckets

    epoch: dict[str, dict[str, list[list[Any]]]] = {}
    for row in record.scalars():
        split = str(row.get("split") or "")
        for key, value in row.items():
            if key in _EPOCH_AXES or not _finite(value):
                continue
            xs, ys = epoch.setdefault(key, {}).setdefault(split, [[], []])
            xs.append(row.get("epoch"))
            ys.append(value)
    steps: dict[str, list[list[Any]]] = {}
    for key, (xs, ys) in _step_columns(record.path).items():
        kept = min_max_array(xs, ys, points)
        steps[key] = [[_plain(p[0]) for p in kept], [p[1] for p in kept]]
    system: dict[str, list[list[Any]]] = {}
    for key, (xs, ys) in _steps(record.path / "system.jsonl", x="time").items():
        start = xs[0] if xs else 0.0
        kept = min_max_buckets([round(x - start, 3) for x in xs], ys, points)
        system[key] = [[p[0] for p in kept], [p[1] for p in kept]]
    return {"epoch": epoch, "step": steps, "system": system}


def _plain(step: float) -> float | int:
    """A step as logged: an integer step is shown as one."""
    return int(step) if step.is_integer() else step


def _step_columns(run_dir: Path) -> Any:
    """steps.jsonl as columns (runlab.tracking.series: its cache beside the file), read again
    only when the file changed."""
    try:
        stat = (run_dir / "steps.jsonl").stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return _read_step_columns(str(run_dir), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)  # a live run's page polls
def _read_step_columns(run_dir: str, mtime: int, size: int) -> Any:
    from runlab.tracking.series import step_columns

    return step_columns(run_dir)


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _steps(path: Path, x: str = "step") -> dict[str, tuple[list[float], list[float]]]:
    """Each numeric column of a JSONL file against column ``x`` (steps.jsonl by step,
    system.jsonl by time)."""
    try:
        stat = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return _read_steps(str(path), stat.st_mtime_ns, stat.st_size, x)


@lru_cache(maxsize=8)  # a live run's page polls: re-read only when the file changed
def _read_steps(
    path: str, mtime: int, size: int, x: str = "step"
) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for record in _io.read_jsonl(Path(path)):
        step = record.get(x)
        if not _finite(step):
            continue
        for key, value in record.items():
            if key in ("step", "time") or not _finite(value):
                continue
            xs, ys = out.setdefault(key, ([], []))
            xs.append(step)
            ys.append(value)
    return out


# ---------------------------------------------------------------------------------- backtests
def _backtest_files(record: RunRecord) -> list[Path]:
    return sorted((record.path / "artifacts" / "backtest").glob("*/equity.csv"))


def backtests(record: RunRecord, points: int = 1000) -> dict[str, Any]:
    """Equity curve and drawdown of each backtest split (artifacts/backtest/<split>/)."""
    from runlab.web.downsample import min_max_buckets

    out: dict[str, Any] = {}
    for path in _backtest_files(record):
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        index = list(range(len(rows)))
        dates = [next(iter(r.values()), "") for r in rows]
        curves = {}
        for column in ("equity", "drawdown"):
            values = [_float(r.get(column)) for r in rows]
            kept = min_max_buckets(index, values, points)
            curves[column] = [[int(p[0]) for p in kept], [p[1] for p in kept]]
        try:
            summary = _io.read_json(path.parent / "metrics.json")
        except (OSError, ValueError):
            summary = {}
        out[path.parent.name] = {"dates": dates, "metrics": summary, **curves}
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------ compare
def compare_runs(root: Path, ids: list[str], baseline: str | None) -> dict[str, Any]:
    records = [find_run(root, i) for i in ids]
    base = find_run(root, baseline) if baseline else None
    table = compare(records, base)
    return {"metrics": table.metrics, "params": table.config, "rows": table.rows}


def compare_groups(root: Path, ids: list[str], spec: str, curve: str | None) -> dict[str, Any]:
    """The runs in groups (``runlab compare --group-by``): each metric's mean ± std and count,
    and with ``curve`` (``val.loss``) its per-epoch mean and std per group, for the bands."""
    from runlab.report.groups import curves, group_runs, summary

    groups = group_runs([find_run(root, i) for i in ids], spec)
    found: dict[str, Any] = {"group_by": spec, **summary(groups)}
    if curve:
        found["curve"] = {"metric": curve, "groups": curves(groups, curve)}
    return found


# ------------------------------------------------------------------------- studies and sweeps
def studies(root: Path) -> list[dict[str, Any]]:
    """Optuna studies (``<root>/studies/<name>/trials.jsonl``) and grid sweeps
    (``<root>/sweeps/<id>/sweep.json``), newest first."""
    out = []
    for study in StudyRecord.scan(root):
        trials = study.trials()
        out.append(
            {
                "kind": "study",
                "name": study.name,
                "trials": len(trials),
                "complete": sum(t.get("state") == "COMPLETE" for t in trials),
                "modified": study.modified,
            }
        )
    for sweep in SweepRecord.scan(root):
        combos = sweep.combinations
        out.append(
            {
                "kind": "sweep",
                "name": sweep.folder_name,
                "trials": len(combos),
                "complete": sum(c.get("status") == "finished" for c in combos),
                "modified": sweep.modified,
            }
        )
    return sorted(out, key=lambda s: -s["modified"])


def study_detail(root: Path, kind: str, name: str) -> dict[str, Any]:
    """Trials of a study or sweep, each with params, objective value(s), state and run id."""
    if not _SAFE_ID.match(name) or kind not in ("study", "sweep"):
        raise RunNotFoundError(f"no {kind} {name!r} under {root}")
    if kind == "study":
        return _study(root, name)
    return _sweep(root, name)


def study_importance(root: Path, name: str) -> dict[str, Any]:
    """fANOVA importance of a study's parameters (``runlab importance``); ``importances``
    empty and ``reason`` said while it has fewer than 2 finished trials."""
    from runlab.errors import ConfigError
    from runlab.sweep.importance import importances

    if not _SAFE_ID.match(name):
        raise RunNotFoundError(f"no study {name!r} under {root}")
    try:
        return importances(root, name)
    except ConfigError as err:
        return {"study": name, "importances": {}, "reason": str(err)}


def _study(root: Path, name: str) -> dict[str, Any]:
    study = StudyRecord.open(root, name)
    keys = ("number", "state", "params", "values", "run_id", "duration")
    trials = [{**{k: t[k] for k in keys}, "reason": t.get("fail_reason")} for t in study.trials()]
    return _with_best(name, "study", trials, study.objectives, study.directions[0])


def _sweep(root: Path, name: str) -> dict[str, Any]:
    path = root / "sweeps" / name / "sweep.json"
    sweep = SweepRecord.read(path) if path.is_file() else None
    if sweep is None:
        raise RunNotFoundError(f"no readable sweep {name!r} under {root / 'sweeps'}")
    objective, varying = sweep.objective, sweep.varying
    trials = []
    for combo in sweep.combinations:
        run_id = combo.get("run_id")
        value, where, reason = None, run_dir(root, run_id), None  # ../outside: not followed
        if where is not None:
            rec = RunRecord(where)
            value = rec.lookup(("metrics", *objective.split(".")))
            reason = rec.failure_reason()
        trials.append(
            {
                "number": combo.get("index"),
                "state": str(combo.get("status", "")).upper(),
                "params": {
                    k: v
                    for k, v in map(_split_override, _strings(combo.get("overrides")))
                    if not varying or k in varying
                },
                "values": [value] if _finite(value) else None,
                "run_id": run_id,
                "reason": reason,
                "duration": None,
            }
        )
    return _with_best(name, "sweep", trials, [objective], sweep.direction)


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _split_override(text: str) -> tuple[str, Any]:
    key, _, value = text.partition("=")
    try:
        return key.lstrip("+~"), json.loads(value)
    except ValueError:
        return key.lstrip("+~"), value


def _with_best(
    name: str,
    kind: str,
    trials: list[dict[str, Any]],
    objectives: list[str],
    direction: str,
) -> dict[str, Any]:
    scored = [t for t in trials if t["values"] and _finite(t["values"][0])]
    best = None
    if scored:
        pick = min if direction == "minimize" else max
        best = pick(scored, key=lambda t: t["values"][0])
    params = sorted({k for t in trials for k in t["params"]})
    return {
        "kind": kind,
        "name": name,
        "objectives": objectives,
        "direction": direction,
        "params": params,
        "trials": trials,
        "best": best,
    }


def flows(root: Path) -> list[dict[str, Any]]:
    """Flows (``<root>/flows/<name>/state.json``), newest first, each with its steps as last
    recorded: status, key (prefix), seconds, the run or folder it made, the error. A damaged
    state file is one flow marked damaged; it stops nothing else."""
    out: list[dict[str, Any]] = []
    folder = root / "flows"
    for state_path in sorted(folder.glob("*/state.json")) if folder.is_dir() else []:
        name = state_path.parent.name
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            steps = state["steps"]
            if not isinstance(steps, dict):
                raise ValueError("steps is not a mapping")
        except (OSError, ValueError, KeyError, TypeError) as err:
            out.append({"name": name, "damaged": f"state.json unreadable: {err}", "steps": []})
            continue
        out.append(
            {
                "name": name,
                "modified": state_path.stat().st_mtime,
                "steps": [_flow_step(root, step, entry) for step, entry in steps.items()],
            }
        )
    return sorted(out, key=lambda f: -float(f.get("modified") or 0))


def _flow_step(root: Path, name: str, entry: Any) -> dict[str, Any]:
    entry = entry if isinstance(entry, dict) else {}
    result = entry.get("result") if isinstance(entry.get("result"), dict) else {}
    run_id = result.get("run")
    linked = run_id if run_dir(root, run_id) is not None else None  # inside the root only
    return {
        "step": name,
        "status": str(entry.get("status") or "unknown"),
        "key": str(entry.get("key") or "")[:12],
        "seconds": entry.get("seconds") if isinstance(entry.get("seconds"), (int, float)) else None,
        "run": linked,
        "error": str(entry.get("error") or "")[:500] or None,
    }
