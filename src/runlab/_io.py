"""File primitives of the run directory: atomic JSON/text writes and flushed JSONL appends."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def to_jsonable(obj: Any) -> Any:
    """``json`` fallback for NumPy/torch scalars and arrays, paths, sets and the rest."""
    item = getattr(obj, "item", None)
    if callable(item):
        try:
            return item()  # NumPy scalar, 0-d array, 1-element tensor
        except (ValueError, RuntimeError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return str(obj)


def json_safe(obj: Any, _seen: frozenset[int] = frozenset()) -> Any:
    """``obj`` as JSON can hold it: keys made strings (a tuple key is its str), a container
    that contains itself is ``"<cycle>"``, and what JSON has no type for goes through
    :func:`to_jsonable`. For what a user put in a summary, which must never stop a run's end."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if id(obj) in _seen:
        return "<cycle>"
    if isinstance(obj, dict):
        inner = _seen | {id(obj)}
        return {(k if isinstance(k, str) else str(k)): json_safe(v, inner) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        inner = _seen | {id(obj)}
        return [json_safe(v, inner) for v in obj]
    try:
        plain = to_jsonable(obj)
    except Exception as err:  # a user's object whose conversion fails
        return f"<{type(obj).__name__}: not convertible ({type(err).__name__})>"
    return plain if plain is obj else json_safe(plain, _seen | {id(obj)})


def _read_umask() -> int:
    """The process umask, read without changing it (os.umask would, briefly, for all threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


_FILE_MODE = 0o666 & ~_read_umask()  # mkstemp creates 0600; run files are as readable as others
_ENCODER = json.JSONEncoder(
    default=to_jsonable
)  # built once: json.dumps(default=) builds one a call


def dumps(obj: Any, indent: int | None = None) -> str:
    if indent is None:
        return _ENCODER.encode(obj)
    return json.dumps(obj, default=to_jsonable, indent=indent)


def atomic_write_text(path: str | os.PathLike[str], text: str, fsync: bool = True) -> None:
    """Write ``text`` so that a reader sees the old file or the new one, never half of one.

    ``fsync=False`` for files rewritten every few seconds (heartbeat): the rename is still
    atomic for readers; only a power cut could lose the latest version.
    """
    atomic_write_bytes(path, text.encode("utf-8"), fsync)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, fsync: bool = True) -> None:
    """:func:`atomic_write_text` for bytes."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


RESERVE_FILE = ".runlab-reserve"  # room kept for a run's last writes when the disk fills
RESERVE_BYTES = 256 * 1024


def keep_reserve(run_dir: Path) -> None:
    """Hold RESERVE_BYTES in the run directory while the run lives: on a full disk, the end
    deletes it and writes metrics.json and the final status into the room it leaves."""
    path = run_dir / RESERVE_FILE
    try:
        with open(path, "wb") as fh:
            fh.write(bytes(RESERVE_BYTES))
    except OSError:  # already full: the end will say what it could not write
        with contextlib.suppress(OSError):
            path.unlink()


def drop_reserve(run_dir: Path) -> None:
    with contextlib.suppress(OSError):
        (run_dir / RESERVE_FILE).unlink()


def remove_stale_tmp(folder: Path, subfolders: tuple[str, ...] = ()) -> list[Path]:
    """Delete the temporary files that atomic writes leave when their process is killed
    between writing and renaming (``.name.XXXX.tmp``, ``.last.pt.tmp``). Only for a folder no
    live process writes to (a run being reopened)."""
    removed = []
    for where in (folder, *(folder / s for s in subfolders)):
        for path in where.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, dumps(obj, indent=2) + "\n")


def atomic_write_json_fast(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomic for readers, without fsync: for files rewritten every few seconds."""
    atomic_write_text(path, dumps(obj) + "\n", fsync=False)


def read_json(path: str | os.PathLike[str]) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class JsonlAppender:
    """Append-only JSON-lines file.

    ``write`` buffers; ``write(..., flush=True)`` (events) reaches the OS before returning, so a
    ``kill -9`` cannot lose it. Buffered lines (per-step scalars) are flushed at the latest
    ``max_delay`` seconds later by the caller's next write or by :meth:`flush_if_due`, which the
    run's heartbeat thread calls. The binary buffered file is thread-safe, so the background
    flush needs no lock of ours.
    """

    def __init__(self, path: str | os.PathLike[str], max_delay: float = 1.0) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "ab", buffering=1 << 16)  # noqa: SIM115 - lives with the run
        self._max_delay = max_delay
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def write(self, obj: Any, flush: bool = False) -> None:
        self._fh.write(_ENCODER.encode(obj).encode() + b"\n")
        if flush or time.monotonic() - self._last_flush > self._max_delay:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
            self._last_flush = time.monotonic()

    def flush_if_due(self) -> None:
        if time.monotonic() - self._last_flush > self._max_delay:
            self.flush()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file; a torn last line (the process died mid-write) and any
    line that is not an object are skipped."""
    out: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    out.append(item)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        pass
    return out
