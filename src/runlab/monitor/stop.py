"""Stopping a run from outside: a request written into its directory, or SIGTERM."""

from __future__ import annotations

import getpass
import os
import signal

from runlab import _io
from runlab.errors import RunlabError
from runlab.tracking.liveness import this_host
from runlab.tracking.record import RunRecord
from runlab.tracking.run import STOP_FILE, utc_now_iso
from runlab.tracking.state import RunState


def request_stop(record: RunRecord, now: bool = False, reason: str | None = None) -> str:
    """Write ``stop.json`` in the run directory: the run notices within half a second, ends its
    step, saves last.pt and ends ``stopped``. ``now`` also sends SIGTERM to its process (on
    this host only). Returns a line saying what was done."""
    state = record.state
    if state not in (RunState.RUNNING, RunState.CREATED):
        raise RunlabError(f"run {record.id} is {state.value}, not running: nothing to stop")
    request = {
        "requested": utc_now_iso(),
        "user": _user(),
        "host": this_host(),
        "pid": os.getpid(),
        "reason": reason or "runlab stop",
        "now": now,
    }
    _io.atomic_write_json(record.path / STOP_FILE, request)
    if not now:
        return f"stop requested for {record.id}: it ends at its next step or epoch boundary"
    host, pid = record.info.get("host"), record.info.get("pid")
    if host != this_host() or not pid:
        raise RunlabError(
            f"--now sends SIGTERM, which works on the run's own host ({host}), not {this_host()}; "
            f"the stop request is written and {record.id} stops at its next step"
        )
    try:
        os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError as err:
        raise RunlabError(f"run {record.id}: process {pid} is gone") from err
    return f"SIGTERM sent to {record.id} (pid {pid}): it saves last.pt and ends stopped"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
