"""The records of runs that go together, one class per file format, for the commands that
write them and every reader (the CLI, the dashboard) alike:

- :class:`SweepRecord`: ``<root>/sweeps/<id>/sweep.json``, what a grid sweep runs and what
  became of each combination (and the lease of the process that runs it);
- :class:`StudyRecord`: ``<root>/studies/<name>/trials.jsonl`` and ``study.json``, an Optuna
  study's trials as ``runlab tune`` last wrote them.

Readers tolerate damaged files: a sweep.json or trials.jsonl that cannot be read is skipped
when listing, and a one-line error when asked for by name."""

from __future__ import annotations

import contextlib
import fcntl
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from runlab._ids import make_run_id
from runlab._io import atomic_write_json, read_json, remove_stale_tmp
from runlab.errors import RunlabError, RunNotFoundError
from runlab.tracking.liveness import this_host

LEASE_LOCK = "lease.lock"
LEASE_INFO = "lease.json"


class SweepLease:
    """One owner per sweep at a time: an exclusive ``flock`` on ``sweeps/<id>/lease.lock``,
    which the kernel releases when its owner dies however it dies (``kill -9`` included), so a
    dead owner's sweep is taken over at once and a live one's never. ``lease.json`` says who
    holds it (pid, host, since) for the message a second owner gets. The runs a dead owner
    left running are not the lease's business: see :func:`runlab.sweep.combinations.adopt_runs`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None

    def acquire(self, sweep_id: str) -> SweepLease:
        fd = os.open(self.folder / LEASE_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            try:
                holder = read_json(self.folder / LEASE_INFO)
            except (OSError, ValueError):
                holder = {}
            if not isinstance(holder, dict):  # a damaged lease.json: the lock still holds
                holder = {}
            raise RunlabError(
                f"sweep {sweep_id} is being run by pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} (since {holder.get('since', '?')}): wait for it to "
                "end, or stop it first (Ctrl-C); a dead owner's sweep is taken over at once"
            ) from None
        self._fd = fd
        atomic_write_json(
            self.folder / LEASE_INFO,
            {"pid": os.getpid(), "host": this_host(), "since": _now()},
        )
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                (self.folder / LEASE_INFO).unlink()
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None

    def __enter__(self) -> SweepLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class SweepRecord:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data
        self.lease: SweepLease | None = None

    @property
    def id(self) -> str:
        return str(self.data["id"])

    @classmethod
    def create(
        cls,
        root: Path,
        name: str,
        config: str,
        base: list[str],
        combinations: list[list[str]],
        varying: list[str],
        objective: str,
        direction: str,
    ) -> SweepRecord:
        sweep_id = make_run_id(name)
        folder = root / "sweeps" / sweep_id
        folder.mkdir(parents=True)
        lease = SweepLease(folder).acquire(sweep_id)  # before sweep.json: no one resumes it yet
        data = {
            "id": sweep_id,
            "name": name,
            "config": config,
            "overrides": base,
            "varying": varying,
            "objective": objective,
            "direction": direction,
            "created": _now(),
            "combinations": [
                {"index": i, "overrides": c, "run_id": None, "status": "pending", "attempts": []}
                for i, c in enumerate(combinations)
            ],
        }
        record = cls(folder / "sweep.json", data)
        record.lease = lease
        record.save()
        return record

    @classmethod
    def load(cls, root: Path, ref: str, own: bool = False) -> SweepRecord:
        """The sweep ``ref`` (id prefix or name). ``own``: to run it (``--resume``), which
        takes its lease; without, only to read it (``status --sweep``), which touches nothing."""
        folder = root / "sweeps"
        hits = (
            sorted(p for p in folder.glob("*/sweep.json") if p.parent.name.startswith(ref))
            if folder.is_dir()
            else []
        )
        if not hits:
            hits = (
                [p for p in folder.glob("*/sweep.json") if read_json(p).get("name") == ref]
                if folder.is_dir()
                else []
            )
        if not hits:
            raise RunNotFoundError(f"no sweep {ref!r} under {folder}")
        path = hits[-1]
        if not own:
            return cls(path, read_json(path))
        lease = SweepLease(path.parent).acquire(path.parent.name)  # or: it runs elsewhere
        remove_stale_tmp(path.parent)  # a killed owner's half-written sweep.json
        record = cls(path, read_json(path))
        record.lease = lease
        return record

    def save(self) -> None:
        atomic_write_json(self.path, self.data)

    @property
    def logs(self) -> Path:
        """Where each combination's stdout and stderr go (``<index>.out``/``.err``)."""
        return self.path.parent / "logs"

    def record_result(self, index: int, run_id: str | None, status: str) -> None:
        combo = self.data["combinations"][index]
        if run_id:
            combo["attempts"].append(run_id)
        combo["run_id"], combo["status"] = run_id, status
        self.save()

    def unfinished(self) -> list[dict[str, Any]]:
        return [c for c in self.data["combinations"] if c["status"] != "finished"]

    # readers -------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: Path) -> SweepRecord | None:
        """The sweep.json at ``path``, or None when it cannot be read as a sweep."""
        try:
            data = read_json(path)
        except (OSError, ValueError):
            return None
        return cls(path, data) if isinstance(data, dict) else None

    @classmethod
    def scan(cls, root: Path) -> list[SweepRecord]:
        """Every readable sweep under ``root`` (damaged ones skipped)."""
        found = (cls.read(p) for p in sorted((root / "sweeps").glob("*/sweep.json")))
        return [r for r in found if r is not None]

    @property
    def folder_name(self) -> str:
        return self.path.parent.name

    @property
    def modified(self) -> float:
        return self.path.stat().st_mtime

    @property
    def combinations(self) -> list[dict[str, Any]]:
        """The combinations that are well formed (a hand-edited file may hold anything)."""
        combos = self.data.get("combinations")
        return [c for c in combos if isinstance(c, dict)] if isinstance(combos, list) else []

    @property
    def objective(self) -> str:
        return str(self.data.get("objective") or "best")

    @property
    def direction(self) -> str:
        return str(self.data.get("direction") or "minimize")

    @property
    def varying(self) -> set[str]:
        varying = self.data.get("varying")
        return {str(v) for v in varying} if isinstance(varying, list) else set()


