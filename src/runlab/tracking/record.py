"""The read-only view of a run directory, and loading many of them."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from runlab import _io
from runlab._yaml import load_yaml
from runlab.errors import CorruptRunError
from runlab.tracking.expr import Expression, get_path, parse
from runlab.tracking.index import RunIndex
from runlab.tracking.liveness import derive_state
from runlab.tracking.scalars import read_scalars
from runlab.tracking.state import RunState, failure_text


class RunRecord:
    """A run directory as it is on disk. Nothing here writes.

    ``state`` is the written status, or ``crashed`` for a run that never reached a final status
    and whose process is gone (dead pid on this host, or a stale heartbeat).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            info = _io.read_json(self.path / "run.json")
        except FileNotFoundError as err:
            raise CorruptRunError(f"{self.path} is not a run directory (no run.json)") from err
        except (OSError, ValueError) as err:
            raise CorruptRunError(
                f"{self.path / 'run.json'} is unreadable ({err}); "
                f"`runlab index` skips it, repair or delete the directory"
            ) from err
        if not isinstance(info, dict) or "id" not in info:
            raise CorruptRunError(f"{self.path / 'run.json'} has no 'id'; not a runlab run")
        self.info: dict[str, Any] = info

    def __repr__(self) -> str:
        return f"RunRecord({self.id!r}, state={self.state.value!r})"

    @property
    def id(self) -> str:
        return str(self.info["id"])

    @property
    def name(self) -> str:
        return str(self.info.get("name") or "")

    @property
    def tags(self) -> dict[str, Any]:
        """The tags as last edited (tags.json), else as the run set them (run.json)."""
        from runlab.tracking.annotate import edited_tags

        edited = edited_tags(self.path)
        if edited is not None:
            return edited
        tags = self.info.get("tags")
        return dict(tags) if isinstance(tags, dict) else {}

    @property
    def notes(self) -> str:
        """notes.md: what people wrote about the run ("" when nothing)."""
        from runlab.tracking.annotate import read_notes

        return read_notes(self.path)

    @property
    def parent(self) -> str | None:
        parent = self.info.get("parent")
        return str(parent) if parent is not None else None

    @property
    def problems(self) -> list[str]:
        """What of this run's files could not be read (shown by ``show`` and the dashboard);
        the rest of the run, and every other run, reads normally."""
        found = []
        for name, kind in (("config.yaml", "yaml"), ("metrics.json", "json")):
            path = self.path / name
            if not path.exists():
                continue
            try:
                text = path.read_text(encoding="utf-8")
                data = load_yaml(text) if kind == "yaml" else json.loads(text)
            except (OSError, ValueError, yaml.YAMLError) as err:
                found.append(f"{name} is unreadable ({type(err).__name__})")
                continue
            if not isinstance(data, dict):
                found.append(f"{name} does not hold a mapping")
        if "tags" in self.info and not isinstance(self.info["tags"], (dict, type(None))):
            found.append("run.json's tags are not a mapping")
        return found

    @property
    def state(self) -> RunState:
        return derive_state(
            str(self.info.get("status")),
            self.info.get("host"),
            self.info.get("pid"),
            self.info.get("created"),
            self.heartbeat,
        )

    @property
    def heartbeat(self) -> dict[str, Any] | None:
        try:
            beat = _io.read_json(self.path / "heartbeat.json")
        except (OSError, ValueError):
            return None
        return beat if isinstance(beat, dict) else None

    @cached_property
    def config(self) -> dict[str, Any]:
        """config.yaml; empty when missing or damaged (``problems`` says which)."""
        try:
            data = load_yaml((self.path / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            return {}
        return data if isinstance(data, dict) else {}

    @cached_property
    def overrides(self) -> list[str]:
        try:
            data = load_yaml((self.path / "overrides.yaml").read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            return []
        return [str(o) for o in data] if isinstance(data, list) else []

    @property
    def metrics(self) -> dict[str, Any]:
        """metrics.json, the summary (re-read on every access: it changes while running)."""
        try:
            data = _io.read_json(self.path / "metrics.json")
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def failure_reason(self, width: int = 120) -> str | None:
        """Why a failed or crashed run did not finish, on one line (``Type: message``), or
        None for any other status."""
        return failure_text(self.state.value, self.metrics, width)

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        events = _io.read_jsonl(self.path / "events.jsonl")
        return [e for e in events if name is None or e.get("event") == name]

    def steps(self) -> list[dict[str, Any]]:
        return _io.read_jsonl(self.path / "steps.jsonl")

    def step_series(self) -> dict[str, Any]:
        """``{name: (steps, values)}`` NumPy arrays of every numeric step scalar, through the
        columnar cache beside steps.jsonl (runlab.tracking.series): cheap for a long run."""
        from runlab.tracking.series import step_columns

        return step_columns(self.path)

    def scalars(self, as_frame: bool = False) -> Any:
        """Rows of scalars.csv (one per epoch and split); a DataFrame with ``as_frame``."""
        rows = read_scalars(self.path / "scalars.csv")
        if as_frame:
            from runlab._imports import require

            pd = require("pandas", "pandas", "RunRecord.scalars(as_frame=True)")
            return pd.DataFrame(rows)
        return rows

    def stdout(self) -> str:
        try:
            return (self.path / "stdout.log").read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def lookup(self, path: tuple[str, ...]) -> Any:
        """Resolve an expression name against this run (as ``runlab ls --where`` does)."""
        head, rest = path[0], path[1:]
        if head == "metrics":
            return get_path(self.metrics, rest)
        if head == "config":
            return get_path(self.config, rest)
        if head == "tags":
            return get_path(self.tags, rest)
        if head == "notes" and not rest:
            return self.notes or None
        if head == "status" and not rest:
            return self.state.value
        if head == "duration" and not rest:
            return self.info.get("duration_seconds")
        return get_path(self.info, path)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.info,
            "status": self.state.value,
            "path": str(self.path),
            "config": self.config,
            "metrics": self.metrics,
        }


def load_runs(
    root: str | os.PathLike[str] | None = None,
    where: str | Expression | None = None,
    as_frame: bool = False,
    sort: str | None = None,
) -> Any:
    """Runs under ``root`` (default ``./runs`` or ``$RUNLAB_ROOT``) as RunRecords, filtered by a
    ``where`` expression; ``as_frame=True`` gives a pandas DataFrame with one row per run and
    flattened ``tags.*``, ``metrics.*`` and ``config.*`` columns."""
    from runlab.tracking.roots import default_root

    root_path = Path(root) if root is not None else default_root()
    expr = parse(where) if isinstance(where, str) else where
    rows, _ = RunIndex(root_path).query(expr, sort=sort or "created")
    records = []
    for row in rows:
        try:
            records.append(RunRecord(root_path / row["path"]))
        except CorruptRunError:
            continue  # deleted or damaged since it was listed
    if not as_frame:
        return records
    from runlab._imports import require

    pd = require("pandas", "pandas", "load_runs(as_frame=True)")
    return pd.DataFrame([flatten_record(r) for r in records])


def flatten_record(record: RunRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "status": record.state.value,
        "created": record.info.get("created"),
        "duration_seconds": record.info.get("duration_seconds"),
        "parent": record.parent,
        "path": str(record.path),
    }
    for prefix, data in (
        ("tags", record.tags),
        ("metrics", record.metrics),
        ("config", record.config),
    ):
        out.update(flatten(data, prefix))
    return out


def flatten(data: Any, prefix: str) -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(flatten(v, f"{prefix}.{k}"))
        return out
    return {prefix: data}
