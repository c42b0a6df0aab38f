"""Copy what the program prints into the run's stdout.log while leaving the terminal as is."""

from __future__ import annotations

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
        with self._lock:
            if not self._log.closed:
                self._log.write(text)
        return n

    def flush(self) -> None:
        self._original.flush()
        with self._lock:
            if not self._log.closed:
                self._log.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


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
        with self._lock:
            if not self._log.closed:
                self._log.write(text)

    def stop(self) -> None:
        if self._saved is not None:
            out, err = self._saved
            if isinstance(sys.stdout, Tee):
                sys.stdout = out
            if isinstance(sys.stderr, Tee):
                sys.stderr = err
            self._saved = None
        with self._lock:
            self._log.close()
