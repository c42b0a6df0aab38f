"""What a person adds to a run after the fact: notes (``notes.md``, markdown) and tags.

Edited tags live in ``tags.json`` beside run.json and, when present, are the run's tags for
every reader (the index, ``runlab ls --where tags.x``, the dashboard, mirrors). Not in run.json
itself: a live run rewrites run.json at every heartbeat and would undo an edit made while it
runs. Each edit is a read-change-write under a lock file, written atomically, and the run's
index row is refreshed; the next ``runlab sync`` mirrors the change (MLflow's note tag, W&B's
notes and tags)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from runlab import _io
from runlab._secrets import is_secret_key
from runlab.errors import ConfigError

NOTES_FILE = "notes.md"
TAGS_FILE = "tags.json"
NOTES_MAX = 100_000  # characters of notes a run keeps
TAGS_MAX = 64
_KEY = re.compile(r"[A-Za-z0-9_][\w.-]{0,63}")


def read_notes(run_dir: Path) -> str:
    try:
        return (run_dir / NOTES_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def edited_tags(run_dir: Path) -> dict[str, Any] | None:
    """The tags as last edited, or None when nobody edited them (or tags.json is damaged)."""
    try:
        data = json.loads((run_dir / TAGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    tags = data.get("tags") if isinstance(data, dict) else None
    return tags if isinstance(tags, dict) else None


def check_tags(tags: Any) -> dict[str, Any]:
    """Tags as a run may hold them: at most 64, keys of letters, digits, ``_ . -``, values
    text, numbers or booleans; a secret-named key is refused (it would be shown everywhere)."""
    if not isinstance(tags, Mapping):
        raise ConfigError("tags: give a mapping of key to value")
    if len(tags) > TAGS_MAX:
        raise ConfigError(f"tags: at most {TAGS_MAX}, got {len(tags)}")
    for key, value in tags.items():
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ConfigError(f"tag {key!r}: a key of letters, digits, _ . - (64 at most)")
        if is_secret_key(key):
            raise ConfigError(f"tag {key!r}: a secret-named key; keep secrets out of tags")
        if not isinstance(value, (str, int, float, bool)) or (
            isinstance(value, str) and len(value) > 500
        ):
            raise ConfigError(f"tag {key!r}: a value is text (500 at most), a number or a bool")
    return dict(tags)


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    with open(run_dir / ".annotate.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def set_tags(
    run_dir: Path, current: Mapping[str, Any], add: Mapping[str, Any], remove: list[str]
) -> dict[str, Any]:
    """The run's tags with ``add`` set and ``remove`` removed, written to tags.json."""
    check_tags(add)
    with _locked(run_dir):
        tags = edited_tags(run_dir)
        tags = dict(current) if tags is None else tags
        tags.update(add)
        for key in remove:
            tags.pop(key, None)
        _io.atomic_write_json(run_dir / TAGS_FILE, {"tags": tags})
    _reindex(run_dir)
    return tags


def write_notes(run_dir: Path, text: Any) -> None:
    """notes.md, atomically (text of at most 100,000 characters)."""
    if not isinstance(text, str):
        raise ConfigError("notes: give text")
    if len(text) > NOTES_MAX:
        raise ConfigError(f"notes: {len(text)} characters, over the {NOTES_MAX} a run keeps")
    with _locked(run_dir):
        _io.atomic_write_text(run_dir / NOTES_FILE, text)
    _reindex(run_dir)


def digest(tags: Mapping[str, Any], notes: str) -> str:
    """What a mirror has of a run's annotations, to know when to mirror them again."""
    text = json.dumps({"tags": tags, "notes": notes}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reindex(run_dir: Path) -> None:
    from runlab.tracking.index import RunIndex

    with contextlib.suppress(Exception):  # the index is a cache: a failure is not the edit's
        RunIndex(run_dir.parent).upsert_run_dir(run_dir)
