"""The built-in sinks by name, light to import (the CLI's help lists them): each is one module
of this package. Their options are the config blocks of the same names
(``runlab.config.schema.SINK_CONFIGS``); the registry is :data:`runlab.sinks.base.SINKS`."""

from __future__ import annotations

BUILTIN_SINKS = {
    "tensorboard": "runlab.sinks.tensorboard:TensorBoardSink",
    "wandb": "runlab.sinks.wandb:WandbSink",
    "mlflow": "runlab.sinks.mlflow:MlflowSink",
}
SINK_NAMES = tuple(BUILTIN_SINKS)
