"""Loops for the launcher contract's jobs: quick, and slow enough to be interrupted."""

from __future__ import annotations

import time
from typing import Any

CONFIG = """\
loop: runlab.contracts._jobs:sleepy
data: {source: synthetic.regression}
x: 0
sleep: 0.0
"""


def sleepy(cfg: dict[str, Any], run: Any) -> None:
    """Sleep ``cfg['sleep']`` seconds (polling stop and preemption), then record one epoch."""
    deadline = time.monotonic() + float(cfg.get("sleep", 0))
    while time.monotonic() < deadline:
        if run.stop_requested or run.preempt_requested:
            return
        time.sleep(0.05)
    run.log_epoch(0, {"val": {"loss": float(cfg.get("x", 0))}})
