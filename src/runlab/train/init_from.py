"""``trainer.init_from: RUN[:CHECKPOINT]``: start a run from another run's weights (the
seed's ``--base-checkpoint``). RUN is an id, prefix, name or path in the runs root;
CHECKPOINT is ``best`` (the default, ``last`` when a run has no best.pt), ``last``,
``warm_start``, ``epoch_0005`` or ``5``. Only the model's weights are taken: the optimizer,
schedule and epoch count start afresh. The run records where it started in run.json's
``init_from``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runlab.errors import ConfigError

_CHECKPOINT = re.compile(r"^(best|last|warm_start|model|epoch_\d+|\d+)$")


def resolve_init_from(ref: str, root: str | Path) -> dict[str, Any]:
    """``{"run": id, "checkpoint": name, "path": str}`` for ``ref``: ConfigError naming what
    is missing (the run, or the checkpoint and the ones the run has)."""
    from runlab.tracking.resolve import resolve_run

    run_ref, sep, name = ref.rpartition(":")
    if not sep or not _CHECKPOINT.match(name):
        run_ref, name = ref, ""
    try:
        record = resolve_run(run_ref, root)
    except Exception as err:
        raise ConfigError(f"trainer.init_from {ref!r}: {err}") from err
    from runlab.train.load import snapshot

    name, _ = snapshot(record.path, record.id, name or None, "trainer.init_from")
    path = record.path / "checkpoints" / f"{name}.pt"
    return {"run": record.id, "checkpoint": name, "path": str(path)}


def load_init_weights(model: Any, source: dict[str, Any]) -> None:
    """The weights of ``source`` (from :func:`resolve_init_from`) into ``model``, strictly:
    ConfigError when the architectures differ."""
    import torch

    state = torch.load(source["path"], map_location="cpu", weights_only=True)["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise ConfigError(
            f"trainer.init_from: run {source['run']}'s {source['checkpoint']}.pt does not fit "
            f"this model ({first[:200]}); use the same model block"
        ) from err
