"""Flow steps on a launcher other than local. A ``run``, ``sweep`` or ``tune`` step runs as
``runlab sweep|tune --launcher NAME`` (a run step is a sweep of one combination, or of one per
seed); a ``cmd`` step on a scheduler is a one-task job of its own whose manifest line is
``shell CWD COMMAND``. On a scheduler the step is submitted, recorded in the flow's state as
``submitted`` (the jobs' folder), and waited for by reading the scheduler's queue and what the
jobs left, as ``runlab jobs --wait`` does; a flow killed while it waits finds the same jobs
again when it is rerun, rather than submitting them twice. Ray and other launchers that run
their jobs to the end answer at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runlab.flow.results import FlowFailed, finished, made, over_seeds, ranked
from runlab.flow.spec import Step

POLL_S = (0.5, 10.0)  # the first look at the queue after half a second, then less often


def on_launcher(
    flows: Any,
    step: Step,
    resolve: Callable[[str], str],
    jobs: dict[str, Any] | None,
    submitted: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    """Run ``step`` on its launcher: submit (unless ``jobs``, an earlier submission of the
    same key, is given), wait for the jobs, and read the step's result from what they left."""
    if jobs is None:
        jobs, answer = _submit(flows, step, resolve)
        if answer is not None:  # a launcher that ran everything already
            return _result(flows, step, answer)
        submitted(jobs)
    from runlab.sweep.batch import BatchRecord

    batch = BatchRecord.find(Path(jobs["folder"]))
    if batch is None:
        raise FlowFailed(f"step {step.name}: its jobs' record {jobs['folder']} is gone")
    rows = _wait(batch)
    bad = [r for r in rows if r["state"] != "finished"]
    if bad:
        tail = (bad[0].get("log") or "").splitlines()[-1:] or ["no log"]
        raise FlowFailed(
            f"step {step.name}: {len(bad)} of {len(rows)} jobs on {step.launcher[0]} ended "
            f"{bad[0]['state']} (#{bad[0]['index']}: {tail[0][:160]}); logs in {batch.logs}"
        )
    if step.kind == "cmd":
        return made(flows.flow.base, step)
    if step.kind == "tune":
        from runlab.sweep.study import study_summary

        return _result(flows, step, study_summary(flows.root, str(jobs["study"]), jobs["storage"]))
    return _result(flows, step, {"runs": _sweep_runs(batch, rows)})


