"""The run summary that becomes metrics.json."""

from __future__ import annotations

import threading
from collections.abc import Iterator, MutableMapping
from typing import Any


class Summary(MutableMapping[str, Any]):
    """A dict of summary values, safe to snapshot from the heartbeat thread.

    Keys set by the user win over the defaults runlab fills in (the last value of each epoch
    metric, as ``<split>_<metric>``): :meth:`set_default_value` never overwrites a user key.
    """

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._user_keys: set[str] = set()
        self._lock = threading.Lock()
        self.dirty = False

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._user_keys.add(key)
            self.dirty = True

    def __delitem__(self, key: str) -> None:
        with self._lock:
            del self._data[key]
            self._user_keys.discard(key)
            self.dirty = True

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def set_default_value(self, key: str, value: Any) -> None:
        with self._lock:
            if key not in self._user_keys:
                self._data[key] = value
                self.dirty = True

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            self.dirty = False
            return dict(self._data)

    def __repr__(self) -> str:
        return f"Summary({self._data!r})"
