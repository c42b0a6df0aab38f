"""runlab's helper threads (heartbeat, system metrics, mirrors) never take the process's
signals. The kernel hands a signal sent to a process to any of its threads that does not block
it; Python runs its handler in the main thread, but a signal taken by a helper thread does not
interrupt the main thread's blocking call (``time.sleep``, a read), so a Ctrl-C or a SIGTERM
could wait there unseen until the call ends. Blocked here, they always reach the main thread."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable
from typing import Any

PROCESS_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGUSR1", "SIGHUP")
    if hasattr(signal, name)
)


def helper_thread(target: Callable[[], Any], name: str) -> threading.Thread:
    """A daemon thread running ``target`` with the process's signals blocked."""

    def run() -> None:
        if hasattr(signal, "pthread_sigmask"):  # not on Windows
            with contextlib.suppress(OSError, ValueError):
                signal.pthread_sigmask(signal.SIG_BLOCK, PROCESS_SIGNALS)
        target()

    return threading.Thread(target=run, name=name, daemon=True)
