"""What a mirror receives, and the interface every sink implements.

A sink sees a run as four things, in order: :class:`RunMeta` when it opens, batches of
:class:`StepRecord` / :class:`EpochRecord` while the run trains, and :class:`Final` when the
run has ended. The same stream comes from a live run (:mod:`runlab.sinks.mirror`) or is rebuilt
from a finished run's files (:mod:`runlab.sinks.replay`), so a sink has one code path for both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from runlab.config.schema import SINK_CONFIGS
from runlab.registry import Registry
from runlab.sinks.builtin import BUILTIN_SINKS, SINK_NAMES
from runlab.tracking.records import (  # what a sink receives: the run's own records
    EpochRecord,
    Final,
    Record,
    RunMeta,
    StepRecord,
    numeric,
    provenance_fields,
)

__all__ = [
    "SINKS",
    "SINK_NAMES",
    "EpochRecord",
    "Final",
    "Record",
    "RunMeta",
    "Sink",
    "StepRecord",
    "artifacts_of",
    "check_sink_names",
    "epoch_scalars",
    "finite",
    "flat_numbers",
    "flat_params",
    "numeric",
    "provenance_fields",
    "step_scalars",
    "tag_list",
]
ARTIFACT_KINDS = ("config", "metrics", "scalars", "figures", "checkpoint")
DEFAULT_TIMEOUT_S = 60.0


class Sink:
    """Base class of a mirror. Subclasses set ``name``, may set ``keeps_artifacts``, and
    implement :meth:`open`, :meth:`write` and :meth:`close`. Every method runs on the sink's
    own thread (never the training thread); an exception switches the sink off for the run."""

    name: ClassVar[str] = "sink"
    keeps_artifacts: ClassVar[bool] = False
    extra: ClassVar[str] = ""  # the runlab extra that installs the sink's package
    flush_every: ClassVar[float] = 1.0  # seconds between writes while the run trains

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.timeout = float(self.options.get("timeout") or DEFAULT_TIMEOUT_S)
        kinds = self.options.get("artifacts")
        self.artifact_kinds = tuple(ARTIFACT_KINDS if kinds is None else kinds)

    def target(self, meta: RunMeta) -> str:
        """Where this sink mirrors ``meta`` (a directory, a tracking URI and experiment, a
        project): the key under which mirrors.json remembers a complete mirror."""
        return ""

    def open(self, meta: RunMeta) -> None:
        raise NotImplementedError

    def write(self, records: Sequence[Record]) -> None:
        raise NotImplementedError

    def close(self, final: Final) -> dict[str, Any]:
        """Write the summary, status and artifacts; return what identifies the mirror (an id,
        a directory, a URL) for mirrors.json."""
        raise NotImplementedError

    def artifacts(self, final: Final) -> list[tuple[Path, str]]:
        """The files to upload (file, folder in the sink's store), by the ``artifacts`` option."""
        return artifacts_of(final.run_dir, self.artifact_kinds) if self.keeps_artifacts else []

    def abort(self) -> None:
        """Release what :meth:`open` took after a failure; must not raise."""

    # for `runlab sync`
    def exists(self, meta: RunMeta, entry: Mapping[str, Any]) -> bool:
        """Whether the mirror that mirrors.json records as complete is still there."""
        return True

    def discard(self, meta: RunMeta) -> None:
        """Remove an incomplete earlier mirror of ``meta`` so that a sync does not repeat it."""


def finite(value: float) -> bool:
    return not (math.isnan(value) or math.isinf(value))


def flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as dotted keys; lists become their string form (MLflow params and
    TensorBoard hparams take scalars only)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat_params(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        elif value is None:
            out[name] = "None"
        else:
            out[name] = str(value)
    return out


def flat_numbers(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a summary (metrics.json) as dotted keys."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_numbers(value, f"{name}."))
        elif isinstance(value, (int, float)):
            out[name] = float(value)
    return out


def tag_list(tags: Mapping[str, Any]) -> list[str]:
    """runlab tags (a mapping) as W&B/TensorBoard-style labels: ``key`` or ``key=value``."""
    return [k if v in (None, True, "") else f"{k}={v}" for k, v in tags.items()]


def epoch_scalars(record: EpochRecord) -> dict[str, float]:
    """An epoch's scalars under the names every sink uses: ``<split>/<metric>`` and
    ``epoch/<extra>``."""
    out = {f"{split}/{k}": v for split, values in record.metrics.items() for k, v in values.items()}
    out.update({f"epoch/{k}": v for k, v in record.extras.items()})
    return out


def step_scalars(record: StepRecord) -> dict[str, float]:
    """A step's scalars as ``step/<name>``; system metrics keep their ``system/<name>``."""
    return {k if k.startswith("system/") else f"step/{k}": v for k, v in record.values.items()}


def artifacts_of(run_dir: Path, kinds: Sequence[str]) -> list[tuple[Path, str]]:
    """The files of a run directory that a sink keeping artifacts uploads, by kind."""
    files: list[tuple[Path, str]] = []
    for kind, pattern, folder in (
        ("config", "config.yaml", ""),
        ("metrics", "metrics.json", ""),
        ("scalars", "scalars.csv", ""),
        ("figures", "figures/*", "figures"),
    ):
        if kind in kinds:
            files += [(p, folder) for p in sorted(run_dir.glob(pattern)) if p.is_file()]
    if "checkpoint" in kinds:
        best = run_dir / "checkpoints" / "best.pt"
        if best.is_file():
            files.append((best, "checkpoints"))
    return files


def _is_sink(obj: Any) -> str | None:
    return (
        None
        if isinstance(obj, type) and issubclass(obj, Sink)
        else ("is not a subclass of runlab.sinks.base.Sink")
    )


# The sinks: `sinks: [name]` in a config, `--sink name`; plugins: entry points "runlab.sinks".
SINKS = Registry("sink", "runlab.sinks", check=_is_sink)
for _name, _target in BUILTIN_SINKS.items():
    SINKS.add(_name, _target, options=SINK_CONFIGS[_name])


def check_sink_names(names: Iterable[str], where: str = "sinks") -> None:
    """Sink names as a config or the command line gives them: registered or import paths."""
    from runlab.errors import ConfigError

    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{where}: {name!r} is listed twice")
        seen.add(name)
        SINKS.entry(name, where)
