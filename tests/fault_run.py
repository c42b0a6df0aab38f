"""`runlab run` that SIGKILLs itself just before its K-th durable write of epoch 2 (the fault
injection of tests/test_faults.py). RUNLAB_KILL_AT=K; the writes counted are, in the order an
epoch makes them: the scalars.csv row, the on_epoch_end event, metrics.json, last.pt,
best.pt, the on_checkpoint event (then epoch 3's)."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from runlab import _io
from runlab.tracking import run as run_module
from runlab.tracking import scalars as _scalars
from runlab.train import epochs, supervised

KILL_AT = int(os.environ["RUNLAB_KILL_AT"])
state = {"armed": False, "count": 0}


def _write(label: str) -> None:
    if state["armed"]:
        state["count"] += 1
        if state["count"] == KILL_AT:
            sys.stderr.write(f"killed before {label}\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)


def _wrap(owner: Any, name: str, label: Any) -> None:
    original = getattr(owner, name)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        tag = label(*args, **kwargs)
        if tag:
            _write(tag)
        return original(*args, **kwargs)

    setattr(owner, name, wrapped)


_wrap(_scalars.ScalarsCsv, "add", lambda self, rows: "scalars row")
_wrap(
    _io,
    "atomic_write_json",
    lambda path, obj: "metrics.json" if str(path).endswith("metrics.json") else None,
)
_wrap(supervised.SupervisedTrainer, "save", lambda self, path: path.name)
_wrap(epochs, "copy_atomic", lambda src, dst: dst.name)
original_event = run_module.Run.event


def event(self: Any, name: str, /, **fields: Any) -> None:
    if name in ("on_epoch_end", "on_checkpoint"):
        _write(name)
    original_event(self, name, **fields)
    if name == "on_checkpoint" and fields.get("epoch") == 1:
        state["armed"] = True  # epoch 1 is complete: count from epoch 2's first write


run_module.Run.event = event  # type: ignore[method-assign]

if __name__ == "__main__":
    from runlab.cli.main import main

    main(sys.argv[1:])