def _submit(
    flows: Any, step: Step, resolve: Callable[[str], str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Submit the step: the record of its jobs, and the command's answer when the launcher ran
    everything to the end already (not a scheduler)."""
    if step.kind == "cmd":
        return _submit_cmd(flows, step, resolve(str(step.spec["cmd"]))), None
    flow, (name, options) = flows.flow, step.launcher
    what = "tune" if step.kind == "tune" else "sweep"
    command = [sys.executable, "-m", "runlab", what, str(flow.base / str(step.spec["config"]))]
    command += [resolve(str(o)) for o in step.spec.get("overrides", [])]
    command += [f"++tags.flow={flow.name}", f"++tags.flow_step={step.name}"]
    seeds = [int(s) for s in step.spec.get("seeds") or []]
    if seeds:
        command.append("++seed=" + ",".join(map(str, seeds)))
    command += ["--launcher", name, "-o", str(flows.root), "-f", "json"]
    for key, value in options.items():
        command += ["--launcher-opt", f"{key}={json.dumps(value)}"]
    if what == "sweep":
        command += ["--name", step.name]
    else:
        command += ["--study-name", f"{flow.name}-{step.name}-{flows.keys[step.name][:8]}"]
        command += ["-n", str(int(step.spec.get("trials") or 10))]
        if step.spec.get("seed") is not None:
            command += ["--seed", str(int(step.spec["seed"]))]
        if _scheduler(name):
            command += ["--workers", str(int(step.spec.get("workers") or 1))]
    proc = subprocess.run(command, cwd=flow.base, capture_output=True, text=True)
    try:
        answer = json.loads(proc.stdout)
    except ValueError:
        answer = {}
    if "job_ids" in answer:  # a scheduler took it
        if what == "sweep":
            return {"folder": str(Path(answer["path"]).parent), "sweep": answer["sweep_id"]}, None
        keep = ("folder", "study", "storage")
        return {k: answer[k] for k in keep}, None
    if proc.returncode != 0 and not answer:
        lines = proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"]
        raise FlowFailed(f"step {step.name}: runlab {what} on {name}: {lines[-1][:300]}")
    return {}, answer


def _submit_cmd(flows: Any, step: Step, command: str) -> dict[str, Any]:
    """A one-task job that runs ``command`` in the flow's folder (:mod:`runlab.sweep.task`
    runs a ``shell`` line with /bin/sh)."""
    from runlab.errors import ConfigError
    from runlab.sweep.batch import BatchLauncher, BatchRecord, submit_lines
    from runlab.sweep.launchers import make_launcher

    name, options = step.launcher
    pool = make_launcher(name, options)
    assert isinstance(pool, BatchLauncher)
    try:
        pool.check_reachable()
    except ConfigError as err:
        raise FlowFailed(f"step {step.name}: {err}") from err
    folder = flows.folder / "jobs" / f"{step.name}-{flows.keys[step.name][:12]}"
    shutil.rmtree(folder, ignore_errors=True)  # an earlier submission of this key, ended
    line = ["shell", str(flows.flow.base), command]
    group = f"{flows.flow.name}.{step.name}"
    batch = BatchRecord.create(folder, "flow", group, group, flows.root, name, options, [line])
    submit_lines(pool, batch, [0])
    return {"folder": str(folder)}


def _scheduler(name: str) -> bool:
    from runlab.sweep.batch import BatchLauncher
    from runlab.sweep.launchers import LAUNCHERS

    cls = LAUNCHERS.load(name, "--launcher")
    return isinstance(cls, type) and issubclass(cls, BatchLauncher)


def _wait(batch: Any) -> list[dict[str, Any]]:
    """The jobs' rows (:func:`runlab.sweep.jobs.job_rows`) once none is queued or running."""
    from runlab.sweep.jobs import job_rows, launcher_of, live, record_runs

    pool = launcher_of(batch)
    pause = POLL_S[0]
    while True:
        rows = job_rows(batch, pool)
        if not live(rows):
            record_runs(batch)
            return rows
        time.sleep(pause)
        pause = min(POLL_S[1], pause * 1.5)


def _sweep_runs(batch: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A scheduler sweep's runs as ``runlab sweep --format json`` lists them, sorted by its
    objective (best first; runs without a value last)."""
    from runlab.tracking.groups import SweepRecord

    record = SweepRecord.read(batch.folder / "sweep.json")
    sign = -1.0 if record is not None and record.direction == "maximize" else 1.0
    runs = [
        {"run_id": r["run_id"], "status": r["status"], "objective": r.get("objective")}
        for r in rows
    ]
    return sorted(runs, key=lambda r: (r["objective"] is None, sign * (r["objective"] or 0.0)))


def _result(flows: Any, step: Step, answer: dict[str, Any]) -> dict[str, Any]:
    """The step's result from ``runlab sweep|tune --format json`` (or its like): a run step's
    run (over its seeds, in their order), a sweep's or study's best run."""
    if step.kind == "run":
        rows = answer.get("runs", [])
        if not rows or any(r.get("status") != "finished" for r in rows):
            raise FlowFailed(f"step {step.name}: a run on {step.launcher[0]} did not finish")
        done = [finished(flows.root / r["run_id"]) for r in _by_seed(flows, rows)]
        seeds: list[int | None] = [int(s) for s in step.spec.get("seeds") or []] or [None]
        return over_seeds(done, seeds)
    best, runs = ranked(step.kind, answer)
    if not best:
        raise FlowFailed(f"step {step.name}: runlab {step.kind} gave no finished run")
    return {**finished(flows.root / best[0]), "runs": runs}


def _by_seed(flows: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A run step's runs in the order of its seeds (a sweep's combinations, by index)."""

    def index(row: dict[str, Any]) -> int:
        info = json.loads((flows.root / row["run_id"] / "run.json").read_text(encoding="utf-8"))
        return int(info.get("trial") or 0)

    return sorted(rows, key=index)
