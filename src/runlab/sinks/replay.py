"""``runlab sync``: mirror ended runs afterwards, from their files alone, idempotently.

The record stream is rebuilt from the run directory (steps.jsonl, scalars.csv, metrics.json,
run.json) and fed to the same sink code as a live run. mirrors.json says which mirrors are
complete: those are skipped while the sink still has them; an incomplete one (a sink that
failed or fell behind during the run) is removed at the destination and written again, so
syncing twice never duplicates anything.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, MissingDependencyError
from runlab.sinks.base import (
    EpochRecord,
    Final,
    Record,
    RunMeta,
    Sink,
    numeric,
    provenance_fields,
)
from runlab.sinks.mirror import build_sink, describe_error, entry, read_mirrors, record_mirrors
from runlab.tracking.record import RunRecord
from runlab.tracking.scalars import TAIL

ENDED = {"finished", "failed", "stopped", "preempted", "pruned", "crashed"}


@dataclass
class SyncResult:
    run_id: str
    sink: str
    outcome: str  # synced, replaced, already synced, skipped, failed
    detail: str = ""


def _epoch_time(created: str | None) -> float:
    try:
        return datetime.fromisoformat(str(created)).timestamp()
    except ValueError:
        return 0.0


def meta_of(record: RunRecord) -> RunMeta:
    return RunMeta(
        id=record.id,
        name=record.name or "run",
        dir=record.path.resolve(),
        config=record.config,  # config.yaml is written redacted
        tags=record.tags,
        notes=record.notes,
        parent=record.parent,
        created=record.info.get("created"),
        **provenance_fields(record.info),
    )


def records_of(record: RunRecord) -> Iterator[Record]:
    """Step records (the last value of each step: a resumed run redoes some) and epoch records
    from scalars.csv, whose lr/epoch_time_s/samples_per_s/max_memory_mib columns are extras."""
    from runlab.sinks.base import StepRecord

    steps: dict[int, dict[str, Any]] = {}
    for row in record.steps():
        if isinstance(row.get("step"), int):
            steps[row["step"]] = row
    for step in sorted(steps):
        row = steps[step]
        values = numeric({k: v for k, v in row.items() if k not in ("step", "time")})
        if values:
            yield StepRecord(step, float(row.get("time") or 0.0), values)
    base = _epoch_time(record.info.get("created"))
    times = {e.get("epoch"): float(e["time"]) for e in record.events("on_epoch_end") if "time" in e}
    by_epoch: dict[int, list[dict[str, Any]]] = {}
    for row in record.scalars():
        if isinstance(row.get("epoch"), int):
            by_epoch.setdefault(row["epoch"], []).append(row)
    for epoch in sorted(by_epoch):
        metrics: dict[str, dict[str, float]] = {}
        extras: dict[str, float] = {}
        for row in by_epoch[epoch]:
            values = numeric({k: v for k, v in row.items() if k not in ("epoch", "split")})
            values = {k: v for k, v in values.items() if not math.isnan(v) or k not in TAIL}
            extras.update({k: v for k, v in values.items() if k in TAIL})
            split = str(row.get("split") or "train")
            metrics[split] = {k: v for k, v in values.items() if k not in TAIL}
        yield EpochRecord(epoch, times.get(epoch, base + epoch), metrics, extras)


def final_of(record: RunRecord) -> Final:
    ended = record.info.get("ended")
    return Final(
        status=record.state.value,
        summary=record.metrics,
        run_dir=record.path,
        ended=_epoch_time(ended) if ended else None,
    )


def sync_run(
    record: RunRecord,
    names: Sequence[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
) -> list[SyncResult]:
    """Mirror one ended run to each sink in ``names``. Options: those the run mirrored with
    (run.json's ``sinks``, whether they came from the config or from Python), else the run's
    config blocks (``wandb:``, ``mlflow:``, ``tensorboard:``); updated by ``overrides``."""
    state = record.state.value
    if state not in ENDED:
        return [SyncResult(record.id, n, "skipped", f"run is {state}") for n in names]
    meta = meta_of(record)
    mirrors = read_mirrors(record.path)
    results = []
    for name in names:
        options = mirrored_options(record, name)
        options.update((overrides or {}).get(name, {}))
        try:
            sink = build_sink(name, options)
        except (ConfigError, MissingDependencyError):
            raise  # the user's input: one line, exit 2, before anything is mirrored
        except Exception as err:  # a sink whose constructor raises fails this run, not sync
            results.append(SyncResult(record.id, name, "failed", describe_error(err)))
            continue
        results.append(_sync_one(record, meta, sink, mirrors, force))
    return results


def mirrored_options(record: RunRecord, name: str) -> dict[str, Any]:
    recorded = record.info.get("sinks")
    if isinstance(recorded, Mapping) and isinstance(recorded.get(name), Mapping):
        return dict(recorded[name])
    block = record.config.get(name)
    return dict(block) if isinstance(block, Mapping) else {}


def _sync_one(
    record: RunRecord, meta: RunMeta, sink: Sink, mirrors: list[dict[str, Any]], force: bool
) -> SyncResult:
    previous: dict[str, Any] | None = None
    try:  # whatever a sink raises (even in target() or abort()) fails this run, not sync
        target = sink.target(meta)
        previous = next(
            (e for e in mirrors if e.get("sink") == sink.name and e.get("target") == target),
            None,
        )
        # notes or tags edited since the last mirror: mirrored again
        edited = (previous or {}).get("annotations", _UNEDITED) != _annotations(record, meta)
        done = previous is not None and previous.get("complete") and not force and not edited
        if done and previous is not None and sink.exists(meta, previous):
            return SyncResult(record.id, sink.name, "already synced", target)
        sink.discard(meta)
        sink.open(meta)
        try:
            batch: list[Record] = []
            for item in records_of(record):
                batch.append(item)
                if len(batch) >= 5000:
                    sink.write(batch)
                    batch = []
            sink.write(batch)
            details = sink.close(final_of(record))
        except BaseException:
            with contextlib.suppress(Exception):
                sink.abort()
            raise
    except Exception as err:
        return SyncResult(record.id, sink.name, "failed", describe_error(err))
    made = {**entry(sink, meta, details, True, "sync"), "annotations": _annotations(record, meta)}
    record_mirrors(record.path, [made])
    outcome = "replaced" if previous else "synced"
    return SyncResult(record.id, sink.name, outcome, target)


_UNEDITED = "unedited"


def _annotations(record: RunRecord, meta: RunMeta) -> str:
    """The notes and edited tags a mirror was given ("unedited" for a run nobody annotated, as
    a mirror entry written before notes existed says): a change since is mirrored again."""
    from runlab.tracking.annotate import digest, edited_tags

    if not meta.notes and edited_tags(record.path) is None:
        return _UNEDITED
    return digest(meta.tags, meta.notes)


def run_dirs(path: Path) -> list[Path]:
    """``path`` itself when it is a run directory, else the run directories under it."""
    if (path / "run.json").is_file():
        return [path]
    return sorted(p.parent for p in path.glob("*/run.json"))
