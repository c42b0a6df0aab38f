"""Find a run from what a user types: a path, a full id, a unique id prefix, or a name."""

from __future__ import annotations

from pathlib import Path

from runlab.errors import AmbiguousRunError, RunNotFoundError
from runlab.tracking.index import RunIndex
from runlab.tracking.index_rows import is_run_dir
from runlab.tracking.record import RunRecord


def resolve_run(ref: str, root: str | Path, notes: list[str] | None = None) -> RunRecord:
    """The run ``ref`` names under ``root``: a run directory's path, an id or unique id prefix,
    or a name. Names are reused across runs, so a name gives the newest run of that name (a
    line in ``notes`` says so); an id prefix matching several runs is an AmbiguousRunError."""
    as_path = Path(ref)
    if is_run_dir(as_path):
        return RunRecord(as_path)
    root = Path(root)
    if is_run_dir(root / ref):
        return RunRecord(root / ref)
    rows = RunIndex(root).runs()
    by_prefix = sorted(r["path"] for r in rows if str(r["id"]).startswith(ref))
    if len(by_prefix) > 1:
        raise AmbiguousRunError(ref, by_prefix)
    if by_prefix:
        return RunRecord(root / by_prefix[0])
    named = sorted((r for r in rows if r["name"] == ref), key=lambda r: str(r["created"]))
    if named:
        if len(named) > 1 and notes is not None:
            notes.append(
                f"{len(named)} runs are named {ref!r}; showing the newest, {named[-1]['id']} "
                "(give an id to pick another)"
            )
        return RunRecord(root / named[-1]["path"])
    raise RunNotFoundError(
        f"no run {ref!r} under {root} (by path, id, id prefix or name); "
        f"`runlab ls {root}` lists the runs there"
    )
