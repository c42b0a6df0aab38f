"""A sink: every epoch's scalars appended to ``<folder>/<run id>.csv``.

runlab run examples/quickstart.yaml --sink examples.plugins.csv_sink:CsvSink
# options: a block named after the sink in the config, checked against Options
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from runlab.config.schema import limits
from runlab.sinks.base import EpochRecord, Final, Record, RunMeta, Sink, epoch_scalars


@dataclass
class CsvOptions:
    folder: str | None = None  # default: <run dir>/csv
    timeout: float = limits(10.0, gt=0)  # seconds the run's end waits for this sink


class CsvSink(Sink):
    name: ClassVar[str] = "csv"
    Options = CsvOptions

    def target(self, meta: RunMeta) -> str:
        folder = self.options.get("folder") or str(meta.dir / "csv")
        return str(Path(folder) / f"{meta.id}.csv")

    def open(self, meta: RunMeta) -> None:
        self.path = Path(self.target(meta))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []

    def write(self, records: Sequence[Record]) -> None:
        for record in records:
            if isinstance(record, EpochRecord):
                self.rows.append({"epoch": record.epoch, **epoch_scalars(record)})
        self._flush()

    def close(self, final: Final) -> dict[str, Any]:
        self._flush()
        return {"path": str(self.path), "epochs": len(self.rows)}

    def abort(self) -> None:
        pass  # nothing held open: every write rewrites the file

    def _flush(self) -> None:
        columns = sorted({k for row in self.rows for k in row}, key=lambda k: (k != "epoch", k))
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, columns)
            writer.writeheader()
            writer.writerows(self.rows)
        tmp.replace(self.path)
