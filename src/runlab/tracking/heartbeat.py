"""A live run's heartbeat: where it is (epoch, step, progress, ETA) written to heartbeat.json
every interval by a thread of its own, which also flushes steps.jsonl when due, rewrites
metrics.json when the summary changed, and notices a ``runlab stop`` within half a second."""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any

from runlab import _io
from runlab._threads import helper_thread

if TYPE_CHECKING:
    from runlab.tracking.run import Run

DEFAULT_HEARTBEAT_S = 5.0
STOP_FILE = "stop.json"  # `runlab stop` writes it; the run notices within half a second


def interval_of(given: float | None) -> float:
    return float(given or os.environ.get("RUNLAB_HEARTBEAT_S") or DEFAULT_HEARTBEAT_S)


class Heartbeat:
    """The progress a run reports and the thread that writes it down."""

    def __init__(self, run: Run, interval: float) -> None:
        self.run = run
        self.interval = interval
        self.step: int | None = None
        self.epoch: int | None = None
        self.epochs_done = 0
        self.totals: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def update(self, **progress: Any) -> None:
        """epoch, total_epochs, step, total_steps, fraction: the ones given (not None)."""
        self.totals.update({k: v for k, v in progress.items() if v is not None})
        if progress.get("epoch") is not None:
            self.epoch = progress["epoch"]
        if progress.get("step") is not None:
            self.step = progress["step"]

    def fraction(self) -> float | None:
        p = self.totals
        if p.get("fraction") is not None:
            return float(p["fraction"])
        if p.get("total_steps") and self.step is not None:
            return min(1.0, (self.step + 1) / float(p["total_steps"]))
        if p.get("total_epochs"):
            return min(1.0, self.epochs_done / float(p["total_epochs"]))
        return None

    def snapshot(self) -> dict[str, Any]:
        now = time.time()
        elapsed = now - self.run._t0
        fraction = self.fraction()
        eta = elapsed * (1 - fraction) / fraction if fraction else None
        return {
            "pid": os.getpid(),
            "host": self.run.info["host"],
            "time": now,
            "interval": self.interval,
            "status": self.run.status.value,
            "epoch": self.epoch,
            "total_epochs": self.totals.get("total_epochs"),
            "step": self.step,
            "total_steps": self.totals.get("total_steps"),
            "progress": None if fraction is None else round(fraction, 6),
            "elapsed_seconds": round(elapsed, 3),
            "eta_seconds": None if eta is None else round(eta, 3),
        }

    def write(self) -> None:
        _io.atomic_write_json_fast(self.run.dir / "heartbeat.json", self.snapshot())

    def start(self) -> None:
        self._thread = helper_thread(self._loop, "runlab-heartbeat")
        self._thread.start()

    def stop(self) -> None:
        """End the thread (waits up to 10 s for a write in progress)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        run = self.run
        last_beat = time.monotonic()
        tick = min(0.5, self.interval)
        while not self._stop.wait(tick):
            try:
                if not run.stop_requested and (run.dir / STOP_FILE).exists():
                    run.read_stop_file()
                if run._steps is not None:
                    run._steps.flush_if_due()
                if time.monotonic() - last_beat >= self.interval:
                    last_beat = time.monotonic()
                    if run._ended:
                        return
                    run._beat()
                    if run.summary.dirty:
                        _io.atomic_write_json(run.dir / "metrics.json", run._safe_summary())
            except Exception:  # the heartbeat must never take the run down (disk full, ...)
                continue
