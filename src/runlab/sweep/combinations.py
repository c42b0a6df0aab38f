"""A sweep's combinations: the ``runlab run`` line of each, and what the runs of a dead owner
(or of scheduler jobs) became, recorded in sweep.json."""

from __future__ import annotations

import glob
from pathlib import Path

from runlab._ids import slugify
from runlab.tracking.groups import SweepRecord
from runlab.tracking.record import RunRecord


def run_args(record: SweepRecord, root: Path, index: int, overrides: list[str]) -> list[str]:
    """The `runlab run` arguments of combination ``index``."""
    data = record.data
    return [
        *(data["config"], *overrides, "--output-dir", str(root), "--run-name", data["name"]),
        *("--parent", record.id, "--trial", str(index)),
    ]


def adopt_runs(record: SweepRecord, root: Path) -> list[str]:
    """The runs of this sweep's unfinished combinations that its last owner started but never
    recorded (it was killed, its runs were not): one that has ended is recorded as it ended;
    one still running is marked ``running`` and not started again (a later ``--resume``
    records how it ended). Returns a line for each."""
    from runlab.tracking.state import RunState

    pending = {c["index"]: c for c in record.unfinished()}
    lines: list[str] = []
    pattern = f"*-{glob.escape(slugify(str(record.data['name'])))}-*/run.json"
    for run_json in sorted(root.glob(pattern)):
        run = RunRecord(run_json.parent)
        try:
            info = run.info
            index = int(str(info.get("trial")))
        except Exception:  # a damaged run, or one that is no combination of a sweep
            continue
        if info.get("parent") != record.id or index not in pending:
            continue
        state = run.state
        combo = pending[index]
        if state in (RunState.RUNNING, RunState.CREATED):
            combo["run_id"], combo["status"] = run.id, "running"
            if run.id not in combo["attempts"]:
                combo["attempts"].append(run.id)
            lines.append(f"combination #{index} still runs as {run.id}: not started again")
        elif combo["run_id"] != run.id and run.id not in combo["attempts"]:
            combo["attempts"].append(run.id)
            combo["run_id"], combo["status"] = run.id, state.value
            lines.append(f"combination #{index} ran as {run.id} ({state.value}): recorded")
        elif combo["status"] == "running":  # recorded running by an earlier resume: it ended
            combo["status"] = state.value
            lines.append(f"combination #{index} ({run.id}) ended {state.value}: recorded")
    record.save()
    return lines
