"""Real readers for what the sinks wrote, and two sinks of our own for the fault tests."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from runlab.sinks.base import EpochRecord, Final, Record, RunMeta, Sink


def wandb_records(offline_dir: Path) -> Iterator[tuple[str, Any]]:
    """The records of a W&B offline run (``run-<id>.wandb``: W&B's LevelDB-log framing of
    protobuf Records, the file `wandb sync` uploads), as (kind, record)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = offline_dir.glob("run-*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # full/first start, middle/last append
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buf)
            yield record.WhichOneof("record_type"), record


def wandb_items(items: Any) -> dict[str, Any]:
    import json

    return {(i.key or "/".join(i.nested_key)): json.loads(i.value_json) for i in items}


def tensorboard_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return {t: [(s.step, s.value) for s in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


class FlakySink(Sink):
    """Writes the first epoch, then raises, as a server going away mid-run would."""

    name = "flaky"
    flush_every = 0.01

    def open(self, meta: RunMeta) -> None:
        pass

    def write(self, records: Sequence[Record]) -> None:
        if any(isinstance(r, EpochRecord) and r.epoch >= 1 for r in records):
            raise ConnectionResetError("server went away")

    def close(self, final: Final) -> dict[str, Any]:
        return {}


class EnvSink(Sink):
    """Writes the mirror process's MLFLOW_DISABLE_TELEMETRY into the run dir, for the test."""

    name = "env"

    def open(self, meta: RunMeta) -> None:
        value = os.environ.get("MLFLOW_DISABLE_TELEMETRY", "<unset>")
        (meta.dir / "mirror-env.txt").write_text(value)

    def write(self, records: Sequence[Record]) -> None:
        pass

    def close(self, final: Final) -> dict[str, Any]:
        return {}


class StuckSink(Sink):
    """Blocks in its first write for 60 s: a server that does not answer."""

    name = "stuck"
    flush_every = 0.01

    def open(self, meta: RunMeta) -> None:
        pass

    def write(self, records: Sequence[Record]) -> None:
        time.sleep(60)

    def close(self, final: Final) -> dict[str, Any]:
        return {}


class QuietSink(Sink):
    """Accepts everything: a mirror process with something to do."""

    name = "quiet"

    def open(self, meta: RunMeta) -> None:
        pass

    def write(self, records: Sequence[Record]) -> None:
        pass

    def close(self, final: Final) -> dict[str, Any]:
        return {}


class BrokenSink(QuietSink):
    """Its constructor raises: a bug in a user's sink, or a client that checks on creation."""

    name = "broken"

    def __init__(self, options: Any = None) -> None:
        raise RuntimeError("cannot build this sink")


class HostileSink(QuietSink):
    """Raises wherever a sink can: target() (the mirror's name), open() and abort()."""

    name = "hostile"

    def target(self, meta: RunMeta) -> str:
        raise ValueError("no target for you")

    def open(self, meta: RunMeta) -> None:
        raise ConnectionError("refused")

    def abort(self) -> None:
        raise RuntimeError("abort failed too")
