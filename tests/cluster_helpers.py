"""What the scheduler tests (Slurm, HTCondor) share: the CLI in a child process, a config
whose loop naps or fails on demand, waiting, and reading what the jobs left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def runlab(
    *args: Any,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    shared: bool = False,
) -> Any:
    """``runlab ARGS`` in a child process. ``shared``: what it writes is writable by the
    pool's own user too (HTCondor jobs run as a user of their own, not as root)."""
    return subprocess.run(
        [sys.executable, "-m", "runlab", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or {**os.environ, "PYTHONPATH": str(REPO)},
        cwd=cwd,
        preexec_fn=(lambda: os.umask(0)) if shared else None,
    )


def picky(tmp_path: Path) -> Path:
    """A config whose loop naps ``+nap`` seconds and fails for ``+mark=fail``."""
    path = tmp_path / "picky.yaml"
    path.write_text(
        "data: {source: synthetic.regression, n_samples: 64}\nmodel: {hidden: [4]}\n"
        "trainer: {epochs: 1}\nloop: tests.helpers:picky_loop\n"
    )
    return path


def wait_for(predicate: Any, timeout: float = 120, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def runs_of(root: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/run.json"))]


def jobs(sweep: str, root: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    out = runlab("jobs", sweep, "-o", root, "-f", "json", *extra, shared=True)
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr
