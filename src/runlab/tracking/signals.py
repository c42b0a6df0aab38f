"""How a live run meets signals: SIGTERM (a scheduler's preemption, ``runlab stop --now``) ends
it ``preempted`` (or ``stopped``) once its directory is whole, never half way through a write;
a Ctrl-C while the end is written is noted, not raised; a stop asked from another thread reaches
a loop that does not poll as the Ctrl-C it would have typed."""

from __future__ import annotations

import _thread
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any

from runlab.tracking.heartbeat import STOP_FILE
from runlab.tracking.state import RunState

if TYPE_CHECKING:
    from runlab.tracking.run import Run


class Preempted(SystemExit):
    """Raised in the main thread on SIGTERM: the run ends ``preempted`` and the process exits
    with status 143 (128 + SIGTERM) unless the program catches it."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


# The code of the functions that begin a run's end (Run.__exit__, Run.finish, rundir.finish):
# a SIGTERM handled while one of them is on the stack, before the end notes signals itself,
# must not raise there (the end would be skipped and the run left ``running``).
END_CODES: set[CodeType] = set()


def _ending(frame: FrameType | None, depth: int = 4) -> bool:
    while frame is not None and depth > 0:
        if frame.f_code in END_CODES:
            return True
        frame, depth = frame.f_back, depth - 1
    return False


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class Signals:
    """The SIGTERM handler of one run (installed only when ``enabled`` and in the main
    thread). ``ready`` is False while the run directory is being changed: a SIGTERM then is
    noted, and acted on by :meth:`become_ready`."""

    def __init__(self, run: Run, enabled: bool) -> None:
        self.run = run
        self.enabled = enabled
        self.ready = False
        self._previous: Any = None

    def install(self) -> None:
        if self.enabled and _in_main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)

    def restore(self) -> None:
        if self._previous is not None:
            with contextlib.suppress(ValueError):  # not in the main thread any more
                signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        run = self.run
        if run.preempt_requested or run._finishing:
            return  # a second SIGTERM, or one while the run ends, must not interrupt the writes
        run.preempt_requested = True
        if self.ready and _ending(frame):  # the end has begun (a Ctrl-C unwound the block)
            run.event("on_signal", signal="SIGTERM")  # and it ends preempted, or stopped
        elif self.ready:  # else noted, and acted on by become_ready
            self._act()

    def _act(self) -> None:
        run = self.run
        run.event("on_signal", signal="SIGTERM")
        if (run.dir / STOP_FILE).exists():  # `runlab stop --now`: a stop, not a preemption
            run.read_stop_file()
        if run.status is RunState.CREATED:  # before start(): the run ends here
            run.finish(RunState.PREEMPTED)
            raise Preempted()
        if not run.cooperative_signals:
            raise Preempted()

    def become_ready(self) -> None:
        """The run directory is consistent again: a SIGTERM noted meanwhile now acts."""
        self.ready = True
        if self.run.preempt_requested and not self.run._finishing:
            self._act()

    @contextlib.contextmanager
    def sigint_noted(self) -> Iterator[list[int]]:
        """Ctrl-C noted, not raised, while the end is written (main thread, signals ours)."""
        noted: list[int] = []
        previous: Any = None
        if self.enabled and _in_main_thread():
            with contextlib.suppress(ValueError):
                previous = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
        try:
            yield noted
        finally:
            if previous is not None:
                with contextlib.suppress(ValueError):
                    signal.signal(signal.SIGINT, previous)

    def interrupt_main(self) -> None:
        """Stop a loop that does not poll: KeyboardInterrupt in the main thread, as Ctrl-C
        would. A process started in the background (``cmd &``, nohup) ignores SIGINT, and then
        Python delivers nothing: the run's own SIGTERM handler ends it instead (``stopped``,
        since a stop was asked), and an event says so."""
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            _thread.interrupt_main()
        elif self._previous is not None:  # our handler is installed
            self.run.event(
                "on_warning",
                code="sigint_ignored",
                message="SIGINT is ignored in this process (started in the background?); "
                "the stop goes through runlab's SIGTERM handler instead",
            )
            _thread.interrupt_main(signal.SIGTERM)
        else:
            self.run.event(
                "on_warning",
                code="stop_not_delivered",
                message="this loop does not poll run.stop_requested, SIGINT is ignored and "
                "runlab does not handle signals here: the run stops only when its loop "
                "checks run.stop_requested, or by `runlab stop --now` / kill",
            )
