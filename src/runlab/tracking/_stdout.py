"""Copy what the program prints into the run's stdout.log while leaving the terminal as is.

The copy never costs the program its output: when stdout.log cannot be written (a full disk),
the copy stops and the terminal keeps everything."""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, TextIO


class Tee:
    """Stands in for ``sys.stdout``/``sys.stderr``: writes go to the original stream and to the
    log file; everything else (``fileno``, ``isatty``, ``encoding``) is the original's."""

    def __init__(self, original: TextIO, log: TextIO, lock: threading.Lock) -> None:
        self._original = original
        self._log = log
        self._lock = lock

    def write(self, text: str) -> int:
        n = self._original.write(text)
        _copy(self._log, self._lock, text)
        return n

    def flush(self) -> None:
        self._original.flush()
        _copy(self._log, self._lock, "")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


def _copy(log: TextIO, lock: threading.Lock, text: str) -> None:
    with lock:
        if log.closed:
            return
        try:
            if text:
                log.write(text)
            else:
                log.flush()
        except (OSError, ValueError):  # a full disk: the copy ends, the program goes on
            with contextlib.suppress(OSError, ValueError):
                log.close()


class StdoutCapture:
    def __init__(self, path: str) -> None:
        self._log = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - line-buffered
        self._lock = threading.Lock()
        self._saved: tuple[TextIO, TextIO] | None = None

    def start(self) -> None:
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout = Tee(sys.stdout, self._log, self._lock)
        sys.stderr = Tee(sys.stderr, self._log, self._lock)

    def write_log(self, text: str) -> None:
        _copy(self._log, self._lock, text)

    def stop(self) -> None:
        if self._saved is not None:
            out, err = self._saved
            if isinstance(sys.stdout, Tee):
                sys.stdout = out
            if isinstance(sys.stderr, Tee):
                sys.stderr = err
            self._saved = None
        with self._lock, contextlib.suppress(OSError, ValueError):
            self._log.close()
