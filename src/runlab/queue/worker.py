"""``runlab worker ROOT``: claims the queue's entries and runs them, ``--slots N`` at a time,
each on its own GPUs with ``--gpus`` (round robin over the slots), renewing each entry's
lease while its process lives. A worker killed with ``kill -9`` renews nothing: its entries'
leases expire and they go back to pending for the next worker, and its runs get SIGTERM
(they save and end ``preempted``; Linux). A cancelled entry's process
gets SIGINT (the run saves and ends ``stopped``), then SIGTERM after 30 s. SIGINT or SIGTERM
to the worker passes SIGTERM to its runs (they end ``preempted``) and ends it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from runlab.queue.store import LEASE_S, Queue


@dataclass
class Slot:
    entry: dict[str, Any]
    proc: subprocess.Popen[bytes]
    gpu: str | None
    cancelled_at: float | None = None


class Worker:
    def __init__(
        self,
        root: Path,
        slots: int = 1,
        gpus: list[str] | None = None,
        lease_s: float = LEASE_S,
        poll: float = 0.5,
    ) -> None:
        self.queue = Queue(root)
        self.slots, self.gpus, self.lease_s, self.poll = slots, gpus or [], lease_s, poll
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.running: dict[str, Slot] = {}
        self.stopping = False

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self, once: bool = False, say: Any = None) -> int:
        """Work until stopped (or, ``once``, until the queue is empty and nothing runs)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        done = 0
        while not self.stopping:
            self.queue.reclaim()
            done += self._reap(say)
            self._tend()
            while len(self.running) < self.slots and not self.stopping:
                entry = self.queue.claim(self.name, self.lease_s)
                if entry is None:
                    break
                self._start(entry, say)
            if once and not self.running and not self.queue.pending():
                break
            time.sleep(self.poll)
        for slot in self.running.values():
            slot.proc.send_signal(signal.SIGTERM)
        for slot in list(self.running.values()):
            slot.proc.wait()
        done += self._reap(say)
        return done

    def _start(self, entry: dict[str, Any], say: Any) -> None:
        ident = entry["id"]
        used = {s.gpu for s in self.running.values()}
        gpu = next((g for g in self.gpus if g not in used), None)
        env = {**os.environ, "RUNLAB_LAUNCHED_BY": str(entry.get("launched_by") or "")}
        env["RUNLAB_QUEUE_ENTRY"] = ident
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        logs = self.queue.folder / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{ident}.out", "wb") as out, open(logs / f"{ident}.err", "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runlab", *entry["argv"]],
                cwd=entry.get("cwd") or None,
                stdout=out,
                stderr=err,
                env=env,
                start_new_session=True,  # a Ctrl-C at the worker's terminal is the worker's
                preexec_fn=_die_with_parent,
            )
        self.queue.start(ident, self.name, proc.pid, self.lease_s)
        self.running[ident] = Slot(entry, proc, gpu)
        if say:
            say(f"{ident}: started {entry.get('recipe')} ({entry.get('kind')}) as pid {proc.pid}")

    def _tend(self) -> None:
        """Renew the leases of the live processes; stop the cancelled ones."""
        now = time.time()
        for ident, slot in self.running.items():
            self.queue.renew(ident, self.name, self.lease_s, "running")
            if slot.cancelled_at is None and self.queue.cancelled(ident):
                slot.cancelled_at = now
                slot.proc.send_signal(signal.SIGINT)
            elif slot.cancelled_at is not None and now - slot.cancelled_at > 30:
                slot.proc.send_signal(signal.SIGTERM)

    def _reap(self, say: Any) -> int:
        ended = [i for i, s in self.running.items() if s.proc.poll() is not None]
        for ident in ended:
            slot = self.running.pop(ident)
            code = slot.proc.returncode
            result = {"exit_code": code, **_made(self.queue.folder / "logs" / f"{ident}.out")}
            result["status"] = (
                "cancelled"
                if slot.cancelled_at is not None
                else "finished"
                if code == 0
                else "failed"
            )
            self.queue.finish(ident, result)
            if say:
                say(f"{ident}: {result['status']} (exit {code})")
        return len(ended)


def _die_with_parent() -> None:
    """In the launch's process, before it starts: SIGTERM when the worker dies (Linux's
    PR_SET_PDEATHSIG), so a worker killed with kill -9 leaves no run behind to race the one
    its entry's next worker starts; the run saves and ends ``preempted``."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not Linux: the lease alone
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def _made(out: Path) -> dict[str, Any]:
    """What the launch made, from its ``--format json`` output: a run, a sweep or a study."""
    try:
        text = out.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return {}
    for candidate in (text, *reversed(text.splitlines())):
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, dict):
            keep = ("run_id", "sweep_id", "study")
            return {k: data[k] for k in keep if isinstance(data.get(k), str)}
    return {}
