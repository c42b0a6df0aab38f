"""Workers as cluster jobs: ``runlab worker ROOT --submit slurm --workers N`` submits N jobs,
each running ``runlab worker ROOT --once`` on a compute node (a one-task job of the scheduler
launchers, as a flow's cmd step is), so the queue's launches run on the cluster."""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError


def submit_workers(
    root: Path, scheduler: str, options: dict[str, Any], workers: int, slots: int, lease: float
) -> list[str]:
    """The job ids of ``workers`` worker jobs submitted to ``scheduler``."""
    from runlab.sweep.batch import BatchLauncher, BatchRecord, submit_lines
    from runlab.sweep.launchers import make_launcher

    if workers < 1:
        raise ConfigError(f"--workers {workers}: give 1 or more")
    pool = make_launcher(scheduler, options)
    if not isinstance(pool, BatchLauncher):
        raise ConfigError(f"--submit {scheduler}: a scheduler (slurm, htcondor); not {scheduler}")
    pool.check_reachable()
    command = [sys.executable, "-m", "runlab", "worker", str(root.resolve()), "--once"]
    command += ["--slots", str(slots), "--lease", str(lease)]
    line = ["shell", os.getcwd(), shlex.join(command)]
    folder = root / "queue" / "jobs" / time.strftime("%Y%m%d-%H%M%S")
    batch = BatchRecord.create(
        folder, "queue", "queue-workers", "queue-workers", root, scheduler, options,
        [line] * workers,
    )  # fmt: skip
    return submit_lines(pool, batch, list(range(workers)))
