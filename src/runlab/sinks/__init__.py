"""Mirrors of runs to TensorBoard, Weights & Biases and MLflow (see docs/mirrors.md).

The run directory stays the truth; a sink gets a copy of it on its own thread while the run
trains (:mod:`runlab.sinks.mirror`) or afterwards from the files (:mod:`runlab.sinks.replay`,
``runlab sync``). Nothing here is imported unless a run asks for a sink.
"""

from runlab.sinks.base import SINK_NAMES, SINKS, EpochRecord, Final, RunMeta, Sink, StepRecord

__all__ = ["SINKS", "SINK_NAMES", "EpochRecord", "Final", "RunMeta", "Sink", "StepRecord"]
