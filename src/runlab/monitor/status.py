"""What ``runlab status`` shows: one row per live or recent run, from the index and the
heartbeats only (no scalars or events are read, so 10,000 runs stay fast)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from runlab._io import read_json
from runlab.tracking.expr import Expression
from runlab.tracking.index import IndexedRun, RunIndex
from runlab.tracking.liveness import iso_to_epoch


def monitored(metrics: dict[str, Any], config: dict[str, Any]) -> tuple[str | None, Any, Any]:
    """(monitor name, latest value, best value) from a summary (metrics.json)."""
    monitor = metrics.get("monitor") or (config.get("trainer") or {}).get("monitor")
    if not monitor:
        return None, None, None
    split, _, key = str(monitor).partition(".")
    block = metrics.get(split)
    latest = block.get(key) if isinstance(block, dict) else metrics.get(f"{split}_{key}")
    return str(monitor), latest, metrics.get("best")


def status_row(run: IndexedRun, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    metrics, config = run["metrics"], run["config"]
    beat = run.heartbeat or {}
    live = run["status"] == "running"
    total = beat.get("total_epochs") or (config.get("trainer") or {}).get("epochs")
    epoch = beat.get("epoch") if live else metrics.get("last_epoch")
    started = iso_to_epoch(run["started"] or run["created"])
    elapsed = beat.get("elapsed_seconds") if live else run["duration"]
    if elapsed is None and live and started:
        elapsed = now - started
    monitor, latest, best = monitored(metrics, config)
    gates = metrics.get("gates") or []
    return {
        "id": run["id"],
        "name": run["name"],
        "status": run["status"],
        "epoch": epoch,
        "total_epochs": total,
        "progress": beat.get("progress") if live else None,
        "eta_seconds": beat.get("eta_seconds") if live else None,
        "elapsed_seconds": elapsed,
        "monitor": monitor,
        "latest": latest,
        "best": best,
        "best_epoch": metrics.get("best_epoch"),
        "failed_gates": [g.get("name") for g in gates if g.get("status") == "failed"],
        "gates": gates,
        "warnings": [d.get("code") for d in metrics.get("diagnostics") or []],
        "heartbeat_age_seconds": round(now - beat["time"], 1) if beat.get("time") else None,
        "path": run["path"],
    }


def job_of(path: Path) -> str | None:
    """The cluster job a run ran in, from its run.json: ``slurm 12_3 on node7``."""
    try:
        job = read_json(Path(path) / "run.json").get("scheduler")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(job, dict) or not job.get("job_id"):
        return None
    node = f" on {job['node']}" if job.get("node") else ""
    return f"{job.get('name', '?')} {job['job_id']}{node}"


def status_rows(
    root: str | Path,
    where: Expression | None = None,
    recent: int = 10,
    warnings: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Live runs and the ``recent`` newest others (``where`` filters: then all matching runs
    are candidates, live first)."""
    index = RunIndex(root)
    if where is None:
        rows = index.live_and_recent(recent, warnings)
    else:
        matched, _ = index.query(where, warnings=warnings)
        live = [r for r in matched if r.heartbeat is not None or r["status"] == "running"]
        live_ids = {r["id"] for r in live}
        rows = live + [r for r in matched if r["id"] not in live_ids][:recent]
    now = time.time()
    found = [status_row(r, now) for r in rows]
    for row in found:  # the index keeps a run's folder name; its run.json says the job
        row["job"] = job_of(Path(root) / row["path"]) if row["path"] else None
    return found
