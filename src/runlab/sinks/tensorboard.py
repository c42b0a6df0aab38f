"""TensorBoard: event files written with the ``tensorboard`` package alone (no TensorFlow, no
torch). Scalars under ``<split>/<metric>`` at the epoch, ``step/<name>`` at the step; the
config as hyper-parameters (HParams tab, with the run's final status as the session's); the
summary as ``summary/<key>`` and as text."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from runlab._imports import require
from runlab.sinks.base import (
    EpochRecord,
    Final,
    Record,
    RunMeta,
    Sink,
    epoch_scalars,
    flat_numbers,
    flat_params,
    step_scalars,
)

# run status -> the HParams plugin's session status (api_pb2.Status): a gate stop or a pruned
# trial ended as decided; a preempted run continues on --resume
SESSION_STATUS = {
    "finished": "STATUS_SUCCESS",
    "stopped": "STATUS_SUCCESS",
    "pruned": "STATUS_SUCCESS",
    "failed": "STATUS_FAILURE",
    "crashed": "STATUS_FAILURE",
    "preempted": "STATUS_RUNNING",
}


def session_end_pb(status: str, end_time: float) -> Any:
    """The HParams plugin's session-end summary: the trial's final status in the HParams tab."""
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    info = plugin_data_pb2.SessionEndInfo(
        status=api_pb2.Status.Value(SESSION_STATUS.get(status, "STATUS_UNKNOWN")),
        end_time_secs=end_time,
    )
    meta = metadata.create_summary_metadata(
        plugin_data_pb2.HParamsPluginData(session_end_info=info)
    )
    return Summary(
        value=[
            Summary.Value(
                tag=metadata.SESSION_END_INFO_TAG, metadata=meta, tensor=metadata.NULL_TENSOR
            )
        ]
    )


class TensorBoardSink(Sink):
    name = "tensorboard"
    extra = "tensorboard"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        self._writer: Any = None
        self._last_step = 0

    def log_dir(self, meta: RunMeta) -> Path:
        """``<run dir>/tensorboard`` by default; with ``log_dir`` set, ``<log_dir>/<run id>``
        so that one ``tensorboard --logdir`` shows every run."""
        base = self.options.get("log_dir")
        return Path(base) / meta.id if base else meta.dir / "tensorboard"

    def target(self, meta: RunMeta) -> str:
        return str(self.log_dir(meta).resolve())

    def open(self, meta: RunMeta) -> None:
        require("tensorboard", self.extra, "the tensorboard sink")
        from tensorboard.plugins.hparams import summary_v2 as hparams
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        path = self.log_dir(meta)
        path.mkdir(parents=True, exist_ok=True)
        self._writer = EventFileWriter(str(path), max_queue_size=1000, flush_secs=5)
        if not meta.resumed:
            params = flat_params(meta.config)
            params["runlab.run_id"] = meta.id
            self._add(hparams.hparams_pb(params, trial_id=meta.id), 0)

    def _add(self, summary: Any, step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event

        self._writer.add_event(Event(summary=summary, wall_time=time.time(), step=step))

    def _scalars(self, values: Mapping[str, float], step: int, wall: float) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        summary = Summary(value=[Summary.Value(tag=k, simple_value=v) for k, v in values.items()])
        self._writer.add_event(Event(summary=summary, wall_time=wall, step=step))

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            if isinstance(record, EpochRecord):
                self._scalars(epoch_scalars(record), record.epoch, record.time)
                self._last_step = max(self._last_step, record.epoch)
            else:
                self._scalars(step_scalars(record), record.step, record.time)

    def close(self, final: Final) -> dict[str, Any]:
        from tensorboard.plugins.text.summary import text_pb

        numbers = {f"summary/{k}": v for k, v in flat_numbers(final.summary).items()}
        self._scalars(numbers, self._last_step, final.ended or time.time())
        lines = [f"status: {final.status}"]
        lines += [f"{k}: {v}" for k, v in sorted(flat_numbers(final.summary).items())]
        if final.summary.get("stop_reason"):
            lines.append(f"stop_reason: {final.summary['stop_reason']}")
        self._add(text_pb("runlab/summary", "  \n".join(lines)), self._last_step)
        self._add(session_end_pb(final.status, final.ended or time.time()), self._last_step)
        path = self._writer.get_logdir()
        self._writer.close()
        self._writer = None
        return {"log_dir": path}

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # already failing: the warning names the cause
                self._writer.close()
            self._writer = None

    def exists(self, meta: RunMeta, entry: Mapping[str, Any]) -> bool:
        return any(self.log_dir(meta).glob("events.out.tfevents.*"))

    def discard(self, meta: RunMeta) -> None:
        path = self.log_dir(meta)
        if path.is_dir():
            shutil.rmtree(path)
