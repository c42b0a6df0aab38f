"""A run's ``config.yaml`` and its JSON twin ``.config.json``, which lets the index be rebuilt
without parsing YAML (PyYAML: 1.5-2 ms for a 2 KB config, most of a rebuild's time).

``.config.json`` is derived and never the truth: its first line holds the SHA-256 of the
``config.yaml`` it was made from and of its own second line, which is that config as the
index stores it (:func:`runlab.tracking.index_sql.to_json` of the YAML read back). A twin that
is missing, stale (config.yaml rewritten or edited by hand) or damaged is not used: config.yaml
is read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from runlab import _io
from runlab._yaml import load_yaml, to_yaml
from runlab.tracking import index_sql

TWIN = ".config.json"


def write(run_dir: Path, config: Any) -> None:
    """config.yaml (atomically, synced), then its twin (atomically; a twin lost to a power cut
    is only a slower rebuild)."""
    text = to_yaml(config)
    _io.atomic_write_text(run_dir / "config.yaml", text)
    _io.atomic_write_text(run_dir / TWIN, _twin(text), fsync=False)


def _twin(text: str) -> str:
    loaded = load_yaml(text) or {}
    body = index_sql.to_json(loaded if isinstance(loaded, dict) else {})
    return f"{_sha(text.encode('utf-8'))} {_sha(body.encode('utf-8'))}\n{body}\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_json(run_dir: str | Path) -> tuple[str, bool]:
    """The run's config as the index stores it, and whether it came from the twin."""
    try:
        with open(f"{run_dir}/config.yaml", "rb") as fh:
            raw = fh.read()
    except OSError:
        return "{}", False
    try:
        with open(f"{run_dir}/{TWIN}", "rb") as fh:
            head, _, body = fh.read().partition(b"\n")
        body = body.rstrip(b"\n")
        if head.decode("ascii") == f"{_sha(raw)} {_sha(body)}":  # current, and whole
            return body.decode("utf-8"), True
    except (OSError, ValueError):
        pass
    return from_yaml(raw), False


def from_yaml(raw: bytes) -> str:
    try:
        loaded = load_yaml(raw.decode("utf-8")) or {}
    except Exception:  # not YAML, not UTF-8: an empty config, as for a missing file
        loaded = {}
    return index_sql.to_json(loaded if isinstance(loaded, dict) else {})
