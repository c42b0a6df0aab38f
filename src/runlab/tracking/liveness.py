"""Is a run whose files say ``running`` really alive? (``crashed`` is derived, never written.)"""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime
from functools import lru_cache
from typing import Any

from runlab.tracking.state import LIVE_STATES, RunState

# A heartbeat older than this many intervals (and at least STALE_MIN_S) means the run is gone.
STALE_INTERVALS = 6
STALE_MIN_S = 60.0


@lru_cache(maxsize=1)
def this_host() -> str:
    return socket.gethostname()


@lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def _process_start_time(pid: int) -> float | None:
    """Start time of ``pid`` (Linux /proc), to tell a reused pid from the run's own process."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int, started_at: float | None = None) -> bool:
    """True if ``pid`` runs on this host (and, where it can be told, started before the run)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    if started_at is not None:
        proc_start = _process_start_time(pid)
        if proc_start is not None and proc_start > started_at + 5.0:
            return False  # the pid was reused by a younger process
    try:  # a zombie (exited child not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def iso_to_epoch(value: Any) -> float | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def derive_state(
    status: str,
    host: str | None,
    pid: int | None,
    created: str | None,
    heartbeat: dict[str, Any] | None,
    now: float | None = None,
) -> RunState:
    """The state to show: the written status, or ``crashed`` for a live status whose process is
    gone: its pid is dead on this host, or its heartbeat (wherever it runs) is older than
    max(6 intervals, 60 s), as for a hung or stopped process or a lost node."""
    try:
        state = RunState(status)
    except ValueError:
        return RunState.CRASHED
    if state not in LIVE_STATES:
        return state
    now = time.time() if now is None else now
    known = pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None
    if known is not None and host == this_host() and not pid_alive(known, iso_to_epoch(created)):
        return RunState.CRASHED
    beat = _number(heartbeat.get("time")) if heartbeat else None
    last = beat if beat is not None else iso_to_epoch(created)
    interval = _number((heartbeat or {}).get("interval")) or 5.0
    limit = max(STALE_INTERVALS * interval, STALE_MIN_S)
    if last is None or now - last > limit:
        return RunState.CRASHED
    return state