TRIALS_FILE = "trials.jsonl"
STUDY_FILE = "study.json"


class StudyRecord:
    """An Optuna study's files under ``<root>/studies/<name>/`` (written by ``runlab tune``
    after every trial, so a reader sees a study while it runs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = folder.name

    @classmethod
    def scan(cls, root: Path) -> list[StudyRecord]:
        return [cls(p.parent) for p in sorted((root / "studies").glob(f"*/{TRIALS_FILE}"))]

    @classmethod
    def open(cls, root: Path, name: str) -> StudyRecord:
        record = cls(root / "studies" / name)
        if not (record.folder / TRIALS_FILE).is_file():
            raise RunNotFoundError(f"no study {name!r} under {root / 'studies'}")
        return record

    @property
    def modified(self) -> float:
        return (self.folder / TRIALS_FILE).stat().st_mtime

    def trials(self) -> list[dict[str, Any]]:
        """Each trial: number, state, params, values (None or a list), run_id, duration,
        fail_reason; a damaged line is skipped."""
        from runlab._io import read_jsonl

        out = []
        for t in read_jsonl(self.folder / TRIALS_FILE):  # objects only; torn lines skipped
            out.append(
                {
                    "number": t.get("number"),
                    "state": t.get("state"),
                    "params": t["params"] if isinstance(t.get("params"), dict) else {},
                    "values": t["values"] if isinstance(t.get("values"), list) else None,
                    "run_id": t.get("run_id"),
                    "duration": t.get("duration"),
                    "fail_reason": t.get("fail_reason"),
                }
            )
        return out

    def _info(self) -> dict[str, Any]:
        try:  # written by runlab tune since the dashboard came; older studies: minimize
            info = read_json(self.folder / STUDY_FILE)
        except (OSError, ValueError):
            return {}
        return info if isinstance(info, dict) else {}

    @property
    def objectives(self) -> list[str]:
        values = self._info().get("objectives")
        return [str(v) for v in values] if isinstance(values, list) and values else ["objective"]

    @property
    def directions(self) -> list[str]:
        values = self._info().get("directions")
        return [str(v) for v in values] if isinstance(values, list) and values else ["minimize"]

    def write(self, rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
        """``runlab tune``'s writer: both files, atomically."""
        import json

        from runlab._io import atomic_write_text

        self.folder.mkdir(parents=True, exist_ok=True)
        text = "".join(json.dumps(r) + "\n" for r in rows)
        atomic_write_text(self.folder / TRIALS_FILE, text)
        atomic_write_text(self.folder / STUDY_FILE, json.dumps(info, indent=2) + "\n")
