"""The launch queue: one JSON file per entry under ``<root>/queue/``, its state the folder it
is in (``pending`` -> ``claimed`` -> ``running`` -> ``done``), moved by ``rename`` (atomic: of
two workers claiming the same entry exactly one succeeds). A claimed or running entry has a
lease (``<id>.lease``, renewed by its worker); one whose lease has expired (its worker was
killed) goes back to pending for another worker; an entry that is not the JSON runlab wrote is
set aside as ``done/<id>.damaged``, never run. ``audit.jsonl`` has a line per launch."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from runlab import _io
from runlab.errors import RunNotFoundError

STATES = ("pending", "claimed", "running", "done")
QUEUE_DIR = "queue"
LEASE_S = 60.0


class Queue:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / QUEUE_DIR

    def _dir(self, state: str) -> Path:
        """The state's folder; the first use makes all four at once, with the same permissions
        (a root shared with a scheduler's own user: whoever made pending/ made the others)."""
        path = self.folder / state
        if not path.is_dir():
            for each in STATES:
                (self.folder / each).mkdir(parents=True, exist_ok=True)
        return path

    # ------------------------------------------------------------------ writing
    def put(self, entry: dict[str, Any]) -> str:
        """A new pending entry (time-ordered id); returns its id."""
        ident = (
            f"{time.strftime('%Y%m%d-%H%M%S')}-{time.time_ns() % 10**9:09d}-{secrets.token_hex(2)}"
        )
        entry = {**entry, "id": ident, "queued": time.time(), "attempts": 0}
        self._write(self._dir("pending") / f"{ident}.json", entry)
        return ident

    def audit(self, line: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "audit.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"time": time.time(), **line}, default=str) + "\n")

    def claim(self, worker: str, lease_s: float = LEASE_S) -> dict[str, Any] | None:
        """The oldest pending entry, now claimed by ``worker``; None when none is left."""
        for path in sorted(self._dir("pending").glob("*.json")):
            target = self._dir("claimed") / path.name
            try:
                os.rename(path, target)  # the one rename that wins claims it
            except FileNotFoundError:
                continue
            entry = self._read(target)
            if entry is None or not isinstance(entry.get("argv"), list):  # damaged: set aside
                with contextlib.suppress(FileNotFoundError):
                    os.rename(target, self._dir("done") / f"{path.stem}.damaged")
                continue
            self.renew(path.stem, worker, lease_s, "claimed")
            return entry
        return None

    def start(self, ident: str, worker: str, pid: int, lease_s: float = LEASE_S) -> None:
        """The entry's process started: claimed -> running."""
        src, dst = self._dir("claimed") / f"{ident}.json", self._dir("running") / f"{ident}.json"
        entry = self._read(src) or {}
        entry.update(
            worker=worker, pid=pid, started=time.time(), attempts=entry.get("attempts", 0) + 1
        )
        self._write(src, entry)
        os.rename(src, dst)
        self.renew(ident, worker, lease_s, "running")
        with contextlib.suppress(FileNotFoundError):
            (self._dir("claimed") / f"{ident}.lease").unlink()

    def renew(self, ident: str, worker: str, lease_s: float, state: str) -> None:
        lease = {"worker": worker, "expires": time.time() + lease_s}
        self._write(self._dir(state) / f"{ident}.lease", lease)

    def finish(self, ident: str, result: dict[str, Any]) -> None:
        """running -> done, with how it ended."""
        for state in ("running", "claimed"):
            src = self._dir(state) / f"{ident}.json"
            entry = self._read(src)
            if entry is None:
                continue
            entry.update(ended=time.time(), **result)
            self._write(src, entry)
            try:
                os.rename(src, self._dir("done") / f"{ident}.json")
            except FileNotFoundError:  # reclaimed meanwhile: another worker has it now
                return
            for name in (f"{ident}.lease", f"{ident}.cancel"):
                with contextlib.suppress(FileNotFoundError):
                    (self._dir(state) / name).unlink()
            return

    def cancel(self, ident: str, by: str) -> str:
        """A pending entry is done (cancelled) at once; a running one is asked to stop (its
        worker ends the process, the entry ends ``cancelled``)."""
        src = self._dir("pending") / f"{ident}.json"
        entry = self._read(src)
        if entry is not None:
            entry.update(status="cancelled", cancelled_by=by, ended=time.time())
            self._write(src, entry)
            with contextlib.suppress(FileNotFoundError):
                os.rename(src, self._dir("done") / f"{ident}.json")
                return "cancelled before it started"
        for state in ("claimed", "running"):
            if (self._dir(state) / f"{ident}.json").exists():
                self._write(self._dir(state) / f"{ident}.cancel", {"by": by, "time": time.time()})
                return "asked to stop: its worker ends it"
        if (self._dir("done") / f"{ident}.json").exists():
            return "already ended"
        raise RunNotFoundError(f"no queue entry {ident!r}")

    def cancelled(self, ident: str) -> bool:
        return any((self._dir(s) / f"{ident}.cancel").exists() for s in ("claimed", "running"))

    def reclaim(self, now: float | None = None) -> list[str]:
        """Entries whose worker's lease has expired go back to pending; returns their ids."""
        now = time.time() if now is None else now
        back = []
        for state in ("claimed", "running"):
            for path in self._dir(state).glob("*.json"):
                lease = self._read(path.with_suffix(".lease"))
                if lease is not None and float(lease.get("expires", 0)) > now:
                    continue
                if lease is None and path.stat().st_ctime > now - LEASE_S:
                    continue  # just moved here; its lease is being written
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, self._dir("pending") / path.name)
                    back.append(path.stem)
                    with contextlib.suppress(FileNotFoundError):
                        path.with_suffix(".lease").unlink()
        return back

    # ------------------------------------------------------------------ reading
    def entries(self) -> list[dict[str, Any]]:
        """Every entry with its ``state``; pending ones with their ``position`` (1: next)."""
        out = []
        for state in STATES:
            for n, path in enumerate(sorted(self._dir(state).glob("*.json"))):
                entry = self._read(path)
                if entry is None:
                    continue
                entry["state"] = state
                if state == "pending":
                    entry["position"] = n + 1
                out.append(entry)
        return out

    def pending(self) -> int:
        return sum(1 for _ in self._dir("pending").glob("*.json"))

    @staticmethod
    def _read(path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        _io.atomic_write_text(path, json.dumps(data, default=str, indent=1) + "\n")
