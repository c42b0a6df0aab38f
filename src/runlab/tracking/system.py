"""System metrics of a live run, sampled off the training thread: the process's CPU % (of one
core, as top shows it) and resident memory, the machine's CPU %, and for each GPU the run
uses its utilisation and memory (NVIDIA's NVML through ``nvidia-ml-py``, when installed and a
CUDA device is in use). Samples go to ``system.jsonl`` every ``interval`` seconds and to the
run's listeners (the mirrors) as ``system/<name>`` scalars; at the end, the mean and the peak
of each go to metrics.json's ``system``.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from runlab import _io
from runlab._threads import helper_thread

if TYPE_CHECKING:
    from runlab.tracking.run import Run

DEFAULT_SYSTEM_S = 5.0
SYSTEM_FILE = "system.jsonl"


def system_interval_of(given: float | None) -> float:
    """Seconds between samples: ``given``, else ``$RUNLAB_SYSTEM_S``, else 5; 0 turns it off."""
    if given is not None:
        return float(given)
    return float(os.environ.get("RUNLAB_SYSTEM_S") or DEFAULT_SYSTEM_S)


def gpu_indices(device: str | None) -> list[int | str]:
    """The NVML devices behind a torch device string: ``cuda:1`` is the second of
    ``CUDA_VISIBLE_DEVICES`` (an index or a UUID), ``cuda`` the first; no CUDA device: []."""
    if not device or not str(device).startswith("cuda"):
        return []
    _, _, index = str(device).partition(":")
    position = int(index) if index.isdigit() else 0
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")]
    visible = [v for v in visible if v]
    if not visible:
        return [position]
    if position >= len(visible):
        return []
    chosen = visible[position]
    return [int(chosen)] if chosen.isdigit() else [chosen]


class _Gpus:
    """NVML handles of the run's GPUs; empty when NVML or a device is missing."""

    def __init__(self, device: str | None) -> None:
        self.handles: list[tuple[int, Any]] = []
        self.nvml: Any = None
        wanted = gpu_indices(device)
        if not wanted:
            return
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no nvidia-ml-py, no driver: CPU metrics only
            return
        self.nvml = pynvml
        for n, ref in enumerate(wanted):
            try:
                handle = (
                    pynvml.nvmlDeviceGetHandleByIndex(ref)
                    if isinstance(ref, int)
                    else pynvml.nvmlDeviceGetHandleByUUID(ref)
                )
                self.handles.append((n, handle))
            except Exception:
                continue

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for n, handle in self.handles:
            try:
                util = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            out[f"gpu{n}_util_percent"] = float(util.gpu)
            out[f"gpu{n}_memory_mib"] = round(mem.used / 2**20, 1)
        return out

    def close(self) -> None:
        if self.nvml is not None:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()


class SystemMonitor:
    """The sampling thread of one run (``interval`` seconds; 0 or None: off)."""

    def __init__(self, run: Run, interval: float | None, device: str | None) -> None:
        self.run, self.interval, self.device = run, interval, device
        self.stats: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._out: _io.JsonlAppender | None = None

    def start(self) -> None:
        if not self.interval:
            return
        try:
            import psutil
        except ImportError:
            return
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only sets the reference point
        psutil.cpu_percent(None)
        self._psutil = psutil
        self._gpus = _Gpus(self.device)
        self._out = _io.JsonlAppender(self.run.dir / SYSTEM_FILE, max_delay=0.0)
        self._thread = helper_thread(self._loop, "runlab-system")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sample()
            except Exception:  # a full disk, a vanished device: the run goes on
                continue

    def sample(self) -> dict[str, float]:
        """One sample now: written, mirrored and counted."""
        values = {
            "cpu_percent": float(self._process.cpu_percent(None)),
            "rss_mib": round(self._process.memory_info().rss / 2**20, 1),
            "host_cpu_percent": float(self._psutil.cpu_percent(None)),
            **self._gpus.sample(),
        }
        for key, value in values.items():
            self.stats.setdefault(key, []).append(value)
        step = self.run._heartbeat.step
        if self._out is not None:
            self._out.write({"time": time.time(), "step": step, **values})
        if self.run._listeners:
            from runlab.tracking.records import StepRecord

            scalars = {f"system/{k}": v for k, v in values.items()}
            self.run._emit(StepRecord(step or 0, time.time(), scalars))
        return values

    def stop(self) -> dict[str, Any]:
        """Stop sampling (one last sample first, so that a short run has one); the summary
        for metrics.json: each metric's mean and peak, the sample count and interval."""
        if self._thread is None:
            return {}
        self._stop.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(Exception):
            self.sample()
        if self._out is not None:
            self._out.close()
        self._gpus.close()
        summary: dict[str, Any] = {
            key: {"mean": round(sum(v) / len(v), 2), "peak": max(v)}
            for key, v in self.stats.items()
            if v
        }
        summary["samples"] = len(self.stats.get("rss_mib", []))
        summary["interval_s"] = self.interval
        return summary
