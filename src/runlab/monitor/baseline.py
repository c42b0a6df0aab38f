"""A baseline run's metrics, per epoch and final, for ``baseline.*`` in gates and compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runlab.errors import ConfigError, RunlabError
from runlab.tracking.record import RunRecord, flatten

_NOT_METRICS = ("epoch", "split")


class Baseline:
    """``value(("val", "sharpe"), epoch)``: the baseline's value at that epoch where it has
    one, else its final value (the last epoch of scalars.csv, then metrics.json)."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.by_epoch: dict[int, dict[str, Any]] = {}
        for row in record.scalars():
            epoch, split = row.get("epoch"), row.get("split")
            if not isinstance(epoch, int) or not split:
                continue
            values = self.by_epoch.setdefault(epoch, {})
            values.update({f"{split}.{k}": v for k, v in row.items() if k not in _NOT_METRICS})
        self.final: dict[str, Any] = {
            k.lstrip("."): v for k, v in flatten(record.metrics, "").items()
        }
        for epoch in sorted(self.by_epoch):
            self.final.update(self.by_epoch[epoch])

    @property
    def id(self) -> str:
        return self.record.id

    def names(self) -> set[str]:
        return set(self.final)

    def value(self, path: tuple[str, ...], epoch: int | None = None) -> Any:
        key = ".".join(path)
        at_epoch = self.by_epoch.get(epoch, {}) if epoch is not None else {}
        return at_epoch[key] if key in at_epoch else self.final.get(key)


def load_baseline(ref: str, root: str | Path) -> Baseline:
    """The run ``ref`` (path, id, prefix or name) as a Baseline; a ConfigError if not found."""
    from runlab.tracking.resolve import resolve_run

    try:
        return Baseline(resolve_run(ref, root))
    except RunlabError as err:
        raise ConfigError(f"baseline {ref!r} not found: {err}") from err
