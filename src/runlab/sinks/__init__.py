"""Mirrors of runs to TensorBoard, Weights & Biases and MLflow (see docs/mirrors.md).

The run directory stays the truth; a sink gets a copy of it on its own thread while the run
trains (:mod:`runlab.sinks.mirror`) or afterwards from the files (:mod:`runlab.sinks.replay`,
``runlab sync``). Nothing here is imported unless a run asks for a sink: the names below load
:mod:`runlab.sinks.base` on first use, so that ``runlab.sinks.builtin`` (the CLI's help) stays
light.
"""

from typing import Any

__all__ = ["SINKS", "SINK_NAMES", "EpochRecord", "Final", "RunMeta", "Sink", "StepRecord"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from runlab.sinks import base

        return getattr(base, name)
    raise AttributeError(f"module 'runlab.sinks' has no attribute {name!r}")
