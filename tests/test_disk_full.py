"""A full disk, for real: a 1 MiB tmpfs as the runs root (skipped where mounting one is not
allowed). A run keeps 256 KiB in reserve while it lives; its end frees that room and writes
metrics.json and the final status into it. What it cannot write, it says, truthfully."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import python_script, run_python, tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        yield disk


FILL = """
def fill(folder):
    '''Write until the disk refuses: ENOSPC, for real.'''
    with open(os.path.join(folder, "filler"), "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(bytes(4096))
        except OSError as err:
            assert err.errno == 28, err
"""


def _run_dir(root: Path) -> Path:
    (run_dir,) = [p for p in root.iterdir() if p.is_dir()]
    return run_dir


def test_a_run_ends_finished_after_the_disk_filled(tmp_path: Path, small_disk: Path) -> None:
    """Old code: run.json could not be written, the run stayed ``running`` (shown crashed)."""
    script = python_script(
        tmp_path,
        "import os, sys, runlab\n"
        + FILL
        + """
root = sys.argv[1]
with runlab.start_run({"lr": 0.1}, root=root) as run:
    run.log_epoch(0, {"val": {"loss": 0.5}})
    fill(root)
    print("printed after the disk filled")  # stdout.log cannot copy it; the terminal gets it
    run.summary["note"] = "written after the disk filled"
""",
    )
    done = run_python(script, str(small_disk / "runs"))
    assert done.returncode == 0, done.stderr
    assert "printed after the disk filled" in done.stdout
    run_dir = _run_dir(small_disk / "runs")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["note"] == "written after the disk filled"
    assert metrics["val_loss"] == 0.5


LOOP = (
    FILL
    + '''
def loop(cfg, run):
    """Fill the disk, leave a summary larger than the reserve, then fail."""
    run.summary["big"] = "x" * 400_000
    fill(os.path.dirname(run.dir))
    raise RuntimeError("the loop failed on a full disk")
'''
)


def test_the_cli_says_truthfully_what_a_full_disk_kept_it_from_writing(
    tmp_path: Path, small_disk: Path
) -> None:
    """Old code: "traceback in .../metrics.json" while metrics.json held ``{}``; the run
    stayed ``running``. Now the status is written and the message says what was not."""
    (tmp_path / "diskloop.py").write_text("import os\n" + LOOP)
    config = tmp_path / "fill.yaml"
    config.write_text("loop: diskloop:loop\ndata: {source: synthetic.regression}\n")
    root = small_disk / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "runlab", "run", str(config), "-o", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode == 1, done.stderr
    run_dir = _run_dir(root)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert "traceback in" not in done.stderr
    assert "traceback not saved: metrics.json not written" in done.stderr
    assert "No space left on device" in done.stderr
    assert "RuntimeError: the loop failed on a full disk" in done.stderr
    with contextlib.suppress(FileNotFoundError):  # what is there is whole, never half
        json.loads((run_dir / "metrics.json").read_text())
