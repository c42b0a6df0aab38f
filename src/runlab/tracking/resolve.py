"""Find a run from what a user types: a path, a full id, a unique id prefix, or a name."""

from __future__ import annotations

from pathlib import Path

from runlab.errors import AmbiguousRunError, RunNotFoundError
from runlab.tracking.index import RunIndex, is_run_dir
from runlab.tracking.record import RunRecord


def resolve_run(ref: str, root: str | Path) -> RunRecord:
    """The run ``ref`` names under ``root``. Raises RunNotFoundError or AmbiguousRunError."""
    as_path = Path(ref)
    if is_run_dir(as_path):
        return RunRecord(as_path)
    root = Path(root)
    if is_run_dir(root / ref):
        return RunRecord(root / ref)
    rows = RunIndex(root).runs()
    by_prefix = sorted(r["path"] for r in rows if str(r["id"]).startswith(ref))
    by_name = sorted(r["path"] for r in rows if r["name"] == ref)
    for hits in (by_prefix, by_name):
        if len(hits) == 1:
            return RunRecord(root / hits[0])
        if hits:
            raise AmbiguousRunError(ref, hits)
    raise RunNotFoundError(
        f"no run {ref!r} under {root} (by path, id, id prefix or name); "
        f"`runlab ls {root}` lists the runs there"
    )
