"""Recording runs: the live :class:`Run`, the read-only :class:`RunRecord`, the index."""

from runlab.tracking.record import RunRecord, load_runs
from runlab.tracking.run import Preempted, Run, start_run
from runlab.tracking.state import RunState

__all__ = ["Preempted", "Run", "RunRecord", "RunState", "load_runs", "start_run"]
