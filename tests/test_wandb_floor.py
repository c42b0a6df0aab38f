"""The wandb floor declared in pyproject.toml is real: in a fresh virtual environment (pip
resolving wandb's own dependencies, as a user's install does) the floor mirrors a run and the
release before it cannot start the sink. Slow (two installs from PyPI): `make test-slow`."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BELOW_FLOOR = "0.19.9"

CHECK = textwrap.dedent(
    """
    import os, sys, tempfile
    from pathlib import Path
    import wandb, runlab
    tmp = Path(tempfile.mkdtemp())
    os.environ.update(WANDB_MODE="offline", WANDB_DIR=str(tmp / "wb"), WANDB_SILENT="true")
    with runlab.start_run({"lr": 0.1}, root=tmp / "runs", sinks=["wandb"],
                          capture_stdout=False) as run:
        for epoch in range(2):
            run.log({"loss": 1.0})
            run.log_epoch(epoch, {"val": {"loss": 1.0 / (epoch + 1)}})
    warnings = runlab.RunRecord(run.dir).events("on_warning")
    offline = list((tmp / "wb" / "wandb").glob("offline-run-*"))
    print(wandb.__version__, "mirrored" if offline and not warnings else "refused")
    """
)


def floor() -> str:
    text = (REPO / "pyproject.toml").read_text()
    match = re.search(r'^wandb = \["wandb>=([\d.]+)"\]', text, re.MULTILINE)
    assert match, "pyproject.toml declares no wandb floor"
    return match.group(1)


def outcome(tmp_path: Path, version: str) -> str:
    venv = tmp_path / f"venv-{version}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, f"wandb=={version}", "-e", str(REPO)], check=True, timeout=900)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK], capture_output=True, text=True, timeout=300
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-500:]


@pytest.mark.slow
@pytest.mark.parametrize(("version", "expected"), [(floor(), "mirrored"), (BELOW_FLOOR, "refused")])
def test_the_declared_wandb_floor_is_the_real_one(
    tmp_path: Path, version: str, expected: str
) -> None:
    assert outcome(tmp_path, version) == f"{version} {expected}"
