"""What a finished step gives the steps after it, read from what it left: a cmd step's outputs
and their hashes, a run's id, directory and metrics, the mean over seeds, a sweep's or study's
best run. Shared by steps run here (:mod:`runlab.flow.engine`) and on a launcher
(:mod:`runlab.flow.cluster`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, RunlabError
from runlab.flow.spec import Step


class FlowFailed(RunlabError):
    """A step failed or a gate stopped the flow (exit 1)."""

    exit_code = 1


def content(path: Path, step: Step, what: str) -> str:
    """SHA-256 of a file, or of a folder's files (names and contents)."""
    digest = hashlib.sha256()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif what == "outputs":
        return "missing"
    else:
        raise ConfigError(f"step {step.name}: {what} {path} does not exist")
    for f in files:
        digest.update(str(f.relative_to(path) if f != path else "").encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def made(base: Path, step: Step) -> dict[str, Any]:
    """A cmd step's declared outputs (each must exist) and their hashes."""
    out = {k: str(base / str(v)) for k, v in (step.spec.get("outputs") or {}).items()}
    missing = [p for p in out.values() if not Path(p).exists()]
    if missing:
        raise FlowFailed(f"step {step.name}: the command did not make {missing[0]}")
    return {"out": out, "hashes": {p: content(Path(p), step, "outputs") for p in out.values()}}


def finished(run_dir: Path) -> dict[str, Any]:
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    shown = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str))}
    return {"run": run_dir.name, "run_dir": str(run_dir), "metrics": shown}


def over_seeds(done: list[dict[str, Any]], seeds: list[int | None]) -> dict[str, Any]:
    """One run, or one per seed: the step's run is the first seed's, its metrics the mean over
    the seeds of each number (and ``<key>_std``, the sample standard deviation)."""
    if len(done) == 1:
        return done[0]
    metrics: dict[str, Any] = {}
    for key in done[0]["metrics"]:
        values = [d["metrics"].get(key) for d in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            mean = sum(values) / len(values)
            metrics[key] = mean
            metrics[f"{key}_std"] = (
                sum((v - mean) ** 2 for v in values) / (len(values) - 1)
            ) ** 0.5
    return {**done[0], "metrics": metrics, "runs": [d["run"] for d in done], "seeds": seeds}


def ranked(kind: str, done: dict[str, Any]) -> tuple[list[str], list[str]]:
    """From ``runlab sweep|tune --format json``: the finished runs best first, and all runs."""
    if kind == "sweep":
        rows = done.get("runs", [])
        best = [r["run_id"] for r in rows if r.get("status") == "finished"]
        return best, [r["run_id"] for r in rows]
    numbers = [b["number"] for b in done.get("best", [])]
    trials = {t["number"]: t.get("run_id") for t in done.get("trials", [])}
    return [trials[n] for n in numbers if trials.get(n)], [
        t.get("run_id") for t in done.get("trials", [])
    ]
