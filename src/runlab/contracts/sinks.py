"""What every sink promises (see :class:`runlab.sinks.base.Sink`): it is driven open ->
write (any number of batches, any numbers, NaN and inf included) -> close; ``close`` returns a
JSON-able mapping that identifies the mirror; ``abort`` never raises, whatever state the sink
is in; ``target`` names the same place every time it is asked, before and after the run."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from runlab.sinks.base import EpochRecord, Final, RunMeta, Sink, StepRecord


def contract_meta(run_dir: Path, run_id: str = "20260101-000000-contract-0001") -> RunMeta:
    run_dir.mkdir(parents=True, exist_ok=True)
    return RunMeta(
        id=run_id,
        name="contract",
        dir=run_dir,
        config={"lr": 0.01, "model": {"hidden": [8, 4]}, "note": "text"},
        tags={"suite": "contract"},
    )


def contract_records(epochs: int = 3, steps: int = 4) -> list[Any]:
    records: list[Any] = []
    t = time.time()
    for epoch in range(epochs):
        for i in range(steps):
            step = epoch * steps + i
            records.append(StepRecord(step, t + step, {"loss": 1.0 / (step + 1), "lr": 0.01}))
        metrics = {"train": {"loss": 0.5 / (epoch + 1)}, "val": {"loss": 0.6 / (epoch + 1)}}
        records.append(EpochRecord(epoch, t + epoch, metrics, {"epoch_time_s": 0.1}))
    records.append(StepRecord(epochs * steps, t, {"loss": math.nan, "big": math.inf}))
    return records


class SinkContract:
    """Subclass and implement :meth:`make_sink` (a fresh sink, writing under ``tmp_path``)."""

    def make_sink(self, tmp_path: Path) -> Sink:
        raise NotImplementedError

    def _drive(self, tmp_path: Path) -> tuple[Sink, RunMeta, dict[str, Any]]:
        sink = self.make_sink(tmp_path)
        meta = contract_meta(tmp_path / "run")
        sink.open(meta)
        records = contract_records()
        sink.write(records[:5])
        sink.write([])
        sink.write(records[5:])
        details = sink.close(Final("finished", {"val_loss": 0.2}, meta.dir, time.time()))
        return sink, meta, details

    def test_open_write_close_returns_a_json_mapping(self, tmp_path: Path) -> None:
        _, _, details = self._drive(tmp_path)
        assert isinstance(details, dict), f"close returned {type(details).__name__}, not a dict"
        json.dumps(details)  # mirrors.json records it

    def test_target_is_stable(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        meta = contract_meta(tmp_path / "run")
        before = sink.target(meta)
        assert isinstance(before, str)
        assert sink.target(meta) == before
        assert self.make_sink(tmp_path).target(meta) == before, "another instance differs"
        sink.open(meta)
        sink.write(contract_records(1, 1))
        sink.close(Final("finished", {}, meta.dir, time.time()))
        assert sink.target(meta) == before, "the target moved during the run"

    def test_abort_never_raises(self, tmp_path: Path) -> None:
        self.make_sink(tmp_path).abort()  # never opened
        sink = self.make_sink(tmp_path)
        sink.open(contract_meta(tmp_path / "run-a", "20260101-000000-contract-000a"))
        sink.abort()  # opened, nothing written
        sink.abort()  # twice
        done, _, _ = self._drive(tmp_path / "b")
        done.abort()  # after close

    def test_failed_run_closes(self, tmp_path: Path) -> None:
        sink = self.make_sink(tmp_path)
        meta = contract_meta(tmp_path / "run")
        sink.open(meta)
        sink.write(contract_records(1, 2))
        error = {"error": {"type": "RuntimeError", "message": "boom", "traceback": "..."}}
        details = sink.close(Final("failed", error, meta.dir, time.time()))
        assert isinstance(details, dict)
