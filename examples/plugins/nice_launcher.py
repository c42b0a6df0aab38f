"""A launcher: the local pool, each run at a lower CPU priority (``nice``), so that a sweep
on a shared workstation leaves the machine usable.

    runlab sweep examples/quickstart.yaml optim.lr=0.01,0.1 \\
        --launcher examples.plugins.nice_launcher:NiceLauncher --launcher-opt niceness=15
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from runlab.config.schema import limits
from runlab.sweep.launcher_local import LocalLauncher
from runlab.sweep.launchers import Job


@dataclass
class NiceOptions:
    niceness: int = limits(10, ge=0, le=19)  # added to each run's nice value


class NiceLauncher(LocalLauncher):
    Options = NiceOptions

    def __init__(self, jobs: int = 1, niceness: int = 10) -> None:
        super().__init__(jobs=jobs)
        self.niceness = niceness

    def _start(self, job: Job) -> Any:
        proc = super()._start(job)
        with contextlib.suppress(OSError):  # a priority the user may not set: it runs as is
            os.setpriority(os.PRIO_PROCESS, proc.pid, self.niceness)
        return proc
