"""Tables of runs for people and notebooks, built from RunRecords (the run directories)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from runlab.tracking.record import RunRecord, flatten

# Summary keys that describe the run rather than measure the model.
HIDDEN_METRICS = {
    "duration_seconds",
    "last_epoch",
    "parameters",
    "epochs_run",
    "skipped_steps",
    "samples_per_sec",
    "max_memory_mib",
    "throughput_eps_per_sec",
    "episodes",
    "stopped_early",
}
_FIRST = ("best", "best_epoch", "val_loss", "train_loss")


def metric_values(record: RunRecord) -> dict[str, float]:
    """The numeric summary values of a run, flattened: ``val.sharpe``, ``test.loss``, ``best``."""
    return summary_numbers(record.metrics)


def summary_numbers(summary: Any) -> dict[str, float]:
    """The numeric values of a summary (metrics.json) that measure the model, flattened."""
    out = {}
    for key, value in flatten(summary if isinstance(summary, dict) else {}, "").items():
        key = key.lstrip(".")
        if key.split(".")[0] in HIDDEN_METRICS or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[key] = value
    return out


def config_values(record: RunRecord, lists: bool = False) -> dict[str, Any]:
    """The config flattened: ``optim.lr``; with ``lists``, lists of blocks too
    (``gates.0.require``), else a list is one value."""
    if not lists:
        return {k.lstrip("."): v for k, v in flatten(record.config, "").items()}
    return _flatten_all(record.config, "")


def _flatten_all(data: Any, prefix: str) -> dict[str, Any]:
    if isinstance(data, dict):
        items = list(data.items())
    elif isinstance(data, list) and any(isinstance(v, (dict, list)) for v in data):
        items = [(str(i), v) for i, v in enumerate(data)]
    else:
        return {prefix: data}
    out: dict[str, Any] = {}
    for k, v in items:
        out.update(_flatten_all(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def order_metrics(keys: set[str]) -> list[str]:
    def rank(k: str) -> tuple[int, str]:
        if k in _FIRST:
            return (0, f"{_FIRST.index(k)}")
        for i, prefix in enumerate(("val.", "test.", "train")):
            if k.startswith(prefix):
                return (i + 1, k)
        return (9, k)

    return sorted(keys, key=rank)


def all_same(values: list[Any]) -> bool:
    dumped = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return len(dumped) <= 1


def delta(value: Any, base: Any) -> float | None:
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, base))
    if not ok or not (math.isfinite(value) and math.isfinite(base)):
        return None
    return float(value) - float(base)


@dataclass
class Comparison:
    """One row per run: identity, metric values, the config keys that differ, and deltas."""

    runs: list[RunRecord]
    baseline: RunRecord | None
    metrics: list[str]
    config: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)


def compare(
    runs: list[RunRecord],
    baseline: RunRecord | None = None,
    metrics: list[str] | None = None,
    all_config: bool = False,
) -> Comparison:
    records = list(runs)
    if baseline is not None and all(r.id != baseline.id for r in records):
        records.insert(0, baseline)
    values = {r.id: metric_values(r) for r in records}
    configs = {r.id: config_values(r) for r in records}
    if metrics is None:
        found: set[str] = set().union(*(v.keys() for v in values.values())) if values else set()
        # `val_loss` beside `val.loss`: the same number twice in the summary
        found -= {k.replace(".", "_", 1) for k in found if k.count(".") == 1}
        metrics = order_metrics(found)
    keys = sorted(set().union(*(c.keys() for c in configs.values())) if configs else set())
    if not all_config:
        keys = [k for k in keys if not all_same([configs[r.id].get(k) for r in records])]
    out = Comparison(records, baseline, metrics, keys)
    base_values = values.get(baseline.id, {}) if baseline is not None else {}
    for r in records:
        row: dict[str, Any] = {
            "id": r.id,
            "name": r.name,
            "status": r.state.value,
            "baseline": baseline is not None and r.id == baseline.id,
            "metrics": {m: values[r.id].get(m, _lookup(r, m)) for m in metrics},
            "config": {k: configs[r.id].get(k) for k in keys},
        }
        if baseline is not None:
            row["delta"] = {m: delta(row["metrics"][m], base_values.get(m)) for m in metrics}
        out.rows.append(row)
    return out


def _lookup(record: RunRecord, key: str) -> Any:
    """A metric named explicitly that is not a plain summary number (``metrics.x`` works too)."""
    return record.lookup(("metrics", *key.removeprefix("metrics.").split(".")))


def diff(a: RunRecord, b: RunRecord) -> dict[str, list[dict[str, Any]]]:
    """``{"config": [{key, a, b}], "metrics": [{key, a, b, delta}], "run": [...]}``: only
    what differs (every metric is listed, with its delta)."""
    ca, cb = config_values(a, lists=True), config_values(b, lists=True)
    config = [
        {"key": k, "a": ca.get(k), "b": cb.get(k)}
        for k in sorted(ca.keys() | cb.keys())
        if not all_same([ca.get(k), cb.get(k)])
    ]
    ma, mb = metric_values(a), metric_values(b)
    metrics = [
        {"key": k, "a": ma.get(k), "b": mb.get(k), "delta": delta(mb.get(k), ma.get(k))}
        for k in order_metrics(ma.keys() | mb.keys())
    ]
    facts = {
        "status": (a.state.value, b.state.value),
        "seed": (a.info.get("seed"), b.info.get("seed")),
        "git": ((a.info.get("git") or {}).get("commit"), (b.info.get("git") or {}).get("commit")),
        "device": (a.info.get("device"), b.info.get("device")),
        "overrides": (a.overrides, b.overrides),
    }
    run = [{"key": k, "a": va, "b": vb} for k, (va, vb) in facts.items() if not all_same([va, vb])]
    return {"run": run, "config": config, "metrics": metrics}
