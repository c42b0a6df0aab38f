"""The figure painter: a child process that imports matplotlib while `runlab run` imports
torch, then draws the epoch figures; whatever goes wrong with it, the figures are drawn in the
run's own process instead."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runlab
from runlab.train import figures

pytest.importorskip("matplotlib")

HISTORY = [
    {"epoch": 1, "train.loss": 1.0, "val.loss": 0.9, "val.r2": 0.1},
    {"epoch": 2, "train.loss": 0.8, "val.loss": float("nan"), "val.r2": 0.2},
]


def _run(root: Path) -> runlab.Run:
    run = runlab.Run(root=root, config={}, capture_stdout=False)
    run.start()
    return run


def test_the_painter_draws_in_its_own_process(root: Path) -> None:
    run = _run(root)
    painter = figures.Painter()
    drawn = painter.draw(run, HISTORY, {})
    run.finish()
    assert drawn == ["losses", "metrics"]
    assert painter.child.returncode == 0
    for name in drawn:
        assert (run.dir / "figures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"


def test_a_dead_painter_leaves_the_figures_to_the_run(root: Path) -> None:
    run = _run(root)
    figures._PAINTER = painter = figures.Painter()
    painter.child.kill()
    painter.child.wait()
    assert figures.epoch_figures(run, HISTORY, {}) == ["losses", "metrics"]
    run.finish()
    assert figures._PAINTER is None
    assert (run.dir / "figures" / "losses.png").is_file()


def test_a_painter_not_needed_is_stopped(root: Path) -> None:
    run = _run(root)
    figures._PAINTER = painter = figures.Painter()
    assert figures.epoch_figures(run, HISTORY, {"figures": {"preset": "none"}}) == []
    run.finish()
    assert painter.child.poll() is not None and figures._PAINTER is None


def test_runlab_run_draws_the_same_figures_with_and_without_it(tmp_path: Path) -> None:
    quick = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"
    names = {}
    for painter in ("1", "0"):
        env = {**os.environ, "RUNLAB_PAINTER": painter}
        out = subprocess.run(
            [sys.executable, "-m", "runlab", "run", str(quick), "trainer.epochs=2",
             "data.n_samples=256", "-o", str(tmp_path / painter), "-f", "json"],
            capture_output=True, text=True, env=env, timeout=300, check=True,
        )  # fmt: skip
        run_dir = Path(json.loads(out.stdout.splitlines()[-1])["run_dir"])
        names[painter] = sorted(p.name for p in (run_dir / "figures").iterdir())
        events = (run_dir / "events.jsonl").read_text()
        assert "figures skipped" not in events
    assert names["1"] == names["0"] and "losses.png" in names["1"]
